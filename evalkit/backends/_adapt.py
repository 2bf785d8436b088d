"""`as_base_backend`: give any object that implements the `Backend` protocol the face of a `BackendBase`.

Backends evalkit ships inherit `BackendBase`. A user's own backend (or a test double) may be a plain class
with only the three methods and whichever optional ones it has; this adapter looks at such an object ONCE,
sets the capability flags from what it finds and forwards every call, so that no caller ever probes.
"""

from __future__ import annotations

from collections.abc import Sequence
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

__all__ = ["as_base_backend"]


def as_base_backend(backend: Backend | BackendBase) -> BackendBase:
    """`backend` itself when it is a `BackendBase`, else an adapter that forwards to it.

    Examples:
        >>> from evalkit.backends._fake import FakeBackend
        >>> fake = FakeBackend()
        >>> as_base_backend(fake) is fake
        True
        >>> class Plain:
        ...     identity = fake.identity
        ...     def generate(self, conversations, config):
        ...         return fake.generate(conversations, config)
        >>> adapted = as_base_backend(Plain())
        >>> adapted.can_complete, adapted.can_tokenize, adapted.identity.backend
        (False, False, 'fake')
    """
    if isinstance(backend, BackendBase):
        return backend
    return _PlainBackend(backend)


def _has(obj: object, name: str) -> bool:
    return callable(getattr(obj, name, None))


class _PlainBackend(BackendBase):
    """A plain protocol object behind the `BackendBase` face: flags from what it has, calls forwarded."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.can_score = _has(inner, "loglikelihood") and _has(inner, "loglikelihood_rolling")
        self.can_complete = _has(inner, "complete")
        self.can_render_chat = _has(inner, "render_chat")
        self.can_tokenize = _has(inner, "encode") and _has(inner, "decode") and hasattr(inner, "max_length")
        self.can_complete_logprobs = _has(inner, "complete_logprobs")
        self.can_chat_logprobs = _has(inner, "chat_logprobs")
        self._prefill = bool(getattr(inner, "supports_prefill", False))
        self.streams_results = getattr(inner, "streams_results", False) is True
        self.cache_chunk_size = getattr(inner, "cache_chunk_size", None)
        self._connections = int(getattr(inner, "concurrency", 0) or 1)

    def __getattr__(self, name: str) -> Any:
        # anything else the object carries (counters of a test double, a client's settings) stays reachable
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def identity(self) -> ModelIdentity:
        """The wrapped object's identity."""
        return self.inner.identity

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest], **kw: Any) -> list[LoglikelihoodResult]:
        """Forwarded (`can_score`)."""
        if not self.can_score:
            return super().loglikelihood(requests)
        return self.inner.loglikelihood(requests, **kw)

    def loglikelihood_rolling(self, texts: Sequence[str], *, stride: int | None = None,
                              **kw: Any) -> list[TokenLogprobs]:
        """Forwarded (`can_score`)."""
        if not self.can_score:
            return super().loglikelihood_rolling(texts, stride=stride)
        return self.inner.loglikelihood_rolling(texts, stride=stride, **kw)

    def generate(self, conversations: Sequence[Conversation], config: GenConfig, **kw: Any) -> list[Completion]:
        """Forwarded."""
        if not _has(self.inner, "generate"):
            return super().generate(conversations, config)
        return self.inner.generate(conversations, config, **kw)

    @property
    def supports_prefill(self) -> bool:
        """The object's `supports_prefill`, else False."""
        return self._prefill

    def max_connections(self) -> int:
        """The object's `concurrency`, else 1."""
        return self._connections

    def set_batch_size(self, batch_size: str | None) -> None:
        """Forwarded where the object has it."""
        if _has(self.inner, "set_batch_size"):
            self.inner.set_batch_size(batch_size)

    def stats(self) -> Any:
        """Forwarded where the object has it."""
        return self.inner.stats() if _has(self.inner, "stats") else {}

    def close(self) -> None:
        """Forwarded where the object has it."""
        if _has(self.inner, "close"):
            self.inner.close()

    def complete(self, prompts: Sequence[str], config: GenConfig, **kw: Any) -> list[Completion]:
        """Forwarded (`can_complete`)."""
        if not self.can_complete:
            return super().complete(prompts, config)
        return self.inner.complete(prompts, config, **kw)

    def render_chat(self, conversation: Conversation, *, add_generation_prompt: bool = True) -> str:
        """Forwarded (`can_render_chat`)."""
        if not self.can_render_chat:
            return super().render_chat(conversation, add_generation_prompt=add_generation_prompt)
        return self.inner.render_chat(conversation, add_generation_prompt=add_generation_prompt)

    @property
    def max_length(self) -> int:
        """Forwarded (`can_tokenize`)."""
        if not self.can_tokenize:
            return super().max_length
        return int(self.inner.max_length)

    def encode(self, text: str) -> list[int]:
        """Forwarded (`can_tokenize`)."""
        if not self.can_tokenize:
            return super().encode(text)
        return self.inner.encode(text)

    def decode(self, tokens: Sequence[int]) -> str:
        """Forwarded (`can_tokenize`)."""
        if not self.can_tokenize:
            return super().decode(tokens)
        return self.inner.decode(tokens)

    def complete_logprobs(self, prompts: Sequence[str], config: GenConfig,
                          top_logprobs: int) -> list[list[tuple[TokenChoice, ...]]]:
        """Forwarded (`can_complete_logprobs`)."""
        if not self.can_complete_logprobs:
            return super().complete_logprobs(prompts, config, top_logprobs)
        return self.inner.complete_logprobs(prompts, config, top_logprobs)

    def chat_logprobs(self, conversations: Sequence[Conversation], config: GenConfig, top_logprobs: int,
                      prefills: Sequence[str | None] | None = None) -> list[tuple[TokenChoice, ...]]:
        """Forwarded (`can_chat_logprobs`)."""
        if not self.can_chat_logprobs:
            return super().chat_logprobs(conversations, config, top_logprobs, prefills)
        return self.inner.chat_logprobs(conversations, config, top_logprobs, prefills)
