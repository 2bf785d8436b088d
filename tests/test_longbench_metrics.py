"""LongBench metrics against hand-worked cases (tests/data/longbench/metric_cases.json)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from evalkit.metrics import _longbench as lb

_CASES = json.loads((Path(__file__).parent / "data" / "longbench" / "metric_cases.json").read_text("utf-8"))


def _id(case: dict[str, Any]) -> str:
    return f"{case['dataset']}:{case['prediction'][:24]!r}"


@pytest.mark.parametrize("seg", _CASES["segmentations"], ids=lambda s: s["text"])
def test_jieba_segments_as_the_cases_assume(seg: dict[str, Any]) -> None:
    assert lb._segment(seg["text"]) == seg["jieba"]


@pytest.mark.parametrize("case", _CASES["items"], ids=_id)
def test_item_score(case: dict[str, Any]) -> None:
    got = lb.score_item(case["dataset"], case["prediction"], case["answers"], case.get("all_classes"))
    assert got == pytest.approx(case["expected"], abs=1e-6), case["why"]


@pytest.mark.parametrize("case", _CASES["datasets"], ids=lambda c: c["why"])
def test_dataset_score(case: dict[str, Any]) -> None:
    assert lb.dataset_score(case["items"]) == case["expected"]


@pytest.mark.parametrize("case", _CASES["buckets"], ids=lambda c: c["why"])
def test_bucket_scores(case: dict[str, Any]) -> None:
    assert lb.bucket_scores(case["items"], case["lengths"]) == case["expected"]


def test_every_dataset_has_a_metric_a_category_and_a_language() -> None:
    assert len(lb.LONGBENCH_DATASETS) == 21
    assert set(lb.DATASET_METRIC) == set(lb.LONGBENCH_DATASETS) == set(lb.DATASET_LANGUAGE)
    assert set(lb.LONGBENCH_E_DATASETS) <= set(lb.LONGBENCH_DATASETS) and len(lb.LONGBENCH_E_DATASETS) == 13
    assert {lb.DATASET_LANGUAGE[d] for d in lb.LONGBENCH_DATASETS} == {"en", "zh", "code"}
    assert sum(v == "zh" for v in lb.DATASET_LANGUAGE.values()) == 5


def test_longbench_e_names_score_like_the_base_dataset() -> None:
    assert lb.score_item("trec_e", "\nCity\nLocation", ["City"], ["City", "Location"]) == 1.0


def test_unknown_dataset_is_named() -> None:
    with pytest.raises(ValueError, match="not_a_set"):
        lb.score_item("not_a_set", "x", ["x"])


def test_category_and_overall_averages() -> None:
    per = {"narrativeqa": 10.0, "multifieldqa_zh": 20.0, "lcc": 50.0, "passage_count": math.nan}
    cats = lb.category_scores(per)
    assert cats == {"single_doc_qa": 15.0, "code": 50.0}
    assert lb.overall_score(cats.values()) == 32.5
    assert math.isnan(lb.overall_score([]))
    assert math.isnan(lb.dataset_score([]))
