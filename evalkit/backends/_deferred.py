"""`DeferredBackend`: a transformers model that is loaded only when a request reaches it.

A rerun whose every request is answered by the response cache never needs the weights. What the cache needs
without them is the backend's identity (it is part of every cache key) and its capability flags; both are
remembered, after the first real load, in a small JSON memo beside the response cache, keyed by the model spec,
its arguments and a fingerprint of the local files it reads (size and mtime of the GGUF or the folder). Any change
there, or a missing memo, means the model is loaded as before.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from evalkit.backends._protocol import Backend, BackendBase, ModelIdentity
from evalkit.types import (
    Completion,
    Conversation,
    GenConfig,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    TokenChoice,
    TokenLogprobs,
)

__all__ = ["DeferredBackend", "memo_path_for"]

_FLAGS = ("can_score", "can_complete", "can_render_chat", "can_tokenize", "can_complete_logprobs",
          "can_chat_logprobs", "streams_results", "cache_chunk_size")
_MEMO_VERSION = 1


def memo_path_for(cache_path: Path) -> Path:
    """Where the identity memo of a response cache lives (`runs/.cache.sqlite` → `runs/.cache.identities.json`)."""
    return cache_path.with_name(cache_path.stem + ".identities.json")


def _stat(path: Path) -> str:
    try:
        info = path.stat()
    except OSError:
        return "missing"
    return f"{info.st_size}:{info.st_mtime_ns}"


def _fingerprint(kind: str, model: str) -> str:
    """What on disk the identity depends on: the embedded GGUF file, or a local model folder's config."""
    if kind == "hf":
        from evalkit.backends._hf_load import _GGUF_MODELS, _package_file

        if model in _GGUF_MODELS:
            try:
                return _stat(_package_file(*_GGUF_MODELS[model]))
            except Exception:  # noqa: BLE001 - a missing package: the load itself will say so
                return "unavailable"
        path = Path(model).expanduser()
        if path.exists():
            files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
            return ",".join(f"{p.name}={_stat(p)}" for p in files)
    return ""


def _memo_key(kind: str, model: str, args: dict[str, str]) -> str:
    text = json.dumps([_MEMO_VERSION, kind, model, sorted(args.items()), _fingerprint(kind, model)])
    return hashlib.sha256(text.encode()).hexdigest()


class DeferredBackend(BackendBase):
    """Loads `loader(kind, model, args)` on first use; identity and flags come from the memo until then."""

    def __init__(self, kind: str, model: str, args: dict[str, str], memo_path: Path,
                 loader: Callable[[str, str, dict[str, str]], Backend | BackendBase],
                 loading: Callable[[], AbstractContextManager[Any]] = nullcontext) -> None:
        self._spec = (kind, model, dict(args))
        self._memo_path = memo_path
        self._key = _memo_key(kind, model, args)
        self._loader, self._loading = loader, loading
        self._inner: BackendBase | None = None
        self._batch_size: str | None = None
        self._memo: dict[str, Any] | None = self._read_memo().get(self._key)

    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded in this process."""
        return self._inner is not None

    def load(self) -> BackendBase:
        """The real backend, loaded now if it was not yet (then the memo is written)."""
        if self._inner is None:
            from evalkit.backends._adapt import as_base_backend

            with self._loading():
                self._inner = as_base_backend(self._loader(*self._spec))
            if self._batch_size:
                self._inner.set_batch_size(self._batch_size)
            self._write_memo(self._inner)
        return self._inner

    # ---- memo -----------------------------------------------------------------------------------------------
    def _read_memo(self) -> dict[str, Any]:
        try:
            data = json.loads(self._memo_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_memo(self, inner: BackendBase) -> None:
        identity = inner.identity
        entry = {"identity": {"backend": identity.backend, "model": identity.model, "revision": identity.revision,
                              "details": dict(identity.details)},
                 "flags": {flag: getattr(inner, flag) for flag in _FLAGS},
                 "max_connections": inner.max_connections(), "supports_prefill": inner.supports_prefill}
        memo = self._read_memo()
        memo[self._key] = entry
        tmp = self._memo_path.with_name(f".{self._memo_path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(memo, indent=1, sort_keys=True), encoding="utf-8")
            tmp.replace(self._memo_path)
        except OSError:
            tmp.unlink(missing_ok=True)  # a memo that cannot be written only costs a load next time
        self._memo = entry

    def _remembered(self, name: str) -> Any:
        if self._inner is None and self._memo is not None:
            return self._memo["flags"].get(name)
        return getattr(self.load(), name)

    # ---- identity and capabilities ------------------------------------------------------------------------------
    @property
    def identity(self) -> ModelIdentity:
        """From the memo while the model is not loaded; the real one after."""
        if self._inner is None and self._memo is not None:
            saved = self._memo["identity"]
            return ModelIdentity(saved["backend"], saved["model"], saved["revision"], dict(saved["details"]))
        return self.load().identity

    can_score = property(lambda self: bool(self._remembered("can_score")))
    can_complete = property(lambda self: bool(self._remembered("can_complete")))
    can_render_chat = property(lambda self: bool(self._remembered("can_render_chat")))
    can_tokenize = property(lambda self: bool(self._remembered("can_tokenize")))
    can_complete_logprobs = property(
        lambda self: bool(self._remembered("can_complete_logprobs")))
    can_chat_logprobs = property(lambda self: bool(self._remembered("can_chat_logprobs")))
    streams_results = property(lambda self: bool(self._remembered("streams_results")))
    cache_chunk_size = property(lambda self: self._remembered("cache_chunk_size"))

    @property
    def supports_prefill(self) -> bool:
        """Remembered, or asked of the loaded backend."""
        if self._inner is None and self._memo is not None:
            return bool(self._memo["supports_prefill"])
        return self.load().supports_prefill

    def max_connections(self) -> int:
        """Remembered, or asked of the loaded backend."""
        if self._inner is None and self._memo is not None:
            return int(self._memo["max_connections"])
        return self.load().max_connections()

    def set_batch_size(self, batch_size: str | None) -> None:
        """Applied now if loaded, else when the model loads."""
        self._batch_size = batch_size
        if self._inner is not None:
            self._inner.set_batch_size(batch_size)

    def stats(self) -> Any:
        """The loaded backend's counters; none while it was never needed."""
        return {} if self._inner is None else self._inner.stats()

    def close(self) -> None:
        """Close the loaded backend, if any."""
        if self._inner is not None:
            self._inner.close()

    # ---- every request loads the model --------------------------------------------------------------------------
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest], **kw: Any) -> list[LoglikelihoodResult]:
        """Forwarded to the loaded backend."""
        return self.load().loglikelihood(requests, **kw)

    def loglikelihood_rolling(self, texts: Sequence[str], *, stride: int | None = None,
                              **kw: Any) -> list[TokenLogprobs]:
        """Forwarded to the loaded backend."""
        return self.load().loglikelihood_rolling(texts, stride=stride, **kw)

    def generate(self, conversations: Sequence[Conversation], config: GenConfig, **kw: Any) -> list[Completion]:
        """Forwarded to the loaded backend."""
        return self.load().generate(conversations, config, **kw)

    def complete(self, prompts: Sequence[str], config: GenConfig, **kw: Any) -> list[Completion]:
        """Forwarded to the loaded backend."""
        return self.load().complete(prompts, config, **kw)

    def render_chat(self, conversation: Conversation, *, add_generation_prompt: bool = True) -> str:
        """Forwarded to the loaded backend."""
        return self.load().render_chat(conversation, add_generation_prompt=add_generation_prompt)

    @property
    def max_length(self) -> int:
        """Forwarded to the loaded backend."""
        return self.load().max_length

    def encode(self, text: str) -> list[int]:
        """Forwarded to the loaded backend."""
        return self.load().encode(text)

    def decode(self, tokens: Sequence[int]) -> str:
        """Forwarded to the loaded backend."""
        return self.load().decode(tokens)

    def complete_logprobs(self, prompts: Sequence[str], config: GenConfig,
                          top_logprobs: int) -> list[list[tuple[TokenChoice, ...]]]:
        """Forwarded to the loaded backend."""
        return self.load().complete_logprobs(prompts, config, top_logprobs)

    def chat_logprobs(self, conversations: Sequence[Conversation], config: GenConfig, top_logprobs: int,
                      prefills: Sequence[str | None] | None = None) -> list[tuple[TokenChoice, ...]]:
        """Forwarded to the loaded backend."""
        return self.load().chat_logprobs(conversations, config, top_logprobs, prefills)
