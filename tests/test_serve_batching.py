"""`evalkit serve` batches concurrent requests: the micro-batcher, server-sent events, and (over a served
tiny random Llama on 127.0.0.1) concurrency that never changes a greedy answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pytest

from evalkit.server._batching import MicroBatcher


def _sse(lines: Iterator[str]) -> list[Any]:
    events = []
    for line in lines:
        if line.startswith("data: "):
            data = line[len("data: "):]
            events.append(data if data == "[DONE]" else orjson.loads(data))
    return events


def test_items_arriving_together_run_as_one_batch_per_kind() -> None:
    calls: list[list[int]] = []

    def run(items: list[int]) -> list[int]:
        calls.append(list(items))
        time.sleep(0.05)
        return [x * 10 for x in items]

    batcher = MicroBatcher(threading.Lock(), window_s=0.05, max_items=64)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda x: batcher.run_many("k", [x], run)[0], range(8)))
    assert results == [x * 10 for x in range(8)]
    assert len(calls) < 8 and sorted(x for call in calls for x in call) == list(range(8))
    assert batcher.run_many("other", [1, 2], lambda items: [-x for x in items]) == [-1, -2]


def test_a_failing_batch_fails_its_requests_and_the_worker_goes_on() -> None:
    def broken(items: list[int]) -> list[int]:
        raise ValueError("backend down")

    batcher = MicroBatcher(threading.Lock(), window_s=0.0)
    with pytest.raises(ValueError, match="backend down"):
        batcher.run_many("k", [1], broken)
    assert batcher.run_many("k", [3], lambda items: items) == [3]


def test_streamed_chat_and_completion_events_add_up_to_the_reply() -> None:
    from evalkit.backends import load_backend
    from evalkit.server import create_app, serve_in_thread

    with serve_in_thread(create_app(load_backend("fake:echo"), "fake:echo")) as url:
        body = {"model": "fake:echo", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 20}
        plain = httpx.post(f"{url}/chat/completions", json=body, timeout=30).json()
        with httpx.stream("POST", f"{url}/chat/completions", timeout=30,
                          json={**body, "stream": True, "stream_options": {"include_usage": True}}) as reply:
            assert reply.headers["content-type"].startswith("text/event-stream")
            events = _sse(reply.iter_lines())
        assert events[-1] == "[DONE]" and events[0]["choices"][0]["delta"]["role"] == "assistant"
        text = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1] if e["choices"])
        assert text == plain["choices"][0]["message"]["content"]
        assert events[-2]["usage"] == plain["usage"] and events[-3]["choices"][0]["finish_reason"] == "stop"
        with httpx.stream("POST", f"{url}/completions", timeout=30,
                          json={"model": "fake:echo", "prompt": "abc", "max_tokens": 5, "stream": True}) as reply:
            events = _sse(reply.iter_lines())
        plain_text = httpx.post(f"{url}/completions", json={"model": "fake:echo", "prompt": "abc", "max_tokens": 5},
                                timeout=30).json()["choices"][0]["text"]
        assert "".join(e["choices"][0]["text"] for e in events[:-1]) == plain_text


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Any, str, Any]]:
    from evalkit.backends import load_backend
    from evalkit.server import create_app, serve_in_thread

    backend = load_backend("tiny-llama", {"seed": "4", "max_length": "512"})
    app = create_app(backend, "tiny", batch_window_ms=20)
    with serve_in_thread(app) as url:
        yield backend, url, app.state.service


_QUESTIONS = ["Once upon a time", "The capital of France is", "Write a poem about rain", "1, 2, 3,",
              "Tell me a joke", "What is the meaning of life?", "Translate hello", "Name a colour"]


def _chat(url: str, i: int, question: str, **extra: Any) -> dict[str, Any]:
    body = {"model": "tiny", "messages": [{"role": "user", "content": question}], "temperature": 0,
            "max_tokens": 6 + 2 * i, **extra}
    reply = httpx.post(f"{url}/chat/completions", json=body, timeout=120)
    assert reply.status_code == 200, reply.text
    return reply.json()["choices"][0]


@pytest.mark.integration
def test_concurrency_never_changes_a_greedy_answer(served: tuple[Any, str, Any]) -> None:
    _backend, url, service = served
    decoder = service.batched.continuous.batcher  # the transformers backend batches generation continuously
    sequential = [_chat(url, i, q) for i, q in enumerate(_QUESTIONS)]
    assert decoder.peak_rows == 1  # one request at a time: every step ran one row
    with ThreadPoolExecutor(8) as pool:
        concurrent = list(pool.map(lambda a: _chat(url, *a), enumerate(_QUESTIONS)))
    assert [c["message"]["content"] for c in concurrent] == [s["message"]["content"] for s in sequential]
    assert [c["finish_reason"] for c in concurrent] == [s["finish_reason"] for s in sequential]
    assert decoder.peak_rows > 1  # some requests were decoded in the same steps


@pytest.mark.integration
def test_stop_strings_and_streams_stay_per_request_in_a_batch(served: tuple[Any, str, Any]) -> None:
    _backend, url, _service = served
    free = [_chat(url, 5, q)["message"]["content"] for q in _QUESTIONS[:4]]
    stops = [text[3:5] if len(text) > 5 else None for text in free]

    def ask(i: int) -> str:
        extra: dict[str, Any] = {"stop": [stops[i]]} if stops[i] else {}
        if i % 2:
            body = {"model": "tiny", "messages": [{"role": "user", "content": _QUESTIONS[i]}], "temperature": 0,
                    "max_tokens": 16, "stream": True, **extra}
            with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=120) as reply:
                events = _sse(reply.iter_lines())
            return "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1] if e["choices"])
        return str(_chat(url, 5, _QUESTIONS[i], **extra)["message"]["content"])

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(ask, range(4)))
    for text, stop, answer in zip(free, stops, answers):
        assert answer == (text[:text.index(stop)] if stop else text)
