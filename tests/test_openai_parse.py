"""Pure translation of the OpenAI-compatible backend: request bodies, echoed-logprob parsing, Retry-After."""

from __future__ import annotations

import email.utils

import pytest

from evalkit.backends._openai import normalize_base_url
from evalkit.backends._openai_http import ApiClient, parse_retry_after
from evalkit.backends._openai_parse import (
    NoPromptLogprobs,
    chat_body,
    continuation_result,
    parse_completion,
    prompt_token_logprobs,
    score_body,
)
from evalkit.errors import ConfigError
from evalkit.types import GenConfig, Message


def test_chat_body_carries_every_parameter_and_only_set_ones() -> None:
    conv = (Message("system", "s"), Message("user", "u"), Message("assistant", "a"), Message("user", "u2"))
    body = chat_body("m", conv, GenConfig(temperature=0.3, top_p=0.8, top_k=5, max_tokens=7, stop=("x",), n=2,
                                          seed=4))
    assert body == {"model": "m", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                                               {"role": "assistant", "content": "a"}, {"role": "user", "content": "u2"}],
                    "temperature": 0.3, "top_p": 0.8, "top_k": 5, "max_tokens": 7, "stop": ["x"], "n": 2, "seed": 4}
    plain = chat_body("m", conv[:1], GenConfig())
    assert set(plain) == {"model", "messages", "temperature", "max_tokens", "n"}  # no nulls for unset options
    assert score_body("m", "p") == {"model": "m", "prompt": "p", "max_tokens": 1, "echo": True, "logprobs": 1,
                                    "temperature": 0.0}


def test_parse_completion_orders_choices_and_reads_usage() -> None:
    data = {"choices": [{"index": 1, "message": {"content": "two"}, "finish_reason": "length"},
                        {"index": 0, "message": {"content": None}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 3}}
    done = parse_completion(data, 2, chat=True)
    assert done.texts == ("", "two") and done.finish_reasons == ("stop", "length")
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (9, 3)
    with pytest.raises(ValueError, match="n=3"):
        parse_completion(data, 3, chat=True)
    with pytest.raises(KeyError):
        parse_completion({"id": "x"}, 1, chat=True)  # malformed -> retried by the client


def _choice(tokens: list[str], logprobs: list[float | None], top: list[dict[str, float] | None] | None,
            offsets: list[int] | None = None) -> dict[str, object]:
    lp: dict[str, object] = {"tokens": tokens, "token_logprobs": logprobs, "top_logprobs": top}
    if offsets is not None:
        lp["text_offset"] = offsets
    return {"logprobs": lp}


def test_continuation_tokens_are_found_by_offset() -> None:
    # "Q: x?" + " yes", tokenised with a token straddling the boundary ("? y") and one generated token after
    choice = _choice(["Q", ":", " x", "? y", "es", "!"], [None, -1.0, -2.0, -0.5, -0.25, -9.0],
                     [None, {":": -1.0}, {" x": -2.0}, {"? y": -0.5}, {"es": -0.25, "ES": -3.0}, {"!": -9.0}])
    result = continuation_result(choice, context_len=5, prompt_len=9)
    assert result.logprob == -0.75 and result.is_greedy  # the straddling token counts; "!" is not prompt
    not_top = _choice(["ab", "c"], [None, -2.0], [None, {"d": -0.1, "c": -2.0}])
    assert continuation_result(not_top, context_len=2, prompt_len=3) == (-2.0, False)
    no_top = _choice(["ab", "c"], [None, -2.0], None, offsets=[0, 2])
    assert continuation_result(no_top, context_len=2, prompt_len=3) == (-2.0, False)


def test_byte_pieces_at_the_boundary_belong_to_the_continuation() -> None:
    # "答：" + "是": the character 是 arrives as an empty byte piece then the piece that completes it
    choice = _choice(["答：", "", "是"], [None, -1.5, -0.5], None, offsets=[0, 2, 2])
    assert continuation_result(choice, context_len=2, prompt_len=3).logprob == -2.0


def test_missing_prompt_logprobs_are_detected() -> None:
    with pytest.raises(NoPromptLogprobs):
        continuation_result({"logprobs": None, "text": "x"}, context_len=1, prompt_len=2)
    with pytest.raises(NoPromptLogprobs, match="first prompt token"):
        continuation_result(_choice(["a", "b"], [None, -1.0], None), context_len=0, prompt_len=2)


def test_rolling_drops_the_unscored_first_token_and_prefers_exact_lists() -> None:
    assert prompt_token_logprobs(_choice(["a", "b", "c"], [None, -1.0, -2.0], None), prompt_len=3).logprobs == (
        -1.0, -2.0)
    exact = {"logprobs": None, "evalkit_token_logprobs": [-0.5, -1.5, -2.5], "evalkit_windows": 2}
    rolled = prompt_token_logprobs(exact, prompt_len=3)
    assert rolled.logprobs == (-0.5, -1.5, -2.5) and rolled.windows == 2


def test_retry_after_forms() -> None:
    assert parse_retry_after("3") == 3.0 and parse_retry_after("0.5") == 0.5 and parse_retry_after(None) is None
    assert parse_retry_after("-2") == 0.0
    date = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert parse_retry_after(date, now=1_000_000.0) == pytest.approx(30.0)
    assert parse_retry_after("tomorrow-ish") is None


def test_base_url_normalisation_and_key_scrubbing() -> None:
    assert normalize_base_url("http://localhost:8000/v1/") == "http://localhost:8000/v1"
    assert normalize_base_url("https://h.example/openai/v1") == "https://h.example/openai/v1"
    with pytest.raises(ConfigError, match="http"):
        normalize_base_url("localhost:8000")
    client = ApiClient("http://x/v1", "sk-abcdef")
    assert client.scrub("bad key sk-abcdef!") == "bad key ***!" and "sk-" not in repr(client)
