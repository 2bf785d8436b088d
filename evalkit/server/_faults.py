"""A deterministic fault schedule for testing API clients against a real server.

The n-th POST request the server receives gets `pattern[n % len(pattern)]`:

- "ok": served normally;
- "429": Too Many Requests with a Retry-After header;
- "500": an internal server error;
- "slow": served after `slow_seconds` (longer than the client's timeout, so the client retries);
- "malformed": HTTP 200 with a truncated JSON body.

Examples:
    >>> FaultSchedule.parse("ok,429,ok,500").pattern
    ('ok', '429', 'ok', '500')
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from evalkit.errors import ConfigError

__all__ = ["FaultSchedule", "install_faults"]

_MODES = ("ok", "429", "500", "slow", "malformed")


@dataclass
class FaultSchedule:
    """Which POST requests fail and how; `served` counts each mode handed out, `max_in_flight` the peak
    number of requests the server was handling at once."""

    pattern: tuple[str, ...] = ("ok",)
    retry_after: float = 0.05
    slow_seconds: float = 1.0
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


def install_faults(app: Any, schedule: FaultSchedule) -> None:
    """Add the fault middleware to a FastAPI app."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    @app.middleware("http")
    async def _faults(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.method != "POST":
            return await call_next(request)
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
            return await call_next(request)
        finally:
            schedule.leave()
