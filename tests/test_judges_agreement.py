"""κ and agreement against hand-computed values (tests/data/judges/kappa_cases.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.judges import agreement_report, cohen_kappa, fleiss_kappa, label_of, percent_agreement

CASES = json.loads((Path(__file__).parent / "data" / "judges" / "kappa_cases.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", CASES["cohen"], ids=lambda c: c["note"])
def test_cohen_kappa_hand_computed(case: dict) -> None:
    a = [label_of(v) for v in case["a"]]
    b = [label_of(v) for v in case["b"]]
    assert cohen_kappa(a, b) == pytest.approx(case["kappa"], abs=1e-9)
    assert percent_agreement(a, b) == pytest.approx(case["percent"])
    if "percent_no_ties" in case:
        assert percent_agreement(a, b, ignore_ties=True) == pytest.approx(case["percent_no_ties"])


@pytest.mark.parametrize("case", CASES["fleiss"], ids=lambda c: c["note"])
def test_fleiss_kappa_hand_computed(case: dict) -> None:
    assert fleiss_kappa(case["table"]) == pytest.approx(case["kappa"], abs=1e-9)


def test_degenerate_kappa_is_none_not_nan() -> None:
    assert cohen_kappa(["A", "A"], ["A", "A"]) is None
    assert fleiss_kappa([["A", "A"], ["A", "A"]]) is None
    assert percent_agreement([None], ["A"]) is None


def test_fleiss_drops_items_with_a_missing_label() -> None:
    table = [["A", "A", "A"], ["A", "A", "B"], ["B", "B", "B"], ["A", "B", "B"], ["A", None, "B"]]
    assert fleiss_kappa(table) == pytest.approx(1 / 3)


def test_rating_labels_are_rounded() -> None:
    assert label_of(7.4) == 7 and label_of(7.6) == 8 and label_of("tie") == "tie" and label_of(None) is None


def test_agreement_report_three_raters() -> None:
    raters = {"x": {"1": "A", "2": "A", "3": "B", "4": "A"},
              "y": {"1": "A", "2": "A", "3": "B", "4": "B"},
              "z": {"1": "A", "2": "B", "3": "B", "4": "B"}}
    report = agreement_report(raters)
    assert report["fleiss_kappa"] == pytest.approx(1 / 3)
    assert report["pairs"]["x~y"]["percent_agreement"] == pytest.approx(0.75)
    assert report["percent_agreement"] == pytest.approx((0.75 + 0.5 + 0.75) / 3)
