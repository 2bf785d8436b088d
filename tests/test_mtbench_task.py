"""The MT-Bench task kind: answering turn by turn with the model's own history, FastChat's per-category
temperatures (overridable), judging through ctx.judge, dry runs, the demo fallback."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from _sinks import ListSink as Sink

from evalkit.backends._fake import FakeBackend
from evalkit.judges import JudgeConfig, load_model_answers
from evalkit.tasks._kind import RunContext
from evalkit.tasks._spec import load_spec_file
from evalkit.tasks.multiturn_judge import run
from evalkit.types import Completion, Conversation, GenConfig, Usage

SPEC = load_spec_file(Path(__file__).resolve().parents[1] / "tasks" / "mt_bench.yaml")


class Answerer(FakeBackend):
    """Answers 'answer <n>' and records every conversation with the temperature it was sampled at."""

    seen: list[tuple[Conversation, float]]

    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        out = []
        for conv in conversations:
            self.seen.append((conv, config.temperature))
            out.append(Completion((f"answer {len(self.seen)}",), Usage(1, 1), ("stop",)))
        return out



def _model() -> Answerer:
    backend = Answerer(name="answerer")
    backend.seen = []
    return backend


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_OFFLINE", "1")


def _judge_script(tmp_path: Path) -> str:
    path = tmp_path / "judge.yaml"
    path.write_text('replies:\n  - match: "answer 1\\\\n\\\\[Assistant"\n    texts: ["[[9]]"]\n'
                    '  - match: ".*"\n    texts: ["Rating: [[5]]", "I refuse"]\n')
    return f"fake:{path}"


def test_turn_two_sees_own_first_answer_and_category_temperatures() -> None:
    model, sink = _model(), Sink()
    outcome = run(SPEC, model, RunContext(data_dir=None), sink)  # demo set, no judge
    firsts = {conv[0].content: conv for conv, _ in model.seen if len(conv) == 1}
    assert len(model.seen) == 16 and outcome.info["judged"] is False
    second = [(c, t) for c, t in model.seen if len(c) == 3]
    assert len(second) == 8
    for conv, _ in second:
        assert [m.role for m in conv] == ["user", "assistant", "user"]
        assert conv[0].content in firsts  # the first turn was asked alone, before
        assert conv[1].content.startswith("answer ")
    temps = {c[0].content[:30]: t for c, t in model.seen if len(c) == 1}
    rows = {r["subset"]: r for r in sink.rows}
    for cat, expected in (("writing", 0.7), ("math", 0.0), ("stem", 0.1), ("coding", 0.0)):
        assert temps[rows[cat]["prompt"][0][:30]] == expected


def test_temperature_task_args_override() -> None:
    model = _model()
    run(SPEC, model, RunContext(task_args={"temperature": "0", "temperature_writing": "0.3"}), Sink())
    temps = {t for _, t in model.seen}
    assert temps == {0.0, 0.3}
    with pytest.raises(Exception, match="unknown"):
        run(SPEC, _model(), RunContext(task_args={"temprature": "0"}), Sink())


def test_judged_run_scores_turns_and_categories(tmp_path: Path) -> None:
    model, sink = _model(), Sink()
    judge = JudgeConfig.from_cli(definition=None, models=[_judge_script(tmp_path)], votes=1)
    outcome = run(SPEC, model, RunContext(judge=judge, subsets=("writing", "math")), sink)
    # turns are batched by temperature, greedy first: math turn 1 is "answer 1" and gets 9, the rest get 5
    assert outcome.n == 4 and outcome.metrics["valid_rate"] == 1.0
    assert outcome.metrics["score"] == pytest.approx((9 + 5 + 5 + 5) / 4)
    assert outcome.metrics["score_turn1"] == pytest.approx(7.0) and outcome.metrics["score_turn2"] == 5.0
    assert outcome.groups["math"]["score"] == 7.0 and outcome.groups["writing"]["score"] == 5.0
    assert outcome.info["judge"]["definition"] == "mt-bench-single"
    math_rows = [r for r in sink.rows if r["subset"] == "math"]
    assert all(r["target"] for r in math_rows)  # the demo's inline reference answers
    assert all(r["votes"] and r["responses"] for r in sink.rows)


def test_votes_and_invalid_judgments(tmp_path: Path) -> None:
    judge = JudgeConfig.from_cli(models=[_judge_script(tmp_path)], votes=2, reducer="mean")
    outcome = run(SPEC, _model(), RunContext(judge=judge, subsets=("math",)), Sink())
    # math only: "answer 1" is math turn 1 -> 9 from both votes; turn 2 -> [5, refuse(+retries)]
    assert outcome.info["votes"]["per_item"] == 2
    assert outcome.metrics["score"] == pytest.approx(7.0)
    assert outcome.info["reliability"]["vote_valid_rate"] < 1.0


def test_dry_run_makes_no_judge_calls(tmp_path: Path) -> None:
    warnings: list[str] = []
    judge = JudgeConfig.from_cli(models=["fake:/nonexistent.yaml"], votes=3, dry_run=True)
    outcome = run(SPEC, _model(), RunContext(judge=judge, warn=warnings.append), Sink())
    assert outcome.info["judge_plan"]["calls"] == 16 * 3
    assert any("48 judge calls" in w for w in warnings)


def test_limit_is_per_category_and_answers_can_be_saved(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "answers" / "answerer.jsonl"
    model, sink = _model(), Sink()
    outcome = run(SPEC, model, RunContext(data_dir=data_dir, limit=1, task_args={"save_answers": str(out)}), sink)
    assert outcome.n == 8 and {r["subset"] for r in sink.rows} == set(SPEC.categories)
    saved = load_model_answers(out.parent)
    assert len(saved["answerer"]) == 8 and all(len(t) == 2 for t in saved["answerer"].values())


def test_pairwise_against_a_baseline_answer_file(tmp_path: Path, data_dir: Path) -> None:
    path = tmp_path / "pair.yaml"
    # the judge prefers whichever answer is our model's ("answer <n>"), in both orders
    path.write_text('replies:\n  - match: "(A\'s Answer - start\\\\]|### Assistant A:)\\\\nanswer "\n'
                    '    texts: ["[[A]]"]\n  - match: ".*"\n    texts: ["[[B]]"]\n')
    judge = JudgeConfig.from_cli(definition="mt-bench-pair", models=[f"fake:{path}"])
    sink = Sink()
    outcome = run(SPEC, _model(), RunContext(data_dir=data_dir, judge=judge, subsets=("writing",), limit=2,
                                             task_args={"baseline": "llama-13b"}), sink)
    assert outcome.n == 4 and outcome.metrics["win_rate"] == 1.0
    assert outcome.metrics["position_consistency"] == 1.0
    assert all(r["models"] == ["answerer", "llama-13b"] and r["verdict"] == "A" for r in sink.rows)
    assert [r["model"] for r in outcome.info["ranking"]] == ["answerer", "llama-13b"]
