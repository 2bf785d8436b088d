"""`--repeats K` for CMB-Clin, open QA and generative classification: K seeded samples per question, per-sample
scores on each record, K-sample metrics by hand from the samples file, headline = sample 0, a cached rerun, the
judge on sample 0 only, and loglikelihood classification refusing --repeats."""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from _sinks import ListSink as Sink
from test_classification import GOLD, TASK_YAML

from evalkit.backends._fake import FakeBackend
from evalkit.cli import main
from evalkit.metrics._longbench import normalize_zh
from evalkit.runner import RunOptions, execute
from evalkit.tasks import classification, open_qa
from evalkit.tasks._cmb_clin import run as run_clin
from evalkit.tasks._kind import RunContext
from evalkit.tasks._registry import load_task
from evalkit.types import Completion, Conversation, GenConfig

ROOT = Path(__file__).resolve().parents[1]
CLIN_DEMO = ROOT / "tasks" / "demo" / "cmb" / "CMB-Clin-demo.json"
OPEN_QA = ROOT / "examples" / "tasks" / "open_qa.yaml"
SEED = 5  # seeds 5, 6, 7: the fake answers texts[seed % 3], so sample k reads texts[2], texts[0], texts[1]


@dataclass
class SeededFake(FakeBackend):
    """The scripted fake, recording the (seed, temperature) of every generate call."""

    seen: list[tuple[int | None, float]] = field(default_factory=list)

    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        self.seen.append((config.seed, config.temperature))
        return super().generate(conversations, config)



def _execute(tmp_path: Path, backend: FakeBackend, tasks: str, name: str, **options: Any
             ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    run_dir = execute(RunOptions(model=backend, tasks=tasks, output=tmp_path / "runs", cache=tmp_path / "c.sqlite",
                                 seed=SEED, quiet=True, **options))
    task = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))["tasks"][name]
    lines = (run_dir / "samples" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return task, [json.loads(line) for line in lines]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _majority_score(scores: Sequence[float], votes: Sequence[Any]) -> float:
    """The score of the most frequent vote (ties: the earliest sample), 0 when nothing voted."""
    counts = Counter(v for v in votes if v is not None)
    if not counts:
        return 0.0
    top = max(counts.values())
    return next(s for s, v in zip(scores, votes) if v is not None and counts[v] == top)


def _check_seeds(task: dict[str, Any], backend: SeededFake) -> None:
    assert task["info"]["repeats"] == 3 and task["info"]["seeds"] == [SEED, SEED + 1, SEED + 2]
    assert task["info"]["temperature"] == 0.7
    assert sorted(set(backend.seen)) == [(SEED, 0.7), (SEED + 1, 0.7), (SEED + 2, 0.7)]


# ---- CMB-Clin ----------------------------------------------------------------------------------------------

def _clin_backend() -> SeededFake:
    demo = json.loads(CLIN_DEMO.read_text(encoding="utf-8"))
    replies = [(re.compile(re.escape(p["question"]) + "$"),
                [p["answer"], p["answer"][:len(p["answer"]) // 2], "不清楚"])  # reference, its first half, nothing
               for case in demo for p in case["QA_pairs"]]
    return SeededFake(name="clin", replies=replies)


def test_cmb_clin_samples_three_seeds_and_scores_each_by_rouge_l(tmp_path: Path) -> None:
    backend = _clin_backend()
    task, records = _execute(tmp_path, backend, "cmb_clin", "cmb_clin", repeats=3)
    _check_seeds(task, backend)
    assert len(records) == 5 and all([s["seed"] for s in r["samples"]] == [5, 6, 7] for r in records)
    assert all(len({s["prediction"] for s in r["samples"]}) == 3 for r in records)
    assert all(r["samples"][0]["prediction"] == r["prediction"] and r["samples"][0]["rouge_l"] == r["rouge_l"]
               and r["samples"][0]["bleu"] == r["bleu"] for r in records)
    assert records[0]["samples"][1]["rouge_l"] == pytest.approx(1.0)  # seed 6 answers the reference itself
    m = task["metrics"]
    rows = [[s["rouge_l"] for s in r["samples"]] for r in records]
    assert m["rouge_l"] == pytest.approx(_mean([row[0] for row in rows]))  # the headline is sample 0's
    assert m["rouge_l_mean@3"] == pytest.approx(_mean([_mean(row) for row in rows]))
    assert m["rouge_l_best@3"] == pytest.approx(_mean([max(row) for row in rows]))
    assert m["rouge_l_sd@3"] == pytest.approx(_mean([statistics.stdev(row) for row in rows]))
    assert m["rouge_l_mean@3_stderr"] == pytest.approx(statistics.stdev([_mean(row) for row in rows]) / 5 ** 0.5)
    assert m["rouge_l_best@3"] > m["rouge_l_mean@3"] > 0.0
    for name, table in task["subtasks"].items():  # every case has its own K-sample metrics
        case_rows = [[s["rouge_l"] for s in r["samples"]] for r in records if name.startswith(r["id"].split("/")[0])]
        assert table["rouge_l_mean@3"] == pytest.approx(_mean([_mean(row) for row in case_rows]))
    again = _clin_backend()
    rerun, _ = _execute(tmp_path, again, "cmb_clin", "cmb_clin", repeats=3)
    assert again.calls["generate"] == 0 and rerun["metrics"] == m


def test_cmb_clin_without_repeats_is_unchanged() -> None:
    for ctx in (RunContext(seed=SEED), RunContext(seed=SEED, repeats=1)):
        backend, sink = _clin_backend(), Sink()
        outcome = run_clin(load_task("cmb_clin"), backend, ctx, sink)  # type: ignore[arg-type]
        assert backend.seen == [(SEED, 0.0)] and not any("samples" in s for s in sink.samples)
        assert not {"repeats", "seeds", "temperature", "judged_samples"} & set(outcome.info)
        assert not [k for k in outcome.metrics if "@" in k]


# ---- open QA -----------------------------------------------------------------------------------------------

# texts[0..2] per question; seeds 5, 6, 7 give the samples in the order texts[2], texts[0], texts[1]
QA_TEXTS = [("plants take in", ["Carbon dioxide.", "Oxygen", "<think>CO2</think>carbon dioxide"]),
            ("hexagon", ["Six", "Seven", "Seven"]),  # samples Seven, Six, Seven: the majority is wrong
            ("沸腾", ["100摄氏度", "90度", "100摄氏度"]),
            (".*", ["Tests catch regressions."])]


def _qa_backend() -> SeededFake:
    return SeededFake(name="answerer", replies=[(re.compile(m), t) for m, t in QA_TEXTS])


def _judge(path: Path) -> str:
    path.write_text(yaml.safe_dump({"replies": [{"match": ".*", "texts": [
        '{"accuracy": 6, "helpfulness": 6, "clarity": 3}']}]}), encoding="utf-8")
    return f"fake:{path}"


def test_open_qa_samples_three_seeds_and_judges_sample_zero_only(tmp_path: Path) -> None:
    backend = _qa_backend()
    task, records = _execute(tmp_path, backend, str(OPEN_QA), "my_open_qa", repeats=3,
                             judge_models=(_judge(tmp_path / "judge.yaml"),))
    _check_seeds(task, backend)
    assert [s["prediction"] for s in records[0]["samples"]] == [
        "carbon dioxide", "Carbon dioxide.", "Oxygen"]  # thinking stripped from every sample
    em = [[s["exact_match"] for s in r["samples"]] for r in records]
    assert em == [[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    assert all("qa_f1" in s and "rouge_l" in s for r in records for s in r["samples"])
    m = task["metrics"]
    assert m["exact_match"] == pytest.approx(_mean([row[0] for row in em])) == 0.5  # sample 0's
    assert m["exact_match_mean@3"] == pytest.approx(_mean([_mean(row) for row in em])) == pytest.approx(5 / 12)
    assert m["exact_match_pass@1"] == pytest.approx(5 / 12)
    assert m["exact_match_pass@3"] == pytest.approx(_mean([float(any(row)) for row in em])) == 0.75
    votes = [[normalize_zh(s["prediction"]) for s in r["samples"]] for r in records]
    assert m["exact_match_maj@3"] == pytest.approx(_mean([_majority_score(row, v) for row, v in zip(em, votes)]))
    assert m["exact_match_maj@3"] == 0.5
    assert task["info"]["judged_samples"] == 1 and task["info"]["judge"]["calls"] == 4  # one per row, not per sample
    assert all("judge" in r and not any("judge" in s for s in r["samples"]) for r in records)
    assert m["judge_score"] == pytest.approx(5.25)
    again = _qa_backend()
    rerun, _ = _execute(tmp_path, again, str(OPEN_QA), "my_open_qa", repeats=3,
                        judge_models=(_judge(tmp_path / "judge.yaml"),))
    assert again.calls["generate"] == 0 and rerun["metrics"] == m


def test_open_qa_without_repeats_is_unchanged() -> None:
    spec = load_task(str(OPEN_QA))
    assert isinstance(spec, open_qa.OpenQaSpec)
    for ctx in (RunContext(seed=SEED), RunContext(seed=SEED, repeats=1)):
        backend, sink = _qa_backend(), Sink()
        outcome = open_qa.run(spec, backend, ctx, sink)
        assert backend.seen == [(SEED, 0.0)] and not any("samples" in s for s in sink.samples)
        assert not {"repeats", "seeds", "temperature", "judged_samples"} & set(outcome.info)
        assert not [k for k in outcome.metrics if "@" in k]


# ---- classification ----------------------------------------------------------------------------------------

# gold a a b b c c; texts[0..2] per sentence, sampled in the order texts[2], texts[0], texts[1]
CLASS_TEXTS = {"s0": ["体育", "财经", "体育"],  # a a b: 2 right, majority a
               "s1": ["财经", "体育", "不知道"],  # none, b, a: 1 right, tie b/a -> b (earliest) wrong
               "s2": ["财经"], "s3": ["科技"],  # all right / all wrong
               "s4": ["科技", "科技", "体育"],  # a c c: sample 0 wrong, majority c right
               "s5": ["我不知道"]}  # nothing extractable: no vote


def _class_task(tmp_path: Path) -> Path:
    lines = ["sentence,label"] + [f"s{i},{g}" for i, g in enumerate(GOLD)]
    (tmp_path / "mine.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "my_topics.yaml").write_text(TASK_YAML, encoding="utf-8")
    return tmp_path / "my_topics.yaml"


def _class_backend() -> SeededFake:
    return SeededFake(name="classifier", replies=[(re.compile(f"句子：{s}\n"), t) for s, t in CLASS_TEXTS.items()])


def test_generative_classification_samples_three_seeds_for_pass_and_maj(tmp_path: Path) -> None:
    path, backend = _class_task(tmp_path), _class_backend()
    task, records = _execute(tmp_path, backend, str(path), "my_topics", repeats=3, data_dir=tmp_path,
                             task_args={"mode": "generate"})
    _check_seeds(task, backend)
    correct = [[float(s["correct"]) for s in r["samples"]] for r in records]
    assert correct == [[1, 1, 0], [0, 0, 1], [1, 1, 1], [0, 0, 0], [0, 1, 1], [0, 0, 0]]
    assert [s["predicted_label"] for s in records[1]["samples"]] == [None, "b", "a"]
    assert all(r["samples"][0]["predicted_label"] == r["predicted_label"] for r in records)
    m = task["metrics"]
    assert m["acc"] == pytest.approx(_mean([row[0] for row in correct])) == pytest.approx(2 / 6)  # sample 0's
    assert m["acc_mean@3"] == pytest.approx(_mean([_mean(row) for row in correct])) == pytest.approx(8 / 18)
    assert m["acc_pass@1"] == pytest.approx(8 / 18)
    assert m["acc_pass@3"] == pytest.approx(_mean([float(any(row)) for row in correct])) == pytest.approx(4 / 6)
    votes = [[s["predicted_label"] for s in r["samples"]] for r in records]
    assert m["acc_maj@3"] == pytest.approx(_mean([_majority_score(row, v) for row, v in zip(correct, votes)]))
    assert m["acc_maj@3"] == pytest.approx(3 / 6)
    again = _class_backend()
    rerun, _ = _execute(tmp_path, again, str(path), "my_topics", repeats=3, data_dir=tmp_path,
                        task_args={"mode": "generate"})
    assert again.calls["generate"] == 0 and rerun["metrics"] == m


def test_generative_classification_without_repeats_is_unchanged(tmp_path: Path) -> None:
    spec = load_task(str(_class_task(tmp_path)))
    assert isinstance(spec, classification.ClassificationSpec)
    for ctx in (RunContext(seed=SEED, data_dir=tmp_path, task_args={"mode": "generate"}),
                RunContext(seed=SEED, data_dir=tmp_path, task_args={"mode": "generate"}, repeats=1)):
        backend, sink = _class_backend(), Sink()
        outcome = classification.run(spec, backend, ctx, sink)
        assert backend.seen == [(None, 0.0)] and not any("samples" in s for s in sink.samples)  # unseeded greedy
        assert not {"repeats", "seeds", "temperature"} & set(outcome.info)
        assert not [k for k in outcome.metrics if "@" in k]


@pytest.mark.parametrize("task_args", [[], ["--task-args", "mode=loglikelihood"]])
def test_loglikelihood_classification_refuses_repeats_in_one_line(tmp_path: Path, task_args: list[str],
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = _class_task(tmp_path)
    code = main(["run", "--model", "fake:echo", "--tasks", str(path), "--data-dir", str(tmp_path), "--repeats", "3",
                 "--output", str(tmp_path / "runs"), "--no-cache", *task_args])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1, errors
    assert "--repeats 3" in errors[0] and "deterministic" in errors[0] and "--task-args mode=generate" in errors[0]
