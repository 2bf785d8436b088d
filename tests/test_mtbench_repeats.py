"""`--repeats K` for MT-Bench (multiturn_judge): K whole conversations per question with seeds seed + k, every
sample judged, headline metrics from sample 0, mean@K / best@K / sd@K over the samples, the response cache."""

from __future__ import annotations

import json
import statistics
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from _sinks import ListSink as Sink

from evalkit.backends._fake import FakeBackend
from evalkit.judges import JudgeConfig, load_model_answers
from evalkit.records import load_record
from evalkit.records._samples import sample_type
from evalkit.runner import RunOptions, execute
from evalkit.store._cache import CachedBackend
from evalkit.tasks._kind import RunContext, TaskOutcome
from evalkit.tasks._spec import load_spec_file
from evalkit.tasks.multiturn_judge import MultiturnJudgeSpec, run
from evalkit.types import Completion, Conversation, GenConfig, Usage

SPEC = cast(MultiturnJudgeSpec, load_spec_file(Path(__file__).resolve().parents[1] / "tasks" / "mt_bench.yaml"))

# The judge's rating depends on the sample's seed and the question, so samples of one question score differently.
JUDGE_SCRIPT = """replies:
  - match: "<seed=6><q=0>"
    texts: ["Rating: [[2]]"]
  - match: "<seed=5>"
    texts: ["Rating: [[9]]"]
  - match: "<seed=6>"
    texts: ["Rating: [[4]]"]
  - match: "<seed=7><q=1>"
    texts: ["Rating: [[10]]"]
  - match: ".*"
    texts: ["Rating: [[6]]"]
"""


class SeededAnswerer(FakeBackend):
    """Answers from the conversation and the seed alone (never the call order); records every conversation."""

    answered: list[tuple[Conversation, GenConfig, str]]

    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        out = []
        for conv in conversations:
            question = zlib.crc32(conv[0].content.encode()) % 3
            text = f"turn {len(conv) // 2 + 1} <seed={config.seed}><q={question}>"
            self.answered.append((conv, config, text))
            out.append(Completion((text,), Usage(1, 1), ("stop",)))
        return out



@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_OFFLINE", "1")


def _model() -> SeededAnswerer:
    backend = SeededAnswerer(name="answerer")
    backend.answered = []
    return backend


def _judge(tmp_path: Path, **kwargs: Any) -> JudgeConfig:
    path = tmp_path / "judge.yaml"
    path.write_text(JUDGE_SCRIPT)
    return JudgeConfig.from_cli(models=[f"fake:{path}"], votes=1, **kwargs)


def _judged_run(tmp_path: Path, repeats: int | None) -> tuple[SeededAnswerer, Sink, TaskOutcome]:
    model, sink = _model(), Sink()
    outcome = run(SPEC, model, RunContext(judge=_judge(tmp_path), repeats=repeats, seed=5), sink)
    return model, sink, outcome


def test_each_sample_is_its_own_conversation_with_its_own_seed(tmp_path: Path) -> None:
    model, _, outcome = _judged_run(tmp_path, 3)
    assert {config.seed for _, config, _ in model.answered} == {5, 6, 7}
    assert outcome.info["repeats"] == 3 and outcome.info["seeds"] == [5, 6, 7]
    # greedy categories sample when K > 1; FastChat's other temperatures stay
    assert outcome.info["temperatures"]["math"] == 0.7 and outcome.info["temperatures"]["stem"] == 0.1
    assert {config.temperature for _, config, _ in model.answered} == {0.7, 0.1}
    first = {(conv[0].content, config.seed): text for conv, config, text in model.answered if len(conv) == 1}
    second = [(conv, config) for conv, config, _ in model.answered if len(conv) == 3]
    assert len(first) == len(second) == 8 * 3
    for conv, config in second:  # turn 2 of sample k sees sample k's own turn-1 answer
        assert conv[1].role == "assistant" and conv[1].content == first[(conv[0].content, config.seed)]
        assert f"<seed={config.seed}>" in conv[1].content


def test_every_sample_is_judged_and_sampling_metrics_match_the_samples_file(tmp_path: Path) -> None:
    _, sink, outcome = _judged_run(tmp_path, 3)
    rows = sink.rows
    assert len(rows) == 3 * 16 and len({(r["question_id"], r["turn"], r["sample"]) for r in rows}) == 48
    assert len({r["id"] for r in rows}) == 48 and all(r["seed"] == 5 + r["sample"] for r in rows)
    assert all(r["valid"] for r in rows) and outcome.info["judge"]["plan"]["calls"] == 48
    for row in rows:
        sample_type("multiturn_judge").model_validate(row)
    per_sample: dict[tuple[str, int], list[float]] = {}
    for r in rows:
        per_sample.setdefault((r["question_id"], r["sample"]), []).append(r["score"])
    per_question = [[statistics.mean(per_sample[(qid, k)]) for k in range(3)]
                    for qid in sorted({r["question_id"] for r in rows})]
    means = [statistics.mean(v) for v in per_question]
    assert outcome.metrics["score_mean@3"] == pytest.approx(statistics.mean(means))
    assert outcome.metrics["score_mean@3_stderr"] == pytest.approx(statistics.stdev(means) / len(means) ** 0.5)
    assert outcome.metrics["score_best@3"] == pytest.approx(statistics.mean(max(v) for v in per_question))
    assert outcome.metrics["score_sd@3"] == pytest.approx(statistics.mean(statistics.stdev(v) for v in per_question))
    assert (outcome.metrics["score_sd@3"] or 0.0) > 0  # the samples really were graded differently
    math = [r for r in rows if r["subset"] == "math"]
    assert outcome.groups["math"]["score_mean@3"] == pytest.approx(statistics.mean(r["score"] for r in math))
    assert outcome.info["sampling"] == {"questions": 8, "dropped_questions": 0, "excluded_samples": 0}


def test_headline_metrics_are_sample_zeros_as_in_a_one_sample_run(tmp_path: Path) -> None:
    _, sink1, one = _judged_run(tmp_path, None)
    _, sink3, three = _judged_run(tmp_path, 3)
    assert {k: three.metrics[k] for k in one.metrics} == one.metrics
    assert {cat: three.groups[cat]["score"] for cat in one.groups} == {c: g["score"] for c, g in one.groups.items()}
    assert three.metrics["score"] != pytest.approx(three.metrics["score_mean@3"])  # other samples score differently
    assert three.n == one.n == 16 and "repeats" not in one.info and "sample" not in sink1.rows[0]
    zero = [{k: v for k, v in r.items() if k not in ("sample", "seed")} for r in sink3.rows if r["sample"] == 0]
    assert zero == sink1.rows  # sample 0's rows are a one-sample run's rows, ids included


def test_invalid_verdicts_leave_samples_out_and_drop_unjudgeable_questions(tmp_path: Path) -> None:
    path = tmp_path / "judge.yaml"
    path.write_text(JUDGE_SCRIPT.replace('  - match: "<seed=5>"', '  - match: "<seed=\\\\d><q=2>"\n'
                                         '    texts: ["I refuse"]\n  - match: "<seed=5>"'))
    judge = JudgeConfig.from_cli(models=[f"fake:{path}"], votes=1)
    sink = Sink()
    outcome = run(SPEC, _model(), RunContext(judge=judge, repeats=2, seed=5), sink)
    refused = {r["question_id"] for r in sink.rows if not r["valid"]}
    assert refused and outcome.info["sampling"]["dropped_questions"] == len(refused)
    assert outcome.info["sampling"]["questions"] == 8 - len(refused)
    assert outcome.info["sampling"]["excluded_samples"] == 2 * len(refused)
    kept = [r for r in sink.rows if r["question_id"] not in refused]
    per_question: dict[str, list[float]] = {}
    for r in kept:
        per_question.setdefault(r["question_id"], []).append(r["score"])
    assert outcome.metrics["score_mean@2"] == pytest.approx(statistics.mean(map(statistics.mean, per_question.values())))


def test_dry_run_plans_k_times_the_judge_calls(tmp_path: Path) -> None:
    warnings: list[str] = []
    judge = JudgeConfig.from_cli(models=["fake:/nonexistent.yaml"], votes=2, dry_run=True)
    outcome = run(SPEC, _model(), RunContext(judge=judge, repeats=3, warn=warnings.append), Sink())
    assert outcome.info["judge_plan"]["calls"] == 16 * 3 * 2 and outcome.info["repeats"] == 3
    assert any("96 judge calls" in w for w in warnings)


def test_response_cache_answers_a_rerun_and_computes_only_new_samples(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"

    def cached_run(repeats: int) -> SeededAnswerer:
        inner = _model()
        backend = CachedBackend(inner, cache)
        try:
            run(SPEC, backend, RunContext(repeats=repeats, seed=3), Sink())
        finally:
            backend.close()
        return inner

    assert len(cached_run(2).answered) == 2 * 16
    assert cached_run(2).answered == []
    more = cached_run(3)
    assert len(more.answered) == 16 and {c.seed for _, c, _ in more.answered} == {5}


def test_saved_answers_hold_k_choices_and_load_as_sample_zero(tmp_path: Path) -> None:
    out = tmp_path / "answers" / "answerer.jsonl"
    sink = Sink()
    run(SPEC, _model(), RunContext(repeats=3, seed=0, task_args={"save_answers": str(out)}), sink)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 8 and all([c["index"] for c in r["choices"]] == [0, 1, 2] for r in rows)
    assert all("<seed=2>" in r["choices"][2]["turns"][1] for r in rows)
    saved = load_model_answers(out.parent)["answerer"]
    assert all("<seed=0>" in turns[0] and len(turns) == 2 for turns in saved.values())
    assert len(sink.rows) == 24 and {r["sample"] for r in sink.rows} == {0, 1, 2}  # unjudged: answer rows


def test_cli_run_writes_a_valid_record_with_sampling_metrics(tmp_path: Path) -> None:
    path = tmp_path / "judge.yaml"
    path.write_text(JUDGE_SCRIPT)
    run_dir = execute(RunOptions(model=_model(), tasks="mt_bench", output=tmp_path / "runs", repeats=2, limit=1,
                                 seed=5, judge_models=(f"fake:{path}",), quiet=True, no_cache=True))
    task = load_record(run_dir).tasks["mt_bench"]
    assert task.info["repeats"] == 2 and task.info["seeds"] == [5, 6]
    sd, mean, score = (task.metric(name).value for name in ("score_sd@2", "score_mean@2", "score"))  # type: ignore[union-attr]
    assert sd is not None and mean is not None and score is not None
    assert sd > 0 and mean < score  # sample 1 (seed 6) is graded lower than sample 0 (seed 5)
    rows = [json.loads(line) for line in (run_dir / "samples" / "mt_bench.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 16 and {r["sample"] for r in rows} == {0, 1}


def test_pairwise_samples_score_their_outcomes_against_the_baseline(tmp_path: Path, data_dir: Path) -> None:
    path = tmp_path / "pair.yaml"
    # sample 0 (seed 0) wins in both orders, sample 1 (seed 1) ties
    path.write_text('replies:\n  - match: "<seed=1>"\n    texts: ["[[C]]"]\n'
                    '  - match: "(A\'s Answer - start\\\\]|### Assistant A:)\\\\nturn "\n    texts: ["[[A]]"]\n'
                    '  - match: ".*"\n    texts: ["[[B]]"]\n')
    judge = JudgeConfig.from_cli(definition="mt-bench-pair", models=[f"fake:{path}"])
    sink = Sink()
    outcome = run(SPEC, _model(), RunContext(data_dir=data_dir, judge=judge, subsets=("writing",), limit=2,
                                             repeats=2, task_args={"baseline": "llama-13b"}), sink)
    assert outcome.metrics["win_rate"] == 1.0  # sample 0's, as without --repeats
    assert {r["sample"]: r["score"] for r in sink.rows} == {0: 1.0, 1: 0.5}
    assert outcome.metrics["win_rate_mean@2"] == pytest.approx(0.75) and outcome.metrics["win_rate_best@2"] == 1.0
    assert outcome.groups["writing"]["win_rate_mean@2"] == pytest.approx(0.75)
