"""Letter extraction for generative multiple choice, driven by a table of real-looking model outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evalkit.tasks._answer_extraction import extract_choice

CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "extraction" / "cases.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", CASES, ids=[f"{i}:{c['text'][:30]}" for i, c in enumerate(CASES)])
def test_extraction_table(case: dict[str, Any]) -> None:
    assert extract_choice(case["text"], case.get("choices", "ABCD")) == case["expected"]


def test_table_covers_both_languages_and_unextractable() -> None:
    assert sum(1 for c in CASES if c["expected"] is None) >= 5
    assert sum(1 for c in CASES if any("\u4e00" <= ch <= "\u9fff" for ch in c["text"])) >= 15


def test_choices_as_a_list_and_bad_choices() -> None:
    assert extract_choice("答案是 B", ["A", "B"]) == "B"
    assert extract_choice("答案是 C", ["A", "B"]) is None
    with pytest.raises(ValueError, match="single letters"):
        extract_choice("B", ["AB", "C"])
