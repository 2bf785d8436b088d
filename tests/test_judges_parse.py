"""Parsing judge outputs: a data-driven table of real-looking judgments (tests/data/judges/parse_cases.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.judges import FALLBACK_RULES, parse_pairwise, parse_rating

CASES = json.loads((Path(__file__).parent / "data" / "judges" / "parse_cases.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", CASES["single"], ids=lambda c: c["text"][:40])
def test_single_rating_table(case: dict) -> None:
    parsed = parse_rating(case["text"], 1, 10, fallbacks=case["fallbacks"])
    assert parsed.raw == case["text"]
    if case["value"] is None:
        assert not parsed.valid and parsed.value is None and parsed.rule is None
        assert parsed.error
        if "error" in case:
            assert parsed.error == case["error"]
    else:
        assert parsed.valid and parsed.value == pytest.approx(case["value"])
        assert parsed.rule == case["rule"]


@pytest.mark.parametrize("case", CASES["pairwise"], ids=lambda c: c["text"][:40])
def test_pairwise_table(case: dict) -> None:
    parsed = parse_pairwise(case["text"], graded=case.get("graded", False), fallbacks=case["fallbacks"])
    assert parsed.value == case["value"]
    if case["value"] is not None:
        assert parsed.rule == case["rule"]
        assert parsed.strength == case.get("strength")


def test_table_covers_every_fallback_rule() -> None:
    used = {c.get("rule") for c in CASES["single"]}
    assert set(FALLBACK_RULES) <= used


def test_invalid_is_never_a_number() -> None:
    for text in ("", "Rating: [[-1]]", "no verdict", "Rating: [[0]]"):
        parsed = parse_rating(text, fallbacks=True)
        assert parsed.value is None


def test_custom_scale() -> None:
    assert parse_rating("[[5]]", 1, 5).value == 5.0
    assert parse_rating("[[6]]", 1, 5).error == "rating 6 outside 1..5"
