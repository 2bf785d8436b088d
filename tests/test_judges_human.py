"""Agreement with human labels from a label file (lmsys mt_bench_human_judgments layout for pairwise)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.judges import JudgedItem, JudgeItem, Reduced, human_agreement


def _pair(qid: str, a: str, b: str, verdict: str) -> JudgedItem:
    item = JudgeItem(qid, "writing", 1, ("q",), (a, b), (("x",), ("y",)))
    pref = {"A": 1.0, "B": 0.0, "tie": 0.5}[verdict]
    return JudgedItem(item, Reduced(pref, verdict, 1, 1), ())


def test_pairwise_human_agreement_with_flipped_orientation(tmp_path: Path) -> None:
    judged = [_pair("1", "m1", "m2", "A"), _pair("2", "m1", "m2", "B"), _pair("3", "m1", "m2", "tie"),
              _pair("4", "m1", "m2", "A")]
    labels = [
        {"question_id": 1, "turn": 1, "model_a": "m1", "model_b": "m2", "winner": "model_a"},  # agrees
        {"question_id": 2, "turn": 1, "model_a": "m2", "model_b": "m1", "winner": "model_a"},  # flipped, agrees
        {"question_id": 3, "turn": 1, "model_a": "m1", "model_b": "m2", "winner": "model_b"},  # judge tie
        {"question_id": 4, "turn": 1, "model_a": "m1", "model_b": "m2", "winner": "model_b"},  # disagrees
        {"question_id": 9, "turn": 1, "model_a": "m1", "model_b": "m2", "winner": "tie"},  # not judged: ignored
    ]
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in labels) + "\n")
    report = human_agreement(judged, path)
    assert report["matched_labels"] == 4
    assert report["percent_agreement"] == pytest.approx(2 / 4)
    assert report["percent_agreement_no_ties"] == pytest.approx(2 / 3)


def test_single_human_scores(tmp_path: Path) -> None:
    judged = []
    for qid, score in (("1", 8.2), ("2", 3.0), ("3", 6.0)):
        item = JudgeItem(qid, "writing", 1, ("q",), ("m",), (("x",),))
        judged.append(JudgedItem(item, Reduced(score, None, 1, 1), ()))
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(json.dumps({"question_id": q, "turn": 1, "model": "m", "score": s})
                              for q, s in (("1", 8), ("2", 3), ("3", 7))) + "\n")
    report = human_agreement(judged, path)
    assert report["percent_agreement"] == pytest.approx(2 / 3)  # 8.2 rounds to 8; 6 != 7
