"""The task-kind API of `evalkit.tasks`: one registry of kinds (built-in ones imported on first use), a kind
of the user's own running end to end through the runner, and MT-Bench data loading with its provenance and
type errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pytest

from evalkit.backends._protocol import Backend
from evalkit.errors import ConfigError, DataError, TaskSpecError
from evalkit.tasks import (
    RunContext,
    SampleSink,
    TaskOutcome,
    TaskSpecBase,
    load_model_answers,
    load_questions,
    load_references,
    load_task,
    register_task_kind,
    task_kind,
    task_kinds,
)
from evalkit.types import GenConfig, Message


class ExactSpec(TaskSpecBase):
    """A user's own kind: a few prompts, each answered by generation and compared with its target."""

    kind: Literal["exact_match_demo"]
    items: list[dict[str, str]]


def run_exact(spec: ExactSpec, backend: Backend, ctx: RunContext, sink: SampleSink) -> TaskOutcome:
    ctx.set_total(len(spec.items))
    completions = backend.generate([(Message("user", i["prompt"]),) for i in spec.items], GenConfig(max_tokens=64))
    rows = [{"id": str(n), "doc_index": n, "prompt": item["prompt"], "target": item["target"],
             "prediction": c.text, "correct": c.text == item["target"]}
            for n, (item, c) in enumerate(zip(spec.items, completions, strict=True))]
    sink.write(rows)
    ctx.advance(len(rows))
    acc = sum(1 for r in rows if r["correct"]) / len(rows)
    return TaskOutcome(metrics={"acc": acc}, n=len(rows))


def test_a_registered_kind_runs_end_to_end_through_the_runner(tmp_path: Path) -> None:
    from evalkit.runner import RunOptions, execute

    register_task_kind("exact_match_demo", spec_model=ExactSpec, run=run_exact, replace=True)
    yaml_path = tmp_path / "echo_check.yaml"
    yaml_path.write_text("name: echo_check\nkind: exact_match_demo\nitems:\n"
                         "  - {prompt: 'say A', target: 'say A'}\n  - {prompt: 'say B', target: 'B'}\n"
                         "  - {prompt: 'C', target: 'C'}\n", encoding="utf-8")
    run_dir = execute(RunOptions(model="fake:echo", tasks=str(yaml_path), output=tmp_path / "runs",
                                 no_cache=True, quiet=True))
    task = json.loads((run_dir / "results.json").read_text())["tasks"]["echo_check"]
    assert task["n"] == 3 and task["metrics"]["acc"] == pytest.approx(2 / 3)  # fake:echo repeats the prompt
    samples = [json.loads(line) for line in (run_dir / "samples" / "echo_check.jsonl").read_text().splitlines()]
    assert [s["correct"] for s in samples] == [True, False, True]


def test_the_registry_resolves_built_in_kinds_lazily_and_refuses_duplicates() -> None:
    assert {"multiple_choice", "perplexity", "longcontext", "multiturn_judge", "lmeval"} <= set(task_kinds())
    kind = task_kind("perplexity")
    assert kind.spec_model.__name__ == "PerplexitySpec" and kind.run.__module__ == "evalkit.tasks.perplexity"
    assert task_kind("perplexity") is kind  # resolved once
    with pytest.raises(ConfigError, match="already registered; pass replace=True"):
        register_task_kind("perplexity", spec_model=ExactSpec, run=run_exact)
    with pytest.raises(ConfigError, match="Python identifier"):
        register_task_kind("my-kind", spec_model=ExactSpec, run=run_exact)
    with pytest.raises(TaskSpecError, match="unknown task kind 'nope'.*register_task_kind"):
        task_kind("nope")


def test_a_registered_kind_whose_target_is_not_a_spec_model_fails_on_use() -> None:
    register_task_kind("broken_demo", spec_model="evalkit.tasks._spec:task_kinds", run=run_exact, replace=True)
    with pytest.raises(TaskSpecError, match="spec_model must be a TaskSpecBase subclass"):
        task_kind("broken_demo")


def test_built_in_kinds_are_not_imported_until_used() -> None:
    code = ("import sys, evalkit.tasks as t, evalkit.cli; t.task_kinds(); "
            "print(any(m.startswith('evalkit.tasks.') and m.split('.')[-1][0] != '_' for m in sys.modules), "
            "'pydantic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]  # listing kinds needs the registry (pydantic), never a kind's module
    code = "import sys, evalkit.cli, evalkit.tasks; print('pydantic' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.split() == ["False"]


def test_load_task_finds_a_built_in_task_through_the_package() -> None:
    assert load_task("wikitext").kind == "perplexity"


# ---- MT-Bench data ---------------------------------------------------------------------------------------
def _questions(tmp_path: Path, rows: Sequence[Any]) -> Path:
    folder = tmp_path / "mt_bench"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "question.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return tmp_path


def test_turns_given_as_a_string_is_an_error_naming_file_line_and_fix(tmp_path: Path) -> None:
    data = _questions(tmp_path, [{"question_id": 1, "category": "writing", "turns": ["Hi", "More"]},
                                 {"question_id": 2, "category": "writing", "turns": "Write a poem."}])
    with pytest.raises(DataError, match=r"question.jsonl:2: field 'turns' is a string; write it as a list"):
        load_questions(data, hub=False)


@pytest.mark.parametrize(("row", "message"), [
    ({"question_id": 1, "category": "math", "turns": [1, 2]}, r":1: field 'turns' must be a list of strings"),
    ({"question_id": 1, "category": "math", "turns": {"a": 1}}, r":1: field 'turns' must be a list .*got dict"),
    ({"question_id": [1], "category": "math", "turns": ["x"]}, r":1: field 'question_id' is list"),
    ({"question_id": 1, "category": None, "turns": ["x"]}, r":1: field 'category' is NoneType"),
    ({"question_id": 1, "category": "math", "turns": ["x"], "reference": "y"}, r":1: field 'reference' is a string"),
    ({"question_id": 1, "turns": ["x"]}, r":1: a question needs question_id, category and turns.*'category'"),
])
def test_other_wrong_types_in_questions_are_errors(tmp_path: Path, row: dict[str, Any], message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_questions(_questions(tmp_path, [row]), hub=False)


def test_answer_turns_given_as_a_string_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "model_answer" / "m.jsonl"
    path.parent.mkdir()
    path.write_text(json.dumps({"question_id": 1, "choices": [{"turns": "one answer"}]}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"m.jsonl:1: field 'turns' is a string"):
        load_model_answers(path.parent)


def test_loaders_report_every_file_they_read(data_dir: Path) -> None:
    ctx = RunContext(data_dir=data_dir)
    questions = load_questions(data_dir, hub=False, record_file=ctx.record_file)
    refs = load_references(data_dir, questions, record_file=ctx.record_file)
    answers = load_model_answers(data_dir / "mt_bench" / "model_answer", ["llama-13b"], record_file=ctx.record_file)
    assert len(questions) == 80 and all(isinstance(t, str) for q in questions for t in q.turns)
    assert refs and answers["llama-13b"]
    base = (data_dir / "mt_bench").resolve()
    assert ctx.files_read == {str(base / "question.jsonl"), str(base / "reference_answer" / "gpt-4.jsonl"),
                              str(base / "model_answer" / "llama-13b.jsonl")}


def test_the_mtbench_task_records_its_question_file(data_dir: Path) -> None:
    from evalkit.backends._fake import FakeBackend
    from evalkit.tasks.multiturn_judge import MultiturnJudgeSpec, run

    spec = load_task("mt_bench")
    assert isinstance(spec, MultiturnJudgeSpec)
    ctx = RunContext(data_dir=data_dir, limit=1, subsets=("writing",))
    rows: list[dict[str, Any]] = []

    class Sink:
        def write(self, samples: Sequence[dict[str, Any]]) -> None:
            rows.extend(samples)

    outcome = run(spec, FakeBackend(), ctx, Sink())
    assert outcome.n == 1 and rows[0]["subset"] == "writing"
    assert str((data_dir / "mt_bench" / "question.jsonl").resolve()) in ctx.files_read
