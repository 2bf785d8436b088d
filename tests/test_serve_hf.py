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
    pytest.importorskip("torch")
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
