"""The OpenAI-compatible backend against a real `evalkit serve` on 127.0.0.1 (FakeBackend behind it)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import ClassVar

import pytest

from evalkit.backends._fake import FakeBackend
from evalkit.backends._openai import OpenAIBackend, create
from evalkit.backends._openai_http import RetryPolicy
from evalkit.errors import BackendError, ConfigError, UnsupportedRequest
from evalkit.server import FaultSchedule, create_app, serve_in_thread
from evalkit.store import CachedBackend
from evalkit.types import GenConfig, LoglikelihoodRequest, LoglikelihoodResult, Message

FAST = RetryPolicy(max_retries=3, backoff_base=0.001, backoff_max=0.01, timeout=5.0)
REQS = [LoglikelihoodRequest("问题：中国的首都是哪里？\n答案：", f" {x}") for x in "ABCD"] + [
    LoglikelihoodRequest("The quick brown fox", " jumps over the lazy dog")]
CONVS = [(Message("user", "What is the capital of France?"),),
         (Message("system", "Answer briefly."), Message("user", "2+2?"), Message("assistant", "4"),
          Message("user", "And 3+3?"))]


class GreedyOnA(FakeBackend):
    """A fake whose " A" continuations are the greedy ones (to test is_greedy through the wire)."""

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        out = super().loglikelihood(requests)
        return [LoglikelihoodResult(r.logprob, q.continuation.strip() == "A") for r, q in zip(out, requests)]


def _script() -> FakeBackend:
    return GreedyOnA(replies=[(re.compile("capital of France"), ["Paris.", "It is Paris.", "Paris!"]),
                              (re.compile(r"3\+3"), ["6"])])


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, FakeBackend]]:
    inner = _script()
    with serve_in_thread(create_app(inner, "fake-judge")) as url:
        yield url, inner


def _client(url: str, **kw: object) -> OpenAIBackend:
    return OpenAIBackend("fake-judge", base_url=url, policy=FAST, concurrency=4, **kw)  # type: ignore[arg-type]


def test_generate_matches_the_wrapped_backend(served: tuple[str, FakeBackend]) -> None:
    url, _ = served
    for config in (GenConfig(max_tokens=50), GenConfig(temperature=0.7, n=3, seed=1, max_tokens=50),
                   GenConfig(max_tokens=3, stop=(".",))):
        got = _client(url).generate(CONVS, config)
        want = _script().generate(CONVS, config)
        assert [c.texts for c in got] == [c.texts for c in want]
        assert [c.usage for c in got] == [c.usage for c in want]


def test_loglikelihood_round_trips_exactly(served: tuple[str, FakeBackend]) -> None:
    url, _ = served
    got = _client(url).loglikelihood(REQS)
    assert got == _script().loglikelihood(REQS)  # exact floats, and is_greedy (True only for " A")
    assert [r.is_greedy for r in got] == [True, False, False, False, False]


def test_scoring_requests_reach_the_wrapped_backend_in_batches() -> None:
    class Recording(FakeBackend):
        batches: ClassVar[list[int]] = []

        def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
            self.batches.append(len(requests))
            return super().loglikelihood(requests)

    inner = Recording()
    many = [LoglikelihoodRequest(f"shared prefix {i // 4}:", f" {'ABCD'[i % 4]}") for i in range(10)]
    with serve_in_thread(create_app(inner, "m")) as url:
        client = OpenAIBackend("m", base_url=url, policy=FAST, score_batch=4)
        assert client.loglikelihood(many) == FakeBackend().loglikelihood(many)
    # the client sends 3 requests of at most 4; `evalkit serve` may merge requests that arrive together into one
    # batch of the wrapped backend, but never splits one: every batch is a sum of whole requests
    assert client.stats().requests == 1 + 3  # /models probe + 3
    assert sum(inner.batches) == 10 and all(b in (2, 4, 6, 8, 10) for b in inner.batches)


def test_loglikelihood_through_standard_echo_without_the_evalkit_split(served: tuple[str, FakeBackend]) -> None:
    url, _ = served
    client = _client(url)
    client._owner = ""  # behave like any OpenAI client: per-token echo, split by text offsets
    got = client.loglikelihood(REQS)
    want = FakeBackend().loglikelihood(REQS)  # one token per character: token sums equal the direct score
    assert [g.logprob for g in got] == pytest.approx([w.logprob for w in want], abs=1e-9)
    assert not any(g.is_greedy for g in got)  # no top_logprobs from the wrapped backend: unknown -> False


def test_rolling_and_complete_round_trip(served: tuple[str, FakeBackend]) -> None:
    url, _ = served
    texts = ["短文本", "a somewhat longer English text " * 5]
    assert _client(url).loglikelihood_rolling(texts) == FakeBackend().loglikelihood_rolling(texts)
    assert _client(url).loglikelihood_rolling(texts, stride=16) == FakeBackend().loglikelihood_rolling(texts, stride=16)
    got = _client(url).complete(["Once upon a time"], GenConfig(max_tokens=8))
    assert got[0].texts == _script().complete(["Once upon a time"], GenConfig(max_tokens=8))[0].texts


def test_stats_count_requests_tokens_and_cost(served: tuple[str, FakeBackend]) -> None:
    url, _ = served
    client = _client(url, price_in=2.0, price_out=8.0)
    done = client.generate(CONVS, GenConfig(max_tokens=20))
    stats = client.stats()
    prompt = sum(c.usage.prompt_tokens for c in done)
    completion = sum(c.usage.completion_tokens for c in done)
    assert (stats.requests, stats.retries, stats.failures) == (2, 0, 0)
    assert (stats.prompt_tokens, stats.completion_tokens) == (prompt, completion)
    assert stats.cost_usd == pytest.approx((prompt * 2.0 + completion * 8.0) / 1e6)
    assert _client(url).stats().cost_usd is None


def test_bounded_concurrency() -> None:
    schedule = FaultSchedule(pattern=("slow",), slow_seconds=0.15)
    with serve_in_thread(create_app(FakeBackend(), "m", faults=schedule)) as url:
        client = OpenAIBackend("m", base_url=url, policy=FAST, concurrency=3)
        client.generate([(Message("user", f"q{i}"),) for i in range(9)], GenConfig(max_tokens=4))
    assert schedule.max_in_flight == 3


def test_unsupported_scoring_names_the_fallback(served: tuple[str, FakeBackend]) -> None:
    url, _ = served
    with pytest.raises(UnsupportedRequest, match="generative multiple choice"):
        _client(url, logprobs="false").loglikelihood(REQS[:1])

    class ChatOnly(FakeBackend):
        def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
            raise UnsupportedRequest("this model cannot score")

    with serve_in_thread(create_app(ChatOnly(), "chat-only")) as chat_url:
        client = OpenAIBackend("chat-only", base_url=chat_url, policy=FAST)
        with pytest.raises(UnsupportedRequest, match="generative multiple choice"):
            client.loglikelihood(REQS[:1])
        before = client.stats().requests
        with pytest.raises(UnsupportedRequest):  # remembered: no second round trip
            client.loglikelihood(REQS[:1])
        assert client.stats().requests == before


def test_cache_in_front_of_the_api(served: tuple[str, FakeBackend], tmp_path: object) -> None:
    url, _ = served
    client = _client(url)
    cached = CachedBackend(client, f"{tmp_path}/c.sqlite")
    first = cached.generate(CONVS, GenConfig(max_tokens=9))
    again = cached.generate(CONVS, GenConfig(max_tokens=9))
    assert first == again and client.stats().requests == 2
    assert cached.stats().requests == 2  # the wrapper passes stats() through


def test_the_api_key_never_leaks(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-SECRET-0123456789"
    monkeypatch.setenv("EVALKIT_TEST_KEY", secret)
    seen: list[str] = []
    app = create_app(FakeBackend(), "m")

    @app.middleware("http")
    async def hostile(request, call_next):  # type: ignore[no-untyped-def]
        from starlette.responses import JSONResponse

        auth = request.headers.get("authorization", "")
        seen.append(auth)
        if request.url.path.endswith("/completions"):  # a server that echoes the credentials back
            return JSONResponse({"error": {"message": f"bad key {auth}"}}, status_code=401)
        return await call_next(request)

    with serve_in_thread(app) as url:
        backend = create("m", {"base_url": url, "api_key_env": "EVALKIT_TEST_KEY", "max_retries": "1"})
        with pytest.raises(BackendError) as info:
            backend.generate(CONVS[:1], GenConfig(max_tokens=4))
    assert seen and seen[0] == f"Bearer {secret}"  # it was sent ...
    for text in (str(info.value), repr(backend), str(backend.identity.as_dict()), backend.identity.cache_key(),
                 str(backend.stats())):
        assert secret not in text  # ... and appears nowhere else
    assert "***" in str(info.value) and "OPENAI_API_KEY" in str(info.value)


def test_factory_arguments() -> None:
    with pytest.raises(ConfigError, match="environment variable"):
        create("m", {"api_key": "sk-x"})
    with pytest.raises(ConfigError, match="unknown --model-args"):
        create("m", {"concurrancy": "3"})
    with pytest.raises(ConfigError, match="logprobs"):
        create("m", {"logprobs": "maybe"})
    backend = create("gpt-4o-mini", {"base_url": "https://user:pw@example.com/v1/", "concurrency": "3"})
    assert backend.identity.cache_key() == "openai|gpt-4o-mini||base_url=https://example.com/v1"
