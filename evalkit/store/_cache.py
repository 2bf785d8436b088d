"""A response cache around any backend: SQLite in WAL mode, one row per request, written as results arrive.

The key of a row is a SHA-256 over the backend's `ModelIdentity.cache_key()`, the method, the full request and
every generation parameter. Sampled generations (temperature > 0) also carry their sample index: the k-th
identical sampled call of a run gets index k, so votes stay distinct, and a rerun of the same command finds
the same rows again (resume). Greedy calls and scoring calls have no index: a second identical call is a hit.

Examples:
    >>> import tempfile, pathlib
    >>> from evalkit.backends._fake import FakeBackend
    >>> from evalkit.types import LoglikelihoodRequest
    >>> inner = FakeBackend()
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "cache.sqlite"
    >>> cached = CachedBackend(inner, path)
    >>> first = cached.loglikelihood([LoglikelihoodRequest("答案：", " A")])
    >>> cached.loglikelihood([LoglikelihoodRequest("答案：", " A")]) == first, inner.calls["loglikelihood"]
    (True, 1)
    >>> cached.close()
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import orjson

from evalkit.backends._adapt import as_base_backend
from evalkit.backends._protocol import Backend, BackendBase, ModelIdentity, ResultCallback
from evalkit.errors import CacheError
from evalkit.types import (
    Completion,
    Conversation,
    GenConfig,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    TokenChoice,
    TokenLogprobs,
    Usage,
)

__all__ = ["CacheStats", "CachedBackend", "ResponseStore"]

_SCHEMA_VERSION = "1"
T = TypeVar("T")
R = TypeVar("R")


def _fix(exc: BaseException, path: Path) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "locked" in text or "busy" in text:
        return (f"response cache {path} is locked by another process ({text}): wait for that run to finish, "
                f"or pass --cache OTHER_PATH or --no-cache")
    return (f"response cache {path} is unreadable ({text}): delete the file (only cached responses are lost), "
            f"or pass --cache OTHER_PATH or --no-cache")


class ResponseStore:
    """A key → JSON value table in one SQLite file (WAL), safe to share between threads of one process.

    Args:
        path: the SQLite file; created with its folder when missing.
        timeout: seconds to wait for another process's write lock before giving up with `CacheError`.
    """

    def __init__(self, path: str | Path, *, timeout: float = 10.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=timeout, check_same_thread=False,
                                       isolation_level=None)
            self._init_schema()
        except (sqlite3.Error, OSError) as exc:
            raise CacheError(_fix(exc, self.path)) from None

    def _init_schema(self) -> None:
        db = self._db
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot switch to WAL journal mode (got {mode})")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("BEGIN IMMEDIATE")  # takes the write lock now: a locked file fails here, not mid-run
        try:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, method TEXT NOT NULL, "
                       "model TEXT NOT NULL, value BLOB NOT NULL, created REAL NOT NULL)")
            row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (_SCHEMA_VERSION,))
            elif row[0] != _SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"schema version {row[0]}, this evalkit writes {_SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("PRAGMA quick_check(1)").fetchone()

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        """The stored values of those keys that are present (decoded JSON)."""
        found: dict[str, Any] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            for start in range(0, len(unique), 500):
                part = unique[start:start + 500]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(f"SELECT key, value FROM responses WHERE key IN ({marks})", part)
                for key, value in rows:
                    found[key] = orjson.loads(value)
        return found

    def put_many(self, rows: Sequence[tuple[str, str, str, Any]]) -> None:
        """Store (key, method, model, value) rows in one transaction."""
        now = time.time()
        data = [(k, m, mo, orjson.dumps(v), now) for k, m, mo, v in rows]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)", data)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite)."""
        with self._lock:
            self._db.close()


class CacheStats:
    """Hits, misses and failed writes of one `CachedBackend`, and the finished windows of long texts it gave
    back to a streaming backend (`windows_reused`: computed before a kill, not run again)."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.write_errors = 0
        self.windows_reused = 0

    def as_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "write_errors": self.write_errors,
                "windows_reused": self.windows_reused}


def _digest(identity: str, method: str, payload: Any) -> str:
    blob = orjson.dumps({"model": identity, "method": method, "request": payload}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()


def _conv_payload(conv: Conversation) -> list[list[str]]:
    return [[m.role, m.content] for m in conv]


def _completion_to_json(c: Completion) -> dict[str, Any]:
    value: dict[str, Any] = {"texts": list(c.texts), "usage": [c.usage.prompt_tokens, c.usage.completion_tokens],
                             "finish_reasons": list(c.finish_reasons)}
    if c.reasoning:  # a reasoning server's thoughts: kept, so a cached rerun still sees them
        value["reasoning"] = list(c.reasoning)
    return value


def _completion_from_json(v: dict[str, Any]) -> Completion:
    return Completion(tuple(v["texts"]), Usage(*v["usage"]), tuple(v["finish_reasons"]),
                      reasoning=tuple(v.get("reasoning", ())))


class _WindowCache:
    """The `WindowStore` a `CachedBackend` gives a streaming backend's `loglikelihood_rolling` call: one row
    per finished window of a multi-window text, keyed by that text's own cache key and the window number."""

    def __init__(self, cache: CachedBackend, text_keys: list[str]) -> None:
        self.cache = cache
        self.text_keys = text_keys

    def _key(self, text: int, window: int) -> str:
        return _digest(self.cache._model_key, "rolling_window", [self.text_keys[text], window])

    def known(self, text: int, count: int) -> dict[int, tuple[float, ...]]:
        """Stored windows of text `text` (numbered 0..count-1)."""
        keys = [self._key(text, number) for number in range(count)]
        found = self.cache._read(keys)
        known = {number: tuple(float(x) for x in found[key]) for number, key in enumerate(keys) if key in found}
        self.cache.cache_stats.windows_reused += len(known)
        return known

    def add(self, windows: Sequence[tuple[int, int, tuple[float, ...]]]) -> None:
        """Commit finished windows (one transaction)."""
        model = self.cache._model_key
        self.cache._write([(self._key(text, number), "rolling_window", model, list(values))
                           for text, number, values in windows])


class CachedBackend(BackendBase):
    """Wrap `backend` so every result is read from / written to the SQLite cache at `path`.

    Misses go to the inner backend in chunks of `chunk_size`. A backend that streams its results
    (`StreamingResults`, e.g. the transformers backend) gets a callback that commits each of its internal
    batches as it finishes, so a killed run loses at most one batch even when a chunk is a whole subject;
    any other backend's chunk is stored as soon as it returns, so a killed run loses at most one chunk. A read
    or write that fails mid-run (disk full, lock held too long, damage) warns once and the run continues
    uncached: results are never lost to the cache. The inner backend's capability flags are its own, and its
    optional methods (`complete`, `render_chat`, `encode`, `stats`, ...) are passed through; `complete` and
    `chat_logprobs` are cached.

    Args:
        backend: any evalkit backend.
        path: the cache file (the runner's default is `runs/.cache.sqlite`).
        chunk_size: how many missing requests to send to the inner backend at once (default 32, or
            4 x the inner backend's `max_connections()` when larger).
        timeout: seconds to wait for another process's lock when opening.

    Raises:
        CacheError: the file is corrupt, not a SQLite database, or locked.
    """

    def __init__(self, backend: Backend, path: str | Path, *, chunk_size: int | None = None,
                 timeout: float = 10.0) -> None:
        self.inner = inner = as_base_backend(backend)
        self.store = ResponseStore(path, timeout=timeout)
        if chunk_size is None:  # API backends: enough requests per chunk to keep every connection busy
            chunk_size = max(32, 4 * inner.max_connections())
        self.chunk_size = max(1, chunk_size)
        self.cache_stats = CacheStats()
        self._model_key = backend.identity.cache_key()
        self._occurrences: dict[str, int] = {}
        self._occ_lock = threading.Lock()
        self._readable = True
        self._writable = True
        self._streams = inner.streams_results is True
        self.can_score, self.can_complete, self.can_chat_logprobs = (inner.can_score, inner.can_complete,
                                                                     inner.can_chat_logprobs)
        self.can_render_chat, self.can_tokenize, self.can_complete_logprobs = (
            inner.can_render_chat, inner.can_tokenize, inner.can_complete_logprobs)

    @property
    def identity(self) -> ModelIdentity:
        """The inner backend's identity (caching does not change what is evaluated)."""
        return self.inner.identity

    def __getattr__(self, name: str) -> Any:
        # what the inner backend carries beyond the backend API (a client's base_url, a fake's counters)
        if name in ("inner", "store"):  # not set yet (failed __init__): avoid recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    # --- optional capabilities: the inner backend's -----------------------------------------------------
    @property
    def supports_prefill(self) -> bool:
        """The inner backend's."""
        return self.inner.supports_prefill

    def max_connections(self) -> int:
        """The inner backend's."""
        return self.inner.max_connections()

    def set_batch_size(self, batch_size: str | None) -> None:
        """Passed to the inner backend."""
        self.inner.set_batch_size(batch_size)

    def stats(self) -> Any:
        """The inner backend's counters (the cache's own are `cache_stats`)."""
        return self.inner.stats()

    def render_chat(self, conversation: Conversation, *, add_generation_prompt: bool = True) -> str:
        """The inner backend's chat template text (not cached: it is cheap)."""
        return self.inner.render_chat(conversation, add_generation_prompt=add_generation_prompt)

    @property
    def max_length(self) -> int:
        """The inner backend's context length."""
        return self.inner.max_length

    def encode(self, text: str) -> list[int]:
        """The inner backend's tokenizer."""
        return self.inner.encode(text)

    def decode(self, tokens: Sequence[int]) -> str:
        """The inner backend's tokenizer."""
        return self.inner.decode(tokens)

    def complete_logprobs(self, prompts: Sequence[str], config: GenConfig,
                          top_logprobs: int) -> list[list[tuple[TokenChoice, ...]]]:
        """The inner backend's (not cached)."""
        return self.inner.complete_logprobs(prompts, config, top_logprobs)

    def close(self) -> None:
        """Close the cache file."""
        self.store.close()

    # --- the three methods -------------------------------------------------------------------------
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        """Cached `loglikelihood`."""
        keys = [_digest(self._model_key, "loglikelihood", [r.context, r.continuation]) for r in requests]
        return self._serve(keys, list(requests), "loglikelihood",
                           lambda chunk, sink: self.inner.loglikelihood(chunk, **self._stream_kw(sink)),
                           lambda r: [r.logprob, r.is_greedy],
                           lambda v: LoglikelihoodResult(float(v[0]), bool(v[1])))

    def loglikelihood_rolling(self, texts: Sequence[str], *, stride: int | None = None) -> list[TokenLogprobs]:
        """Cached `loglikelihood_rolling` (the stride is part of the key); a streaming backend also stores the
        finished windows of multi-window texts through a `WindowStore`."""
        keys = [_digest(self._model_key, "loglikelihood_rolling", [t, stride]) for t in texts]

        def compute(chunk: list[tuple[str, str]], sink: ResultCallback) -> list[TokenLogprobs]:
            windows = _WindowCache(self, [key for key, _ in chunk])
            return self.inner.loglikelihood_rolling([text for _, text in chunk], stride=stride,
                                                    **self._stream_kw(sink, windows=windows))

        return self._serve(keys, list(zip(keys, texts)), "loglikelihood_rolling", compute,
                           lambda r: {"logprobs": list(r.logprobs), "windows": r.windows},
                           lambda v: TokenLogprobs(tuple(float(x) for x in v["logprobs"]), int(v["windows"])))

    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        """Cached `generate`; sampled calls are keyed per sample index as well."""
        keys = self._gen_keys("generate", [_conv_payload(c) for c in conversations], config)
        return self._serve(keys, list(conversations), "generate",
                           lambda chunk, sink: self.inner.generate(chunk, config, **self._stream_kw(sink)),
                           _completion_to_json, _completion_from_json)

    def complete(self, prompts: Sequence[str], config: GenConfig) -> list[Completion]:
        """Cached `complete` (raw text without a chat template), where the inner backend `can_complete`."""
        if not self.can_complete:
            return self.inner.complete(prompts, config)  # raises UnsupportedRequest, naming the backend
        keys = self._gen_keys("complete", list(prompts), config)
        inner_complete = self.inner.complete
        return self._serve(keys, list(prompts), "complete",
                           lambda chunk, sink: inner_complete(chunk, config, **self._stream_kw(sink)),
                           _completion_to_json, _completion_from_json)

    def chat_logprobs(self, conversations: Sequence[Conversation], config: GenConfig, top_logprobs: int,
                      prefills: Sequence[str | None] | None = None) -> list[tuple[TokenChoice, ...]]:
        """Cached `chat_logprobs` of API judges (the prefill and top-k are part of the key)."""
        if not self.can_chat_logprobs:
            return self.inner.chat_logprobs(conversations, config, top_logprobs, prefills)  # UnsupportedRequest
        starts = list(prefills) if prefills is not None else [None] * len(conversations)
        items = list(zip(conversations, starts))
        keys = self._gen_keys("chat_logprobs", [[_conv_payload(c), p, top_logprobs] for c, p in items], config)
        inner = self.inner

        def compute(chunk: list[tuple[Conversation, str | None]],
                    _: ResultCallback) -> list[tuple[TokenChoice, ...]]:
            return inner.chat_logprobs([c for c, _ in chunk], config, top_logprobs, [p for _, p in chunk])

        return self._serve(keys, items, "chat_logprobs", compute,
                           lambda tokens: [[t.text, t.logprob, [list(a) for a in t.top]] for t in tokens],
                           lambda v: tuple(TokenChoice(str(t[0]), float(t[1]), tuple((str(a[0]), float(a[1]))
                                                                                    for a in t[2])) for t in v))

    # --- machinery ---------------------------------------------------------------------------------
    def _gen_keys(self, method: str, payloads: Sequence[Any], config: GenConfig) -> list[str]:
        params = asdict(config)
        keys = []
        for payload in payloads:
            base = _digest(self._model_key, method, [payload, params])
            if config.greedy:
                keys.append(base)
                continue
            with self._occ_lock:  # k-th identical sampled call of this run -> sample index k
                index = self._occurrences.get(base, 0)
                self._occurrences[base] = index + 1
            keys.append(_digest(self._model_key, method, [payload, params, {"sample_index": index}]))
        return keys

    def _stream_kw(self, sink: ResultCallback, **extra: Any) -> dict[str, Any]:
        """`on_results=sink` (and `extra`) for a streaming inner backend; nothing for any other."""
        return {"on_results": sink, **extra} if self._streams else {}

    def _serve(self, keys: list[str], items: list[T], method: str,
               compute: Callable[[list[T], ResultCallback], Sequence[R]], encode: Callable[[R], Any],
               decode: Callable[[Any], R]) -> list[R]:
        found = self._read(keys)
        results: dict[str, R] = {k: decode(v) for k, v in found.items()}
        missing: dict[str, T] = {}
        for key, item in zip(keys, items):
            if key not in results and key not in missing:
                missing[key] = item  # identical requests in one call are computed once
        self.cache_stats.hits += sum(1 for k in keys if k in found)
        self.cache_stats.misses += len(missing)
        pending = list(missing.items())
        for start in range(0, len(pending), self.chunk_size):
            chunk = [key for key, _ in pending[start:start + self.chunk_size]]
            stored: set[str] = set()
            store = self._batch_writer(chunk, method, encode, results, stored)
            computed = list(compute([item for _, item in pending[start:start + self.chunk_size]], store))
            if len(computed) != len(chunk):
                raise RuntimeError(f"{method}: backend returned {len(computed)} results for {len(chunk)} requests")
            store([i for i, key in enumerate(chunk) if key not in stored],
                  [value for key, value in zip(chunk, computed) if key not in stored])
        return [results[k] for k in keys]

    def _batch_writer(self, chunk: list[str], method: str, encode: Callable[[R], Any], results: dict[str, R],
                      stored: set[str]) -> ResultCallback:
        """The `on_results` callback of one chunk: commits the reported rows in one transaction at once."""

        def store(indices: Sequence[int], values: Sequence[Any]) -> None:
            if len(indices) != len(values):
                raise RuntimeError(f"{method}: backend reported {len(values)} results for "
                                   f"{len(indices)} indices")
            rows = []
            for index, value in zip(indices, values):
                if not 0 <= index < len(chunk):
                    raise RuntimeError(f"{method}: backend reported index {index} of a "
                                       f"{len(chunk)}-request call")
                key = chunk[index]
                results[key] = value
                if key not in stored:
                    stored.add(key)
                    rows.append((key, method, self._model_key, encode(value)))
            if rows:
                self._write(rows)

        return store

    def _read(self, keys: list[str]) -> dict[str, Any]:
        if not self._readable:
            return {}
        try:
            return self.store.get_many(keys)
        except (sqlite3.Error, orjson.JSONDecodeError) as exc:  # damaged mid-run: finish the run uncached
            self._readable = self._writable = False
            warnings.warn(f"{_fix(exc, self.store.path)}; continuing without the cache", RuntimeWarning,
                          stacklevel=3)
            return {}

    def _write(self, rows: list[tuple[str, str, str, Any]]) -> None:
        if not self._writable:
            return
        try:
            self.store.put_many(rows)
        except (sqlite3.Error, OSError) as exc:
            self.cache_stats.write_errors += 1
            self._writable = False
            warnings.warn(f"{_fix(exc, self.store.path)}; continuing without writing the cache",
                          RuntimeWarning, stacklevel=3)
