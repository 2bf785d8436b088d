"""The HTTP side of the OpenAI-compatible backend: bounded concurrency, retries, usage counters.

Retries (tenacity) cover 408/409/429/5xx, timeouts, dropped connections and malformed bodies (bad JSON or a
shape the parser rejects); the wait is exponential with full jitter, and never shorter than a server's
Retry-After. Each retry is counted under its reason ("429", "5xx", "timeout", "connection", "malformed", or
the 4xx status). The API key lives only in the request headers of a live client and is scrubbed from every
message this module produces; URLs in messages have their credentials redacted.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import os
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from evalkit._redact import redact_text, redact_url
from evalkit.errors import BackendError, MissingDependency

__all__ = ["ApiClient", "ApiStats", "HttpStatusError", "RetryPolicy", "parse_retry_after"]

T = TypeVar("T")
_RETRY_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts after the first, backoff (seconds) and the per-request timeout."""

    max_retries: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 120.0
    timeout: float = 120.0


@dataclass(frozen=True)
class ApiStats:
    """Counters of an API backend since it was created (`OpenAIBackend.stats()`).

    `requests` counts successful HTTP calls, `retries` the failed attempts that were retried (and
    `retries_by_reason` the same split by reason: "429", "5xx", "timeout", "connection", "malformed", "408",
    "409"), `failures` the calls that gave up. `cost_usd` is `None` unless a price table (price_in/price_out)
    was given. `logprob_alignment` is the verdict of the server check made before scoring ("aligned",
    "shifted-corrected", "exact (evalkit serve)", "unchecked"), `None` when nothing was scored.
    """

    requests: int = 0
    retries: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    retries_by_reason: dict[str, int] = field(default_factory=dict)
    logprob_alignment: str | None = None

    def as_dict(self) -> dict[str, object]:
        """The counters as plain JSON values (results.json `backend_stats`)."""
        return {"requests": self.requests, "retries": self.retries, "failures": self.failures,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cost_usd": self.cost_usd, "retries_by_reason": dict(sorted(self.retries_by_reason.items())),
                "logprob_alignment": self.logprob_alignment}


class HttpStatusError(BackendError):
    """A non-retryable HTTP error (4xx other than 408/409/429); `status` is the HTTP status (0 if unknown).

    The status has a default so that the error can be rebuilt from its message alone.
    """

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class Retryable(Exception):
    """A transient failure: retried; `kind` is its reason for the counters ("429", "5xx", "timeout",
    "connection", "malformed"), `retry_after` the server's requested wait in seconds."""

    def __init__(self, reason: str, retry_after: float | None = None, *, kind: str = "other") -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.kind = kind


def _status_kind(status: int) -> str:
    return "5xx" if 500 <= status < 600 else str(status)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds, fractional accepted, or an HTTP date).

    Examples:
        >>> parse_retry_after("2"), parse_retry_after("0.25"), parse_retry_after("soon")
        (2.0, 0.25, None)
    """
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, also when the caller already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


class ApiClient:
    """Posts JSON to an OpenAI-compatible server with bounded concurrency and counted retries.

    Args:
        base_url: e.g. "http://127.0.0.1:8000/v1" (paths like "/chat/completions" are appended).
        api_key: sent as a bearer token; `None` sends no Authorization header.
        concurrency: the most requests in flight at once.
        policy: retry and timeout settings.
        price_in, price_out: USD per 1M prompt / completion tokens, for `ApiStats.cost_usd`.
    """

    def __init__(self, base_url: str, api_key: str | None, *, concurrency: int = 8,
                 policy: RetryPolicy | None = None, price_in: float | None = None,
                 price_out: float | None = None, key_env: str = "OPENAI_API_KEY") -> None:
        self.base_url = base_url.rstrip("/")
        self._key = api_key or None
        self.key_env = key_env
        self.concurrency = max(1, concurrency)
        self.policy = policy or RetryPolicy()
        self._prices = (price_in, price_out)
        self._lock = threading.Lock()
        self._counts = {"requests": 0, "retries": 0, "failures": 0, "prompt_tokens": 0, "completion_tokens": 0}
        self._reasons: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"ApiClient(base_url={self.base_url!r}, concurrency={self.concurrency})"

    def scrub(self, text: str) -> str:
        """`text` with the API key (if any) replaced by ***, and URL credentials redacted."""
        text = redact_text(text)
        return text.replace(self._key, "***") if self._key and len(self._key) >= 4 else text

    def stats(self) -> ApiStats:
        """A snapshot of the counters."""
        with self._lock:
            c = dict(self._counts)
            reasons = dict(self._reasons)
        price_in, price_out = self._prices
        cost = None
        if price_in is not None or price_out is not None:
            cost = (c["prompt_tokens"] * (price_in or 0.0) + c["completion_tokens"] * (price_out or 0.0)) / 1e6
        return ApiStats(c["requests"], c["retries"], c["failures"], c["prompt_tokens"], c["completion_tokens"], cost,
                        retries_by_reason=reasons)

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                self._counts[name] += delta

    def _count_retry(self, exc: BaseException | None) -> None:
        kind = exc.kind if isinstance(exc, Retryable) else "other"
        with self._lock:
            self._counts["retries"] += 1
            self._reasons[kind] = self._reasons.get(kind, 0) + 1

    def run_all(self, method: str, path: str, bodies: Sequence[dict[str, Any] | None],
                parse: Callable[[Any], T]) -> list[T]:
        """Send one request per body (concurrently, bounded) and parse each reply; sync entry point."""
        return self.run_each(method, path, [(b, parse) for b in bodies])

    def run_each(self, method: str, path: str,
                 items: Sequence[tuple[dict[str, Any] | None, Callable[[Any], T]]]) -> list[T]:
        """Like `run_all` with a parser per request. A parser's ValueError/KeyError/TypeError marks the
        reply malformed (retried); any other exception propagates at once."""
        return run_sync(lambda: self._gather(method, path, items))

    async def _gather(self, method: str, path: str,
                      items: Sequence[tuple[dict[str, Any] | None, Callable[[Any], T]]]) -> list[T]:
        try:
            import httpx
        except ImportError:
            raise MissingDependency("OpenAI-compatible backend", "api", "httpx") from None
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        semaphore = asyncio.Semaphore(self.concurrency)
        async with httpx.AsyncClient(headers=headers, timeout=self.policy.timeout, limits=limits,
                                     verify=_tls_context()) as client:
            async def one(body: dict[str, Any] | None, parse: Callable[[Any], T]) -> T:
                async with semaphore:
                    return await self._with_retries(lambda: self._once(client, method, path, body, parse))

            tasks = [asyncio.ensure_future(one(b, p)) for b, p in items]
            try:
                return list(await asyncio.gather(*tasks))
            finally:
                for task in tasks:
                    task.cancel()

    async def _with_retries(self, attempt_once: Callable[[], Awaitable[T]]) -> T:
        from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
        from tenacity.wait import wait_random_exponential

        jitter = wait_random_exponential(multiplier=self.policy.backoff_base, max=self.policy.backoff_max)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            delay = float(jitter(state))
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                delay = max(delay, min(float(retry_after), self.policy.max_retry_after))
            return delay

        retrying = AsyncRetrying(stop=stop_after_attempt(self.policy.max_retries + 1), wait=wait,
                                 retry=retry_if_exception_type(Retryable), reraise=True,
                                 before_sleep=lambda state: self._count_retry(
                                     state.outcome.exception() if state.outcome else None))
        try:
            async for attempt in retrying:
                with attempt:
                    return await attempt_once()
        except Retryable as exc:
            self._count(failures=1)
            raise BackendError(self.scrub(f"{self.base_url}: {exc} (gave up after {self.policy.max_retries + 1} "
                                          f"attempts); check the server, or lower --concurrency")) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(self, client: Any, method: str, path: str, body: dict[str, Any] | None,
                    parse: Callable[[Any], T]) -> T:
        import httpx

        url = self.base_url + path
        try:
            if method == "GET":
                response = await client.get(url)
            else:
                response = await client.post(url, json=body)
        except httpx.TimeoutException:
            raise Retryable(f"{path} timed out after {self.policy.timeout:g}s", kind="timeout") from None
        except httpx.TransportError as exc:
            raise Retryable(f"{path}: connection failed ({type(exc).__name__})", kind="connection") from None
        status = response.status_code
        if status in _RETRY_STATUS:
            raise Retryable(f"{path}: HTTP {status} {_snippet(response.text)}",
                            parse_retry_after(response.headers.get("retry-after")), kind=_status_kind(status))
        if status >= 400:
            raise HttpStatusError(self.scrub(_status_message(status, url, response.text, self.key_env,
                                                             self._key is not None)), status)
        try:
            data = response.json()
            result = parse(data)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise Retryable(f"{path}: malformed response ({type(exc).__name__}: {_snippet(str(exc))})",
                            kind="malformed") from None
        usage = data.get("usage") if isinstance(data, dict) else None
        usage = usage if isinstance(usage, dict) else {}
        self._count(requests=1, prompt_tokens=int(usage.get("prompt_tokens") or 0),
                    completion_tokens=int(usage.get("completion_tokens") or 0))
        return result


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every client of the process (loading the CA bundle costs ~0.1-0.3 s each time):
    SSL_CERT_FILE / SSL_CERT_DIR when set (as httpx honours them), else certifi's bundle, as httpx uses."""
    if os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or None,
                                          capath=os.environ.get("SSL_CERT_DIR") or None)
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _status_message(status: int, url: str, text: str, key_env: str, key_set: bool) -> str:
    """One line: status, the (redacted) URL, the server's words, what it means and what to do."""
    if status in (401, 403):
        state = "is set but was refused" if key_set else "is not set"
        named = key_env if key_env == "OPENAI_API_KEY" else f"{key_env} (api_key_env; default OPENAI_API_KEY)"
        hint = (f"the API key was not accepted: the environment variable {named} {state}; put a valid key in it, "
                f"or name another with --model-args api_key_env=VAR")
    elif status == 404:
        hint = "not found: check the model name and --base-url (it usually ends in /v1)"
    else:
        hint = "the server rejected the request"
    return f"HTTP {status} from {redact_url(url)}: {_snippet(text)}; {hint}"
