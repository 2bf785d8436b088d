"""The embedded SmolLM2 as a judge (CPU, slow): probability mode end to end, and `evalkit run` on MT-Bench."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_smollm2_probability_judge_always_answers(data_dir: Path) -> None:
    from evalkit.backends import load_backend
    from evalkit.judges import (
        ProbabilityJudge,
        build_items,
        load_judge_definition,
        load_model_answers,
        load_questions,
    )

    definition = load_judge_definition("mt-bench-single-prob")
    questions = [q for q in load_questions(data_dir, hub=False) if q.category == "writing"][:1]
    answers = load_model_answers(data_dir / "mt_bench" / "model_answer", ["llama-13b"])
    items = build_items(definition, questions, answers, turns=(1,))
    [[vote]] = ProbabilityJudge(definition, load_backend("smollm2"), name="smollm2").judge(items)
    part = vote.parts[0]
    assert vote.value is not None and 1.0 <= float(vote.value) <= 10.0
    assert part.distribution is not None and math.isclose(sum(part.distribution.values()), 1.0, abs_tol=1e-4)
    assert part.valid_mass is not None and 0.0 < part.valid_mass <= 1.0


def test_evalkit_run_mt_bench_with_a_probability_judge(data_dir: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from evalkit.cli import main

    code = main(["run", "--model", "smollm2", "--tasks", "mt_bench:writing", "--limit", "1", "--data-dir",
                 str(data_dir), "--task-args", "max_tokens=16", "--judge", "mt-bench-single-prob",
                 "--judge-model", "smollm2", "-o", str(tmp_path / "runs"), "--no-cache"])
    assert code == 0
    [run] = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    results = json.loads((run / "results.json").read_text())
    metrics = results["tasks"]["mt_bench"]["metrics"]
    assert metrics["valid_rate"] == 1.0 and 1.0 <= metrics["score"] <= 10.0
    assert set(results["tasks"]["mt_bench"]["groups"]) == {"writing"}
    rows = [json.loads(line) for line in (run / "samples" / "mt_bench.jsonl").read_text().splitlines()]
    assert [r["turn"] for r in rows] == [1, 2] and all(r["votes"] for r in rows)
