"""Generative CoT multiple choice on the embedded SmolLM2 and two real C-Eval dev questions (two more as shots)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from evalkit.backends import load_backend
from evalkit.tasks._answer_extraction import STAGES, extract_answer
from evalkit.tasks._mc_generative import generative_info, generative_metrics, parse_mc_options, run_generative
from evalkit.tasks._thinking import split_thinking
from evalkit.tasks.multiple_choice import Question

pytestmark = pytest.mark.integration


def _dev_rows(data_dir: Path) -> list[Question]:
    path = data_dir / "ceval" / "dev" / "computer_network_dev.csv"
    with path.open(encoding="utf-8") as handle:
        rows: list[dict[str, Any]] = list(csv.DictReader(handle))
    return [Question(i, r["question"], (r["A"], r["B"], r["C"], r["D"]), r["answer"], r) for i, r in enumerate(rows)]


def test_smollm2_cot_on_ceval_dev(data_dir: Path) -> None:
    rows = _dev_rows(data_dir)
    questions, shots = rows[:2], rows[3:5]  # two questions keep the real decode short on CPU
    backend = load_backend("smollm2")
    options = parse_mc_options({"mode": "cot", "max_tokens": "96"})
    header = "以下是中国关于计算机网络考试的单项选择题，请选出其中的正确答案。\n\n"
    records = run_generative(questions, backend, options, subject="computer_network", letters="ABCD",
                             header=header, shots=shots, tokenizer=backend)
    assert [r["id"] for r in records] == ["computer_network/0", "computer_network/1"]
    first = records[0]["messages"]
    assert [m["role"] for m in first] == ["user", "assistant", "user", "assistant", "user"]
    assert first[1]["content"].startswith("让我们一步一步思考，\n") and rows[3].raw["explanation"].strip() in first[1]["content"]
    for record in records:
        assert record["response"].strip() and record["finish_reason"] in ("stop", "length")
        assert record["extraction_stage"] in STAGES
        # what the sample says was extracted is what the cascade reads from the stored response
        again = extract_answer(split_thinking(record["response"]).answer, "ABCD",
                               truncated=record["finish_reason"] == "length")
        assert (again.letter, again.stage) == (record["prediction"], record["extraction_stage"])
        assert record["correct"] == (record["prediction"] == record["target"])
    info = generative_info(records, options)
    assert sum(info["extraction_stages"].values()) == 2
    assert 0.0 <= generative_metrics(records)["unextractable_rate"] <= 1.0
    print("smollm2 CoT stages:", info["extraction_stages"], [(r["prediction"], r["response"]) for r in records])
