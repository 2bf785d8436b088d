"""CMB-Exam scoring: evalkit's official mode against a literal transcription of the CMB repository's code.

The oracle below transcribes FreedomIntelligence/CMB `src/utils.py::match_choice` and `extract_ans` (commit
0cc16a2) and the aggregation of `score.py` (commit 76adf4e), file reading replaced by lists. The cases live in
tests/data/cmb_scoring_cases.json (hand-made ones with hand-written expectations, and generated ones).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from evalkit.tasks._cmb_score import (
    official_correct,
    official_match_choice,
    official_prediction,
    official_report,
    option_f1,
    set_correct,
)

CASES = json.loads((Path(__file__).parent / "data" / "cmb_scoring_cases.json").read_text(encoding="utf-8"))


# ---- oracle: the official code, transcribed (same statements, same order) --------------------------------------

def oracle_match_choice(text: str, cot_flag: bool) -> str:
    if cot_flag:
        option = ["A", "B", "C", "D", "E", "F", "G"]
        res = re.search(r"(答案|正确选项)(?:是|：|为|应该是|应该为)(.*?)(。|\.|$)", text, re.S)  # noqa: FURB167
        if res:
            return "".join([x for x in res.group(2) if x in option])
        return "".join([i for i in text if i in option])
    else:
        option = ["A", "B", "C", "D", "E", "F", "G"]
        res = re.search(r"(答案|正确选项)(?:是|：|为|应该是|应该为)(.*?)(。|\.|$)", text, re.S)  # noqa: FURB167
        if res:
            return "".join([x for x in res.group(2) if x in option])
        return "".join([i for i in text if i in option])


def oracle_extract_ans(da: dict[str, Any], ans_num: int, cot_flag: bool) -> str:
    ty = da["question_type"]
    ress: dict[str, int] = defaultdict(int)
    for ind in range(ans_num):
        res = da[f"answer_{ind}"]
        choice = oracle_match_choice(res, cot_flag)
        if len(choice) > 1 and ty != "多项选择题":
            choice = choice[0]
        if len(choice) > 0:
            ress[choice] += 1
    if len(ress) > 0:
        model_ans = sorted(ress.items(), key=lambda x: x[1], reverse=True)[0][0]  # noqa: FURB192
    else:
        model_ans = ""
    return model_ans


def oracle_score(cmb_data: list[dict[str, Any]], model_data: list[dict[str, Any]]) -> dict[str, Any]:
    wisediag_dict = {item["id"]: item["model_answer"] for item in model_data}
    accuracy_stats: dict[str, Any] = {}
    for item in cmb_data:
        exam_type = item["exam_type"]
        exam_class = item["exam_class"]
        question_id = item["id"]
        correct_answer = item["answer"]
        model_answer = wisediag_dict.get(question_id, "")
        if exam_type not in accuracy_stats:
            accuracy_stats[exam_type] = {}
        if exam_class not in accuracy_stats[exam_type]:
            accuracy_stats[exam_type][exam_class] = {"correct": 0, "total": 0}
        accuracy_stats[exam_type][exam_class]["total"] += 1
        if correct_answer == model_answer:
            accuracy_stats[exam_type][exam_class]["correct"] += 1
    result: dict[str, Any] = {"accuracy_per_category": {}, "accuracy_per_subcategory": {}}
    for exam_type, classes in accuracy_stats.items():
        total_accuracy = 0.0
        class_count = 0
        result["accuracy_per_subcategory"][exam_type] = {}
        for exam_class, stats in classes.items():
            accuracy = stats["correct"] / stats["total"]
            result["accuracy_per_subcategory"][exam_type][exam_class] = accuracy
            total_accuracy += accuracy
            class_count += 1
        average_accuracy = total_accuracy / class_count if class_count > 0 else 0
        result["accuracy_per_category"][exam_type] = average_accuracy
    return result


# ---- tests --------------------------------------------------------------------------------------------------

def test_the_case_file_is_large_enough() -> None:
    assert len(CASES["cases"]) >= 200
    assert sum(1 for c in CASES["cases"] if "expected_prediction" in c) >= 30


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["name"] for c in CASES["cases"]])
def test_official_mode_equals_the_transcription(case: dict[str, Any]) -> None:
    answers, qtype, gold = case["answers"], case["question_type"], case["gold"]
    da = {"question_type": qtype, **{f"answer_{i}": a for i, a in enumerate(answers)}}
    for cot_flag in (False, True):
        expected = oracle_extract_ans(da, len(answers), cot_flag)
        assert official_prediction(answers, qtype) == expected
        for text in answers:
            assert official_match_choice(text) == oracle_match_choice(text, cot_flag)
    if "expected_prediction" in case:  # hand-made: the oracle itself is checked against a human reading
        assert expected == case["expected_prediction"]
    assert official_correct(gold, expected) is (gold == expected)


@pytest.mark.parametrize("report", CASES["reports"], ids=[r["name"] for r in CASES["reports"]])
def test_official_aggregation_equals_score_py(report: dict[str, Any]) -> None:
    rows = report["rows"]
    cmb_data = [{"id": i, "exam_type": t, "exam_class": c, "answer": "A"} for i, (t, c, _) in enumerate(rows)]
    model_data = [{"id": i, "model_answer": "A" if ok else "B"} for i, (_, _, ok) in enumerate(rows)]
    expected = oracle_score(cmb_data, model_data)
    ours = official_report((t, c, ok) for t, c, ok in rows)
    assert ours.per_class == expected["accuracy_per_subcategory"]
    assert list(ours.per_type) == list(expected["accuracy_per_category"])  # first-seen order, as score.py
    for exam_type, value in expected["accuracy_per_category"].items():
        assert ours.per_type[exam_type] == pytest.approx(value, abs=1e-15)
    assert ours.overall == pytest.approx(sum(ours.per_type.values()) / len(ours.per_type))
    assert ours.acc_micro == pytest.approx(sum(ok for _, _, ok in rows) / len(rows))


def test_exam_type_is_the_unweighted_mean_of_its_classes() -> None:
    rows = [("t", "big", True)] * 9 + [("t", "big", False)] + [("t", "small", False)]
    report = official_report(rows)
    assert report.per_type["t"] == pytest.approx((0.9 + 0.0) / 2)  # not 9/11
    assert report.acc_micro == pytest.approx(9 / 11)


@pytest.mark.parametrize(("gold", "prediction", "official", "as_set", "f1"), [
    ("AC", "CA", False, True, 1.0),
    ("AC", "AC", True, True, 1.0),
    ("ABD", "AB", False, False, 0.8),
    ("A", "", False, False, 0.0),
    ("AB", "AAB", False, True, 1.0),
    ("B", "b", False, True, 1.0),
    ("CE", "AF", False, False, 0.0),
])
def test_set_scoring_and_partial_credit(gold: str, prediction: str, official: bool, as_set: bool, f1: float) -> None:
    assert official_correct(gold, prediction) is official
    assert set_correct(gold, prediction) is as_set
    assert option_f1(gold, prediction) == pytest.approx(f1)
