"""Thinking traces: split by markers, unclosed thoughts, server reasoning_content, token counts."""

from __future__ import annotations

import pytest

from evalkit.backends._fake import FakeBackend
from evalkit.tasks._thinking import ThinkingSplit, count_tokens, reasoning_from_reply, split_thinking
from evalkit.types import Completion

SPLITS = [
    ("<think>A错，C也错</think>\n答案：B", ("A错，C也错", "答案：B", False)),
    ("Let me check.</think>\n\nAnswer: C", ("Let me check.", "Answer: C", False)),  # opened by the template
    ("<think>先看A选项，A是错误的。然后", ("先看A选项，A是错误的。然后", "", True)),  # cut off inside
    ("<think>one</think>middle<think>two</think> Answer: D", ("one\nmiddle\ntwo", "Answer: D", False)),
    ("答案：B", ("", "答案：B", False)),
    ("", ("", "", False)),
    ("<think></think>B", ("", "B", False)),
]


@pytest.mark.parametrize(("text", "expected"), SPLITS)
def test_split_thinking(text: str, expected: tuple[str, str, bool]) -> None:
    got = split_thinking(text)
    assert (got.thinking, got.answer, got.truncated_in_thought) == expected


def test_configurable_markers_and_markers_off() -> None:
    text = "[REASON]compare A and B[/REASON]Answer: A"
    assert split_thinking(text, "[REASON]", "[/REASON]") == ThinkingSplit("compare A and B", "Answer: A")
    assert split_thinking(text, "", "").answer == text  # splitting turned off
    assert split_thinking("<|thought|>x", "<|thought|>", "<|/thought|>").truncated_in_thought


def test_server_reasoning_comes_first_and_is_kept_out_of_the_answer() -> None:
    got = split_thinking("答案：C", reasoning="A不对，B也不对。")
    assert got == ThinkingSplit("A不对，B也不对。", "答案：C", False) and got.has_thinking
    both = split_thinking("<think>more</think>答案：C", reasoning="first")
    assert both.thinking == "first\n\nmore" and both.answer == "答案：C"


def test_count_tokens_approximation_and_tokenizer() -> None:
    assert count_tokens("") == 0
    assert count_tokens("让我们一步一步思考") == 9  # one per CJK character
    assert count_tokens("The answer is (B).") == 7  # words, brackets, full stop
    fake = FakeBackend()
    assert count_tokens("abc 中文", fake) == 6  # the fake tokenizer: one token per character
    assert count_tokens("abc", lambda text: [1, 2]) == 2


def test_reasoning_from_reply_reads_both_field_names_in_index_order() -> None:
    reply = {"choices": [{"index": 1, "message": {"content": "B", "reasoning": "second"}},
                         {"index": 0, "message": {"content": "A", "reasoning_content": "first"}},
                         {"index": 2, "message": {"content": "C"}}]}
    assert reasoning_from_reply(reply, 3) == ("first", "second", "")
    assert reasoning_from_reply(reply, 4) == ("first", "second", "", "")
    assert reasoning_from_reply({"choices": [{"text": "x"}]}, 1, chat=False) == ("",)


def test_completion_reasoning_defaults_to_empty() -> None:
    assert Completion(("B",)).reasoning == ()
    assert Completion(("B",), reasoning=("why",)).reasoning == ("why",)
