"""The answer-extraction cascade, pinned by a table of real-looking model outputs (tests/data/extraction_cases.json).

Each case is read the way generative multiple choice reads an output: thinking split off first, then the
cascade's strict and lenient stages (`truncated` marks an output cut off by max_tokens).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evalkit.backends._fake import FakeBackend, from_script
from evalkit.store import CachedBackend
from evalkit.tasks._answer_extraction import (
    STAGES,
    Extraction,
    extract_answer,
    extract_choice,
    extract_multi,
    extract_with_model,
    extractor_conversation,
)
from evalkit.tasks._thinking import split_thinking

CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "extraction_cases.json").read_text(encoding="utf-8"))


def _read(case: dict[str, Any]) -> Extraction:
    split = split_thinking(case["input"])
    if not split.answer:
        return Extraction(None, "none", None)
    return extract_answer(split.answer, case["letters"], truncated=case.get("truncated", False))


@pytest.mark.parametrize("case", CASES, ids=[f"{i}:{c['input'][:24]}" for i, c in enumerate(CASES)])
def test_extraction_table(case: dict[str, Any]) -> None:
    got = _read(case)
    assert (got.letter, got.stage) == (case["expected"], case["stage"]), case.get("note")
    assert (got.pattern is None) == (got.stage == "none")


def test_table_covers_the_styles_the_issue_names() -> None:
    def count(pred: Any) -> int:
        return sum(1 for c in CASES if pred(c))

    assert len(CASES) >= 80
    assert {c["stage"] for c in CASES} == {"strict", "lenient", "none"}
    assert count(lambda c: c["expected"] is None) >= 15
    assert count(lambda c: any("\u4e00" <= ch <= "\u9fff" for ch in c["input"])) >= 40
    assert count(lambda c: c["input"].isascii() and c["input"]) >= 20
    assert count(lambda c: "</think>" in c["input"] or "<think>" in c["input"]) >= 5
    assert count(lambda c: any("\uff21" <= ch <= "\uff3a" for ch in c["input"])) >= 4  # full-width letters
    assert count(lambda c: "**" in c["input"] or "#" in c["input"]) >= 8  # markdown
    assert count(lambda c: c.get("truncated")) >= 3
    several = [c for c in CASES if c["expected"] and sum(ch in c["input"] for ch in "ABCD") >= 3]
    assert len(several) >= 10  # reasoning that names several letters before concluding


def test_extract_choice_is_the_cascade_letter() -> None:
    for case in CASES:
        if not case.get("truncated") and "think>" not in case["input"]:
            assert extract_choice(case["input"], case["letters"]) == case["expected"]


def test_truncated_output_reads_statements_only() -> None:
    text = "我们逐一分析。\n选项A：该说法"
    assert extract_answer(text).letter == "A"  # a finished reply naming one option is read
    assert extract_answer(text, truncated=True) == Extraction(None, "none", None)


def test_bad_choices_raise() -> None:
    with pytest.raises(ValueError, match="single letters"):
        extract_answer("B", ["AB", "C"])
    assert STAGES == ("strict", "lenient", "model", "none")


MULTI = [
    ("分析略。\n答案：A、B、D", "ABD", "strict"),
    ("答案：ACD", "ACD", "strict"),
    ("Answer: A, C", "AC", "strict"),
    ("正确答案为A、C、D", "ACD", "lenient"),
    ("本题选ABD。", "ABD", "lenient"),
    ("The correct answers are A and C.", "AC", "lenient"),
    ("正确的选项有B和E。", "BE", "lenient"),
    ("**BD**", "BD", "lenient"),
    ("逐项分析：A正确，B错误，C正确。\n\nA C", "AC", "lenient"),
    ("答案：Ｂ、Ｄ", "BD", "strict"),
    ("答案：B", "B", "strict"),
    ("我无法判断。", None, "none"),
]


@pytest.mark.parametrize(("text", "letters", "stage"), MULTI)
def test_multi_answer_extraction(text: str, letters: str | None, stage: str) -> None:
    got = extract_multi(text, "ABCDE")
    assert (got.letters, got.stage) == (letters, stage)


def _extractor(replies: list[str]) -> FakeBackend:
    return from_script({"replies": [{"match": "Answer to classify", "texts": replies}]}, name="extractor")


def test_model_stage_maps_answers_through_the_given_backend(tmp_path: Path) -> None:
    inner = _extractor(["B"])
    cached = CachedBackend(inner, tmp_path / "cache.sqlite")
    answers = ["首都是北京。", "It is the one about Beijing."]
    questions = ["首都是哪里？\nA. 上海\nB. 北京", None]
    first = extract_with_model(answers, "AB", cached, questions)
    assert first == [Extraction("B", "model", "model:extractor")] * 2
    assert inner.calls["generate"] == 2
    again = extract_with_model(answers, "AB", cached, questions)
    assert again == first and inner.calls["generate"] == 2  # the second time comes from the cache
    cached.close()


def test_model_stage_none_and_garbage_give_no_letter() -> None:
    assert extract_with_model(["?"], "ABCD", _extractor(["NONE"])) == [Extraction(None, "none", None)]
    assert extract_with_model(["?"], "ABCD", _extractor(["A or B"])) == [Extraction(None, "none", None)]
    assert extract_with_model([], "ABCD", _extractor(["A"])) == []


def test_extractor_prompt_shows_question_and_answer_tail_only() -> None:
    long_answer = "推理" * 3000 + "所以是北京"
    (message,) = extractor_conversation(long_answer, "ABCD", "首都是哪里？\nA. 上海\nB. 北京")
    assert message.role == "user"
    assert "A/B/C/D" in message.content and "首都是哪里" in message.content
    assert message.content.count("推理") < 1100 and "所以是北京" in message.content
