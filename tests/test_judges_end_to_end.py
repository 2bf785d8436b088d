"""End to end: judge official MT-Bench answer files with a scripted judge, through the run directory.

The scripted judge rates by answer length (1 + len // 150, at most 10) and refuses to rate answers whose
length is a multiple of 7 (those must end up invalid, not scored). The test recomputes the expected
per-model, per-turn and per-category means straight from the answer files.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import pytest

from evalkit.backends._fake import FakeBackend
from evalkit.judges import JudgeConfig
from evalkit.judges._command import JudgeRunOptions, run_judge
from evalkit.types import Completion, Conversation, GenConfig, Usage

MODELS = ("alpaca-13b", "gpt-4", "llama-13b", "vicuna-13b-v1.3")
CATEGORIES = ("writing", "math", "coding")
_TURN1 = re.compile(r"\[Assistant's Answer - start\]\n(.*)\n\[Assistant's Answer - end\]", re.DOTALL)
_TURN2 = re.compile(r".*### Assistant:\n(.*)\n\n<\|Conversation - end\|>", re.DOTALL)


def _rule(answer: str) -> float | None:
    return None if len(answer) % 7 == 0 else float(min(10, 1 + len(answer) // 150))


class LengthJudge(FakeBackend):
    """A scripted judge that likes long answers."""

    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        out = []
        for conv in conversations:
            text = conv[-1].content
            m = _TURN1.search(text) or _TURN2.match(text)
            assert m is not None, "prompt layout changed"
            rating = _rule(m.group(1))
            reply = "I cannot rate this." if rating is None else f"Long enough. Rating: [[{int(rating)}]]"
            out.append(Completion((reply,), Usage(len(text), len(reply)), ("stop",)))
        return out


def _expected(data_dir: Path) -> dict[str, dict[str, list[float]]]:
    questions = [json.loads(line) for line in (data_dir / "mt_bench" / "question.jsonl").read_text().splitlines()]
    cats = {str(q["question_id"]): q["category"] for q in questions if q["category"] in CATEGORIES}
    out: dict[str, dict[str, list[float]]] = {m: defaultdict(list) for m in MODELS}
    for model in MODELS:
        for line in (data_dir / "mt_bench" / "model_answer" / f"{model}.jsonl").read_text().splitlines():
            row = json.loads(line)
            qid = str(row["question_id"])
            if qid not in cats:
                continue
            for turn, answer in enumerate(row["choices"][0]["turns"], 1):
                score = _rule(answer)
                key = "invalid" if score is None else "valid"
                out[model][key].append(score or 0.0)
                if score is not None:
                    out[model][f"turn{turn}"].append(score)
                    out[model][cats[qid]].append(score)
    return out


@pytest.fixture(scope="module")
def judged_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    options = JudgeRunOptions(
        answers=data_dir / "mt_bench" / "model_answer", data_dir=data_dir, output=tmp_path_factory.mktemp("runs"),
        judge=JudgeConfig("mt-bench-single", models=("length-judge",), votes=1), models=MODELS,
        categories=CATEGORIES, hub=False, bootstrap_rounds=50, echo=lambda msg: None)
    path = run_judge(options, backend_factory=lambda spec, args: LengthJudge(name=spec))
    assert path is not None
    return path


def test_scores_per_model_turn_category(judged_run: Path, data_dir: Path) -> None:
    results = json.loads((judged_run / "results.json").read_text())
    expected = _expected(data_dir)
    for model in MODELS:
        got = results["scores"][model]
        exp = expected[model]
        mean = lambda xs: sum(xs) / len(xs)
        assert got["mean"] == pytest.approx(mean(exp["valid"]), abs=1e-4)
        assert got["invalid"] == len(exp["invalid"]) and got["n"] == len(exp["valid"])
        assert got["items"] == 60
        assert got["ci_low"] <= got["mean"] <= got["ci_high"]
        for turn in ("turn1", "turn2"):
            assert got["by_turn"][turn] == pytest.approx(mean(exp[turn]), abs=1e-4)
        for cat in CATEGORIES:
            assert got["by_category"][cat] == pytest.approx(mean(exp[cat]), abs=1e-4)


def test_ranking_reliability_and_votes(judged_run: Path, data_dir: Path) -> None:
    results = json.loads((judged_run / "results.json").read_text())
    ranking = results["ranking"]
    assert sorted(r["model"] for r in ranking) == sorted(MODELS)
    assert [r["rank"] for r in ranking] == [1, 2, 3, 4]
    assert all(r["ci_low"] <= r["elo"] <= r["ci_high"] for r in ranking)
    assert ranking == sorted(ranking, key=lambda r: -r["elo"])
    best = max(MODELS, key=lambda m: results["scores"][m]["mean"])
    worst = min(MODELS, key=lambda m: results["scores"][m]["mean"])
    assert ranking[0]["model"] == best and ranking[-1]["model"] == worst
    rel = results["reliability"]
    invalid = sum(results["scores"][m]["invalid"] for m in MODELS)
    assert invalid > 0  # the refusal rule fired, so this test checks that invalid items stay unscored
    assert rel["valid_rate"] == pytest.approx(1 - invalid / 240)
    assert rel["retries"] == invalid * 2  # max_retries of mt-bench-single
    assert results["judge"]["cost"]["calls"] == 240 + invalid * 2
    assert results["votes"]["per_item"] == 1 and results["tasks"]["mt_bench"]["n"] == 240


def test_samples_keep_responses_votes_and_references(judged_run: Path) -> None:
    rows = [json.loads(line) for line in (judged_run / "samples" / "mt_bench.jsonl").read_text().splitlines()]
    assert len(rows) == 240
    math_rows = [r for r in rows if r["subset"] == "math"]
    assert math_rows and all(r["target"] for r in math_rows)  # reference answers from gpt-4.jsonl
    invalid = [r for r in rows if not r["valid"]]
    assert invalid and all(r["score"] is None and len(r["responses"]) == 3 for r in invalid)
    assert all(r["votes"][0]["judge"] == "length-judge" for r in rows)
    manifest = json.loads((judged_run / "manifest.json").read_text())
    assert any(p.endswith("gpt-4.jsonl") for p in manifest["files"])
