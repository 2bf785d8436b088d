"""A deterministic fault schedule for testing API clients against a real server.

The n-th POST request the server receives gets `pattern[n % len(pattern)]`:

- "ok": served normally;
- "429": Too Many Requests with a Retry-After header;
- "500": an internal server error;
- "slow": served after `slow_seconds` (longer than the client's timeout, so the client retries);
- "malformed": HTTP 200 with a truncated JSON body.

Two lasting defects imitate servers whose numbers must not be trusted as they come:

- `logprob_shift=k`: the echoed prompt logprobs of /v1/completions (`echo: true`) are moved by k positions,
  so with k=1 each token carries the logprob (and top alternatives) of the next token, as a popular server
  does; generated tokens' logprobs stay right;
- `owned_by="..."`: /v1/models reports that owner instead of "evalkit", so clients treat the server as any
  OpenAI-compatible one (plain per-token echo instead of evalkit's exact splits);
- `declared_context=n`: /v1/models declares `max_model_len: n`; `context_limit=m`: /v1/completions rejects
  prompts over m characters with HTTP 400 (one character is one token of the fake backend).

Examples:
    >>> FaultSchedule.parse("ok,429,ok,500").pattern
    ('ok', '429', 'ok', '500')
    >>> shift_echo({"choices": [{"logprobs": {"token_logprobs": [None, -1.0, -2.0], "top_logprobs": None}}]},
    ...            1)["choices"][0]["logprobs"]["token_logprobs"]
    [-1.0, -2.0, None]
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from evalkit.errors import ConfigError

__all__ = ["FaultSchedule", "install_faults", "shift_echo"]

_MODES = ("ok", "429", "500", "slow", "malformed")


@dataclass
class FaultSchedule:
    """Which POST requests fail and how; `served` counts each mode handed out, `max_in_flight` the peak
    number of requests the server was handling at once."""

    pattern: tuple[str, ...] = ("ok",)
    retry_after: float = 0.05
    slow_seconds: float = 1.0
    logprob_shift: int = 0
    owned_by: str | None = None
    declared_context: int | None = None
    context_limit: int | None = None
    served: Counter[str] = field(default_factory=Counter)
    max_in_flight: int = 0
    _count: int = 0
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def parse(cls, text: str, **kwargs: Any) -> FaultSchedule:
        """From a comma list such as "ok,429,ok,500,slow,malformed"."""
        pattern = tuple(p.strip() for p in text.split(",") if p.strip())
        bad = [p for p in pattern if p not in _MODES]
        if bad or not pattern:
            raise ConfigError(f"fault schedule '{text}': use a comma list of {', '.join(_MODES)}")
        return cls(pattern=pattern, **kwargs)

    @property
    def faults(self) -> int:
        """How many requests were answered with a fault."""
        return sum(v for k, v in self.served.items() if k != "ok")

    def next_mode(self) -> str:
        with self._lock:
            mode = self.pattern[self._count % len(self.pattern)]
            self._count += 1
            self.served[mode] += 1
            return mode

    def enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1


def shift_echo(reply: dict[str, Any], shift: int) -> dict[str, Any]:
    """A completions reply whose echoed logprobs are moved by `shift` positions (token j gets j+shift's)."""
    for choice in reply.get("choices") or []:
        lp = choice.get("logprobs") if isinstance(choice, dict) else None
        if not isinstance(lp, dict):
            continue
        for name in ("token_logprobs", "top_logprobs"):
            values = lp.get(name)
            if isinstance(values, list):
                n = len(values)
                lp[name] = [values[j + shift] if 0 <= j + shift < n else None for j in range(n)]
    return reply


async def _rewritten(response: Any, change: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    from starlette.responses import JSONResponse

    body = b"".join([chunk async for chunk in response.body_iterator])
    if response.status_code != 200:
        from starlette.responses import Response

        return Response(body, status_code=response.status_code, media_type="application/json")
    return JSONResponse(change(json.loads(body)))


def _with_entries(reply: dict[str, Any], schedule: FaultSchedule) -> dict[str, Any]:
    for model in reply.get("data") or []:
        if schedule.owned_by is not None:
            model["owned_by"] = schedule.owned_by
            model.pop("evalkit_identity", None)
        if schedule.declared_context is not None:
            model["max_model_len"] = schedule.declared_context
    return reply


async def _defects(request: Any, call_next: Callable[[Any], Awaitable[Any]], schedule: FaultSchedule) -> Any:
    """The lasting defects (owner disguise, shifted echo) around a normally served request."""
    from starlette.responses import JSONResponse

    path = request.url.path
    if request.method == "GET" and path.endswith("/models") and (schedule.owned_by or schedule.declared_context):
        return await _rewritten(await call_next(request), lambda reply: _with_entries(reply, schedule))
    if request.method == "POST" and path.endswith("/v1/completions") and (schedule.logprob_shift
                                                                           or schedule.context_limit):
        try:
            body = json.loads(await request.body())
            echo, prompt = bool(body.get("echo")), body.get("prompt")
        except (ValueError, AttributeError):
            echo, prompt = False, None
        limit = schedule.context_limit
        if limit is not None and isinstance(prompt, str) and len(prompt) > limit:
            return JSONResponse({"error": {"message": f"prompt of {len(prompt)} tokens is longer than the "
                                                      f"maximum context length {limit}", "code": 400}},
                                status_code=400)
        if echo and schedule.logprob_shift:
            shift = schedule.logprob_shift
            return await _rewritten(await call_next(request), lambda reply: shift_echo(reply, shift))
    return await call_next(request)


def install_faults(app: Any, schedule: FaultSchedule) -> None:
    """Add the fault middleware to a FastAPI app."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    @app.middleware("http")
    async def _faults(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.method != "POST":
            return await _defects(request, call_next, schedule)
        schedule.enter()
        try:
            mode = schedule.next_mode()
            if mode == "429":
                return JSONResponse({"error": {"message": "rate limited (scheduled fault)", "code": 429}},
                                    status_code=429, headers={"Retry-After": f"{schedule.retry_after:g}"})
            if mode == "500":
                return JSONResponse({"error": {"message": "internal error (scheduled fault)", "code": 500}},
                                    status_code=500)
            if mode == "malformed":
                return Response(b'{"id": "cmpl-x", "choices": [{"index": 0, "te', status_code=200,
                                media_type="application/json")
            if mode == "slow":
                await asyncio.sleep(schedule.slow_seconds)
            return await _defects(request, call_next, schedule)
        finally:
            schedule.leave()
