"""The API backend against a real server that fails on a deterministic schedule: 429 with Retry-After, 500,
slow responses past the client timeout, malformed JSON. Runs complete with correct results and every fault
shows up as exactly one counted retry."""

from __future__ import annotations

import time

import pytest

from evalkit.backends._fake import FakeBackend
from evalkit.backends._openai import OpenAIBackend
from evalkit.backends._openai_http import RetryPolicy
from evalkit.errors import BackendError
from evalkit.server import FaultSchedule, create_app, serve_in_thread
from evalkit.types import GenConfig, LoglikelihoodRequest, Message

# generous attempts (a request may meet several faults in a row under concurrency), tiny waits
POLICY = RetryPolicy(max_retries=20, backoff_base=0.001, backoff_max=0.01, timeout=0.4)


@pytest.mark.integration  # waits out a slow reply and retries (~4 s)
def test_run_completes_with_correct_results_and_counted_retries() -> None:
    schedule = FaultSchedule.parse("ok,429,ok,500,ok,slow,ok,malformed,ok,ok", retry_after=0.01, slow_seconds=1.0)
    convs = [(Message("user", f"question {i}: say something"),) for i in range(12)]
    reqs = [LoglikelihoodRequest(f"context number {i} ", f"answer {i % 4}") for i in range(12)]
    texts = [f"a text to score, number {i}, " * 3 for i in range(4)]
    config = GenConfig(max_tokens=12)
    with serve_in_thread(create_app(FakeBackend(), "flaky", faults=schedule)) as url:
        client = OpenAIBackend("flaky", base_url=url, policy=POLICY, concurrency=4)
        generated = client.generate(convs, config)
        scored = client.loglikelihood(reqs)
        rolled = client.loglikelihood_rolling(texts)
    reference = FakeBackend()
    assert generated == reference.generate(convs, config)
    assert scored == reference.loglikelihood(reqs)
    assert rolled == reference.loglikelihood_rolling(texts)
    stats = client.stats()
    assert set(schedule.served) == {"ok", "429", "500", "slow", "malformed"}  # every fault kind was met
    assert stats.retries == schedule.faults > 0
    # successful calls: the scheduled "ok" POSTs plus the one GET /v1/models probe (not scheduled)
    assert stats.requests == schedule.served["ok"] + 1 and stats.failures == 0


def test_retry_after_is_honoured() -> None:
    schedule = FaultSchedule.parse("429,ok", retry_after=0.4)
    with serve_in_thread(create_app(FakeBackend(), "m", faults=schedule)) as url:
        client = OpenAIBackend("m", base_url=url, policy=POLICY, concurrency=1)
        start = time.monotonic()
        client.generate([(Message("user", "hi"),)], GenConfig(max_tokens=4))
        elapsed = time.monotonic() - start
    assert elapsed >= 0.4  # the jittered backoff alone would wait at most 0.01 s
    assert client.stats().retries == 1


def test_giving_up_is_a_clear_backend_error() -> None:
    schedule = FaultSchedule.parse("500")
    with serve_in_thread(create_app(FakeBackend(), "m", faults=schedule)) as url:
        client = OpenAIBackend("m", base_url=url, policy=RetryPolicy(max_retries=2, backoff_base=0.001,
                                                                     backoff_max=0.01, timeout=2))
        with pytest.raises(BackendError, match=r"HTTP 500.*gave up after 3 attempts"):
            client.generate([(Message("user", "hi"),)], GenConfig(max_tokens=4))
    assert client.stats().retries == 2 and client.stats().failures == 1
    assert schedule.served["500"] == 3


def test_a_refused_connection_is_retried_then_reported() -> None:
    client = OpenAIBackend("m", base_url="http://127.0.0.1:9/v1",
                           policy=RetryPolicy(max_retries=1, backoff_base=0.001, backoff_max=0.01, timeout=1))
    with pytest.raises(BackendError, match="connection failed"):
        client.generate([(Message("user", "hi"),)], GenConfig(max_tokens=4))
    assert client.stats().retries == 1
