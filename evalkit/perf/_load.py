"""A load test for any OpenAI-compatible endpoint: streamed requests at a sweep of concurrency levels.

Every request is a streamed (server-sent events) chat or text completion, so the client sees when each piece
of the answer arrives. Per request it records the send time, the arrival of every chunk that carries text,
the end of the stream, and the token counts the server reports (`stream_options.include_usage`; without
them, one token per text chunk).

Metrics follow evalscope's `perf` definitions:

* TTFT (time to first token): from sending the request to the first chunk with generated text.
* TPOT (time per output token, first token excluded): `(latency - TTFT) / (output tokens - 1)` per request
  (requests with a single output token have none).
* ITL (inter-token latency): the time between consecutive text chunks, every interval of every request.
* Latency: from sending the request to the end of the response.
* Test duration: from the first request's start to the last request's end, per concurrency level.
* Requests/s: successful requests / duration. Output tokens/s: all output tokens / duration; total
  tokens/s adds the input tokens.
* Percentiles (p50/p90/p99) are taken over the per-request values (per interval for ITL) with linear
  interpolation between ranks (numpy's default); failed requests count as errors, not in the percentiles.

Concurrency is closed-loop, as in evalscope: `c` workers each send their next request as soon as their
previous one ends, until the level's `requests` have been sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["LevelReport", "PerfSettings", "RequestRecord", "run_level", "summarize"]


@dataclass(frozen=True)
class PerfSettings:
    """What each request asks for."""

    base_url: str
    model: str
    prompts: tuple[str, ...]
    max_tokens: int = 128
    temperature: float = 0.0
    endpoint: str = "chat"  # "chat" (/chat/completions) or "completions" (/completions)
    timeout: float = 600.0
    api_key: str | None = None


@dataclass
class RequestRecord:
    """The timeline of one streamed request (monotonic seconds)."""

    index: int
    start: float
    end: float = 0.0
    chunk_times: list[float] = field(default_factory=list)
    text: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None

    @property
    def latency(self) -> float:
        return self.end - self.start

    @property
    def ttft(self) -> float | None:
        return self.chunk_times[0] - self.start if self.chunk_times else None

    @property
    def tpot(self) -> float | None:
        if self.ttft is None or self.output_tokens < 2:
            return None
        return (self.latency - self.ttft) / (self.output_tokens - 1)

    @property
    def itls(self) -> list[float]:
        return [b - a for a, b in zip(self.chunk_times, self.chunk_times[1:])]


def _payload(settings: PerfSettings, prompt: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": settings.model, "max_tokens": settings.max_tokens,
                            "temperature": settings.temperature, "stream": True,
                            "stream_options": {"include_usage": True}}
    if settings.endpoint == "chat":
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    return body


def _chunk_text(event: dict[str, Any]) -> str:
    text = ""
    for choice in event.get("choices") or []:
        delta = choice.get("delta")
        piece = delta.get("content") if isinstance(delta, dict) else choice.get("text")
        text += piece or ""
    return text


async def _one(client: Any, settings: PerfSettings, index: int) -> RequestRecord:
    record = RequestRecord(index, time.perf_counter())
    path = "/chat/completions" if settings.endpoint == "chat" else "/completions"
    prompt = settings.prompts[index % len(settings.prompts)]
    chunks = 0
    try:
        async with client.stream("POST", settings.base_url.rstrip("/") + path,
                                 json=_payload(settings, prompt)) as reply:
            if reply.status_code != 200:
                body = (await reply.aread()).decode(errors="replace")
                raise RuntimeError(f"HTTP {reply.status_code}: {body[:200]}")
            async for line in reply.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                event = orjson.loads(data)
                if "error" in event:
                    raise RuntimeError(str(event["error"].get("message", event["error"]))[:200])
                piece = _chunk_text(event)
                if piece:
                    record.chunk_times.append(time.perf_counter())
                    record.text += piece
                    chunks += 1
                usage = event.get("usage")
                if usage:
                    record.input_tokens = int(usage.get("prompt_tokens") or 0)
                    record.output_tokens = int(usage.get("completion_tokens") or 0)
        record.output_tokens = record.output_tokens or chunks
    except Exception as exc:  # noqa: BLE001  a failed request is a measured error, not a crash
        record.error = f"{type(exc).__name__}: {exc}"[:300]
    record.end = time.perf_counter()
    return record


async def _level(settings: PerfSettings, concurrency: int, requests: int,
                 on_record: Callable[[RequestRecord], None] | None) -> list[RequestRecord]:
    import httpx

    headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    records: list[RequestRecord] = []
    counter = iter(range(requests))
    async with httpx.AsyncClient(timeout=settings.timeout, limits=limits, headers=headers) as client:
        async def worker() -> None:
            for index in counter:
                record = await _one(client, settings, index)
                records.append(record)
                if on_record is not None:
                    on_record(record)

        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return sorted(records, key=lambda r: r.index)


def run_level(settings: PerfSettings, concurrency: int, requests: int,
              on_record: Callable[[RequestRecord], None] | None = None) -> list[RequestRecord]:
    """Send `requests` streamed requests with `concurrency` closed-loop workers; their records by index."""
    return asyncio.run(_level(settings, concurrency, requests, on_record))


@dataclass(frozen=True)
class LevelReport:
    """The metrics of one concurrency level (the JSON shape is `as_dict`)."""

    concurrency: int
    records: tuple[RequestRecord, ...]

    def as_dict(self) -> dict[str, Any]:
        return summarize(self.concurrency, self.records)


def _stats(values: Sequence[float], scale: float) -> dict[str, float | None]:
    import numpy as np

    if not values:
        return {"mean": None, "p50": None, "p90": None, "p99": None}
    array = np.asarray(values, dtype=float) * scale
    p50, p90, p99 = np.percentile(array, [50, 90, 99])
    return {"mean": round(float(array.mean()), 4), "p50": round(float(p50), 4), "p90": round(float(p90), 4),
            "p99": round(float(p99), 4)}


def summarize(concurrency: int, records: Sequence[RequestRecord]) -> dict[str, Any]:
    """One level's metrics: counts, throughput, and latency / TTFT / TPOT / ITL distributions."""
    ok = [r for r in records if r.error is None]
    errors: dict[str, int] = {}
    for r in records:
        if r.error is not None:
            errors[r.error] = errors.get(r.error, 0) + 1
    duration = (max(r.end for r in records) - min(r.start for r in records)) if records else 0.0
    output = sum(r.output_tokens for r in ok)
    inputs = sum(r.input_tokens for r in ok)
    per_s = (lambda x: round(x / duration, 4)) if duration > 0 else (lambda x: 0.0)
    return {
        "concurrency": concurrency, "requests": len(records), "succeeded": len(ok), "failed": len(records) - len(ok),
        "errors": errors, "duration_s": round(duration, 4),
        "requests_per_s": per_s(len(ok)), "output_tokens_per_s": per_s(output),
        "total_tokens_per_s": per_s(output + inputs),
        "input_tokens_mean": round(inputs / len(ok), 2) if ok else None,
        "output_tokens_mean": round(output / len(ok), 2) if ok else None,
        "latency_s": _stats([r.latency for r in ok], 1.0),
        "ttft_ms": _stats([t for r in ok if (t := r.ttft) is not None], 1000.0),
        "tpot_ms": _stats([t for r in ok if (t := r.tpot) is not None], 1000.0),
        "itl_ms": _stats([gap for r in ok for gap in r.itls], 1000.0),
    }
