"""The CMB-Exam task (`cmb`): prompts, the few-shot sampler, the official option quirk, modes, scoring, bad rows."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from _sinks import ListSink as Sink

from evalkit.backends._fake import FakeBackend
from evalkit.errors import ConfigError, DataError
from evalkit.tasks._kind import RunContext, TaskOutcome
from evalkit.tasks._registry import load_task
from evalkit.tasks.cmb import CmbExamSpec, run

DEMO = Path(__file__).resolve().parents[1] / "tasks" / "demo" / "cmb"



def _spec() -> CmbExamSpec:
    spec = load_task("cmb")
    assert isinstance(spec, CmbExamSpec)
    return spec


def _run(backend: FakeBackend, warnings: list[str] | None = None, **ctx: Any) -> tuple[TaskOutcome, list[dict[str, Any]]]:
    sink = Sink()
    context = RunContext(warn=(warnings.append if warnings is not None else lambda m: None), **ctx)
    return run(_spec(), backend, context, sink), sink.samples


def _gold_replies(reply: str = "答案：{gold}") -> FakeBackend:
    """A backend that answers every demo test question with its gold letters (written as `reply`)."""
    items = json.loads((DEMO / "CMB-test.json").read_text(encoding="utf-8"))
    replies = [(re.compile(re.escape(item["question"])), [reply.format(gold=item["answer"][::-1])])
               for item in items]
    return FakeBackend(replies=replies)


def test_structure_is_6_types_and_28_classes() -> None:
    spec = _spec()
    assert len(spec.structure) == 6 and sum(len(c) for c in spec.structure.values()) == 28


def test_set_scoring_accepts_any_letter_order_and_official_does_not() -> None:
    as_set, samples = _run(_gold_replies())
    assert as_set.metrics["acc"] == 1.0 and as_set.metrics["option_f1"] == 1.0 and as_set.n == 17
    multi = [s for s in samples if s["question_type"] == "多项选择题"]
    assert multi and all(s["prediction"] == "".join(sorted(s["target"])) for s in multi)
    official, _ = _run(_gold_replies(), task_args={"scoring": "official"})
    # reversed gold letters ("DCBA") are wrong under score.py's string equality; single answers stay right
    assert official.metrics["acc_multi"] == 0.0 and official.metrics["acc_single"] == 1.0
    assert official.info["overall_note"].startswith("acc is the unweighted mean of the exam types")
    assert official.info["dropped_single_char_options"] == 3


def test_exam_type_is_the_unweighted_mean_of_classes_and_acc_the_mean_of_types() -> None:
    outcome, _ = _run(_gold_replies(), task_args={"scoring": "official"})
    types = outcome.groups
    assert set(types) == {"医师考试", "护理考试", "药师考试", "医学考研"}
    assert outcome.metrics["acc"] == pytest.approx(sum(g["acc"] for g in types.values()) / 4)
    assert outcome.subtasks["执业医师"]["n"] == 5


def test_official_prompt_drops_single_character_options_only_in_official_mode() -> None:
    _, official = _run(FakeBackend(), task_args={"scoring": "official"})
    _, as_set = _run(FakeBackend())
    blood = next(s for s in official if "万能供血者" in s["prompt"][-1]["content"])
    assert blood["prompt"][-1]["content"].split("\n")[2:] == ["D. AB"]  # "A", "B", "O" are one character
    blood_set = next(s for s in as_set if "万能供血者" in s["prompt"][-1]["content"])
    assert blood_set["prompt"][-1]["content"].endswith("A. A\nB. B\nC. O\nD. AB")


def test_fewshot_exemplars_come_from_the_same_class_and_are_seeded() -> None:
    _, first = _run(FakeBackend(), num_fewshot=2, seed=1)
    _, again = _run(FakeBackend(), num_fewshot=2, seed=1)
    assert [s["prompt"] for s in first] == [s["prompt"] for s in again]
    for sample in first:
        turns = sample["prompt"]
        assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant", "user"]
        assert all(f"中国{sample['exam_type']}中{sample['exam_class']}考试" in t["content"] for t in turns[::2])
        assert re.fullmatch(r"答案是[A-G]+。", turns[1]["content"])
    _, other_seed = _run(FakeBackend(), num_fewshot=2, seed=7)
    assert [s["prompt"] for s in other_seed] != [s["prompt"] for s in first]


def test_val_split_never_uses_the_question_as_its_own_exemplar() -> None:
    _, samples = _run(FakeBackend(), num_fewshot=5, task_args={"split": "val"})
    for sample in samples:
        question = sample["prompt"][-1]["content"]
        assert question not in [t["content"] for t in sample["prompt"][:-1]]
        assert len(sample["prompt"]) == 5  # only 2 other val questions in each demo class


def test_cot_mode_uses_the_cot_prompt_and_explanations() -> None:
    _, samples = _run(FakeBackend(), num_fewshot=1, task_args={"mode": "cot"})
    assert "请分析每个选项，并最后给出答案。" in samples[0]["prompt"][-1]["content"]
    assert samples[0]["prompt"][1]["content"].endswith(f"所以答案是{samples[0]['prompt'][1]['content'][-2]}。")
    assert len(samples[0]["prompt"][1]["content"]) > 10


def test_loglikelihood_mode_generates_multi_answer_questions() -> None:
    outcome, samples = _run(_gold_replies(), task_args={"mode": "loglikelihood"})
    assert outcome.info["multi_answer_generated"] == 5
    modes = {s["question_type"]: set() for s in samples}
    for s in samples:
        modes[s["question_type"]].add(s["mode"])
    assert modes == {"单项选择题": {"loglikelihood"}, "多项选择题": {"generate"}}
    single = [s for s in samples if s["mode"] == "loglikelihood"]
    assert single and all(set(s["choice_logprobs"]) == set(re.findall(r"^([A-G])\. ", s["prompt"][-1]["content"], re.MULTILINE))
                          for s in single)


def test_thinking_is_stripped_before_extraction() -> None:
    outcome, samples = _run(_gold_replies("<think>答案是A还是B？</think>答案：{gold}"))
    assert outcome.metrics["acc"] == 1.0
    assert samples[0]["thinking"] == "答案是A还是B？"


def test_subsets_by_type_or_class_and_limit_per_class() -> None:
    outcome, samples = _run(FakeBackend(), subsets=("护理考试", "执业医师"), limit=2)
    assert {s["exam_class"] for s in samples} == {"护士执业资格", "执业医师"} and outcome.n == 4
    with pytest.raises(ConfigError, match=r"unknown subset\(s\) 牙医"):
        _run(FakeBackend(), subsets=("牙医",))
    with pytest.raises(ConfigError, match=r"--task-args scoring=strict: use one of set, official"):
        _run(FakeBackend(), task_args={"scoring": "strict"})


def _write_data(tmp_path: Path, test_rows: list[dict[str, Any]]) -> Path:
    folder = tmp_path / "cmb" / "CMB-Exam" / "CMB-test"
    folder.mkdir(parents=True)
    (folder / "CMB-test-choice-question-merge.json").write_text(json.dumps(test_rows, ensure_ascii=False),
                                                                encoding="utf-8")
    return tmp_path


def _row(qid: int, answer: str, options: dict[str, str], qtype: str = "单项选择题") -> dict[str, Any]:
    return {"id": qid, "exam_type": "医师考试", "exam_class": "执业医师", "exam_subject": "内科", "question": f"问题{qid}",
            "question_type": qtype, "option": options, "answer": answer}


def test_bad_rows_are_skipped_and_counted_with_file_and_row(tmp_path: Path) -> None:
    good = _row(0, "A", {"A": "甲乙", "B": "丙丁"})
    rows = [good, _row(1, "E", {"A": "甲乙", "B": "丙丁"}), _row(2, "AA", {"A": "甲乙", "B": "丙丁"}, "多项选择题"),
            _row(3, "A", {}), _row(4, "AB", {"A": "甲乙", "B": "丙丁"})]
    data_dir = _write_data(tmp_path, rows)
    warnings: list[str] = []
    outcome, _ = _run(FakeBackend(), warnings, data_dir=data_dir)
    path = data_dir / "cmb/CMB-Exam/CMB-test/CMB-test-choice-question-merge.json"
    assert outcome.n == 1 and outcome.info["skipped_rows"] == 4 and outcome.info["data_origin"] == "local"
    assert f"{path}:2: answer 'E' names E, which has no option (options AB); row skipped" in "\n".join(warnings)
    assert f"{path}:3: answer 'AA' names A twice" in "\n".join(warnings)
    assert f"{path}:4: empty option list" in "\n".join(warnings)
    assert f"{path}:5: answer 'AB' has 2 letters but question_type is '单项选择题'" in "\n".join(warnings)


def test_test_answers_come_from_the_answer_file(tmp_path: Path) -> None:
    data_dir = _write_data(tmp_path, [_row(7, "", {"A": "甲乙", "B": "丙丁"})])
    with pytest.raises(DataError, match=r"every row of .* was skipped \(no gold answer"):
        _run(FakeBackend(), data_dir=data_dir)
    (data_dir / "cmb" / "CMB-test-choice-answer.json").write_text(json.dumps([{"id": 7, "answer": "B"}]))
    backend = FakeBackend(replies=[(re.compile("问题7"), ["答案是B。"])])
    outcome, samples = _run(backend, data_dir=data_dir)
    assert samples[0]["target"] == "B" and outcome.metrics["acc"] == 1.0


@pytest.mark.integration
def test_cmb_on_the_embedded_model_end_to_end(tmp_path: Path) -> None:
    from evalkit.runner import RunOptions, execute

    run_dir = execute(RunOptions(model="smollm2", tasks="cmb", limit=2, output=tmp_path, no_cache=True,
                                 quiet=True, task_args={"scoring": "official"}))
    task = json.loads((run_dir / "results.json").read_text())["tasks"]["cmb"]
    assert task["n"] == 8 and task["info"]["scoring"] == "official"
    assert 0.0 <= task["metrics"]["acc"] <= 1.0 and len(task["groups"]) == 4
    lines = (run_dir / "samples" / "cmb.jsonl").read_text(encoding="utf-8").splitlines()
    assert all(json.loads(line)["raw_output"] is not None for line in lines)


def test_the_hub_dataset_is_read_with_its_option_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.tasks import _cmb_data

    asked: list[tuple[str, str | None, str]] = []

    def fake_hub(hub: Any, subject: str, split: str) -> list[dict[str, Any]]:
        asked.append((hub.path, hub.name, split))
        # the hub pads absent options with empty strings: E and F are not options here
        return [{**_row(0, "B", {"A": "甲乙", "B": "丙丁", "C": "戊己", "D": "庚辛", "E": "", "F": ""}), "explanation": ""}]

    monkeypatch.setattr(_cmb_data, "load_hub", fake_hub)
    outcome, samples = _run(FakeBackend(replies=[(re.compile("问题0"), ["答案是B"])]))
    assert asked == [("FreedomIntelligence/CMB", "exam", "test")]
    assert outcome.info["data_origin"] == "hub" and outcome.metrics["acc"] == 1.0
    assert samples[0]["prompt"][-1]["content"].endswith("C. 戊己\nD. 庚辛")


def test_a_run_through_the_runner_writes_a_valid_record(tmp_path: Path) -> None:
    from evalkit.runner import RunOptions, execute

    run_dir = execute(RunOptions(model="fake:echo", tasks="cmb:医学考研", output=tmp_path, no_cache=True, quiet=True,
                                 task_args={"scoring": "official"}))
    task = json.loads((run_dir / "results.json").read_text())["tasks"]["cmb"]
    assert task["n"] == 4 and list(task["groups"]) == ["医学考研"] and task["info"]["data_origin"] == "demo"
    from evalkit.records import MultipleChoiceSample, sample_type

    assert sample_type("cmb_exam") is MultipleChoiceSample
    for line in (run_dir / "samples" / "cmb.jsonl").read_text(encoding="utf-8").splitlines():
        assert MultipleChoiceSample.model_validate_json(line).correct is not None


def test_data_check_helper_lists_questions_and_bad_rows(tmp_path: Path) -> None:
    from evalkit.tasks._cmb_data import check_local_files

    data_dir = _write_data(tmp_path, [_row(0, "A", {"A": "甲乙", "B": "丙丁"}), _row(1, "C", {"A": "甲乙", "B": "丙丁"})])
    found, missing, problems = check_local_files(_spec().data, data_dir)
    path = data_dir / "cmb/CMB-Exam/CMB-test/CMB-test-choice-question-merge.json"
    assert found == ["test: 1 questions (1 bad)"]
    assert missing == [str(data_dir / "cmb/CMB-Exam/CMB-val/CMB-val-merge.json")]
    assert problems == [f"{path}:2: answer 'C' names C, which has no option (options AB)"]
