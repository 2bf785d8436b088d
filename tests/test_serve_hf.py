"""`evalkit serve` over a real transformers backend (a tiny random Llama built from a config, offline):
exact loglikelihood and rolling round trips through the OpenAI backend, and byte-level tokens that split
Chinese characters still line up with the prompt text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from evalkit.backends._openai import OpenAIBackend
from evalkit.backends._openai_http import RetryPolicy
from evalkit.types import LoglikelihoodRequest

pytestmark = pytest.mark.integration

REQS = [LoglikelihoodRequest("问题：1+1等于几？\nA. 1\nB. 2\n答案：", f" {x}") for x in "AB"] + [
    LoglikelihoodRequest("The capital of France is", " Paris")]


@pytest.fixture(scope="module")
def hf() -> Iterator[tuple[Any, str]]:
    from evalkit.backends import load_backend
    from evalkit.server import create_app, serve_in_thread

    backend = load_backend("tiny-llama")
    with serve_in_thread(create_app(backend, "tiny")) as url:
        yield backend, url


def test_scores_round_trip_exactly(hf: tuple[Any, str]) -> None:
    backend, url = hf
    client = OpenAIBackend("tiny", base_url=url, policy=RetryPolicy(timeout=60))
    assert client.loglikelihood(REQS) == backend.loglikelihood(REQS)
    texts = ["中文的困惑度测试。Perplexity of mixed text."]
    assert client.loglikelihood_rolling(texts) == backend.loglikelihood_rolling(texts)


def test_standard_echo_tokens_line_up_with_the_text(hf: tuple[Any, str]) -> None:
    backend, url = hf
    prompt = "答案：B。The answer is B."
    reply = httpx.post(f"{url}/completions", json={"model": "tiny", "prompt": prompt, "max_tokens": 0,
                                                   "echo": True, "logprobs": 1}, timeout=60).json()
    lp = reply["choices"][0]["logprobs"]
    assert "".join(lp["tokens"]) == prompt and len(lp["tokens"]) > 1
    assert all(prompt.startswith(t, off) for t, off in zip(lp["tokens"], lp["text_offset"]))
    assert lp["token_logprobs"] == list(backend.loglikelihood_rolling([prompt])[0].logprobs)


def test_chat_top_logprobs_equal_the_models_own_next_token_scores(hf: tuple[Any, str]) -> None:
    """The verdict-position alternatives a probability judge reads over HTTP are the transformers model's
    exact next-token logprobs after the rendered prompt plus the forced prefix."""
    from evalkit.types import GenConfig, Message

    backend, url = hf
    client = OpenAIBackend("tiny", base_url=url, policy=RetryPolicy(timeout=60))
    conv = (Message("user", "Rate the answer 1-10. Answer: Paris."),)
    [tokens] = client.chat_logprobs([conv], GenConfig(max_tokens=3), 5, ["Rating: [["])
    assert len(tokens) == 3 and all(len(t.top) == 5 for t in tokens)
    first = tokens[0]
    assert first.top[0][1] >= first.top[-1][1] and first.text == first.top[0][0]  # greedy = the likeliest
    context = backend.render_chat(conv) + "Rating: [["
    for text, logprob in first.top:
        if text and len(backend.tokenizer.encode(text, add_special_tokens=False)) == 1:
            want = backend.loglikelihood([LoglikelihoodRequest(context, text)])[0].logprob
            assert logprob == pytest.approx(want, abs=1e-4)
    # generated text round-trips: the tokens spell what plain generation writes after the same prefix
    plain = backend.complete([context], GenConfig(max_tokens=3))[0].text
    assert "".join(t.text for t in tokens) == plain
