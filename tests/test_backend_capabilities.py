"""Optional backend capabilities are declared once on BackendBase, with defaults: backends set flags, wrappers
(the response cache) carry their inner backend's, and a plain protocol object gets the same face from
`as_base_backend`, so no caller probes attributes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from evalkit.backends import BackendBase, as_base_backend
from evalkit.backends._fake import FakeBackend
from evalkit.backends._openai import OpenAIBackend
from evalkit.errors import UnsupportedRequest
from evalkit.store import CachedBackend
from evalkit.types import Completion, Conversation, GenConfig, Message, Usage


class _Plain:
    """A user's backend written against the bare protocol: generation and a tokenizer, nothing else."""

    def __init__(self) -> None:
        self.inner = FakeBackend(max_length=32)
        self.max_length = 32
        self.concurrency = 4
        self.calls = 0

    @property
    def identity(self):  # type: ignore[no-untyped-def]
        return self.inner.identity

    def encode(self, text: str) -> list[int]:
        return self.inner.encode(text)

    def decode(self, tokens: Sequence[int]) -> str:
        return self.inner.decode(tokens)

    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        self.calls += 1
        return [Completion(("ok",), Usage(1, 1)) for _ in conversations]


def test_defaults_are_declared_once_on_the_base_class() -> None:
    class Minimal(BackendBase):
        pass

    b = Minimal()
    assert (b.can_complete, b.can_render_chat, b.can_tokenize, b.can_chat_logprobs, b.supports_prefill,
            b.streams_results, b.cache_chunk_size) == (False, False, False, False, False, False, None)
    assert b.max_connections() == 1 and b.stats() == {} and b.stats_dict() == {}
    b.set_batch_size("8")  # accepted and ignored
    b.close()


def test_missing_capabilities_raise_one_line_naming_the_backend() -> None:
    adapted = as_base_backend(_Plain())  # type: ignore[arg-type]  # a chat-only object: no scoring methods
    with pytest.raises(UnsupportedRequest, match=r"backend fake:echo cannot continue raw text"):
        adapted.complete(["x"], GenConfig())
    with pytest.raises(UnsupportedRequest, match="cannot render its chat template"):
        adapted.render_chat((Message("user", "hi"),))
    with pytest.raises(UnsupportedRequest, match="cannot score text"):
        adapted.loglikelihood([])


def test_a_plain_protocol_object_is_looked_at_once_and_forwarded() -> None:
    plain = _Plain()
    adapted = as_base_backend(plain)  # type: ignore[arg-type]
    assert as_base_backend(adapted) is adapted
    assert adapted.can_tokenize and not adapted.can_complete and not adapted.can_render_chat
    assert adapted.max_length == 32 and adapted.decode(adapted.encode("ab")) == "ab"
    assert adapted.max_connections() == 4  # its `concurrency`
    assert adapted.generate([(Message("user", "q"),)], GenConfig())[0].text == "ok" and plain.calls == 1
    assert adapted.inner is plain and not adapted.can_score  # type: ignore[attr-defined]


def test_shipped_backends_declare_what_they_can_do() -> None:
    fake = FakeBackend()
    assert isinstance(fake, BackendBase) and as_base_backend(fake) is fake
    assert fake.can_complete and fake.can_render_chat and fake.can_tokenize and fake.can_complete_logprobs
    assert not fake.can_chat_logprobs
    api = OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", concurrency=6, probe=False, probe_cache="off")
    assert api.can_complete and api.can_chat_logprobs and not api.can_tokenize and not api.can_render_chat
    assert api.max_connections() == 6 and api.stats_dict()["requests"] == 0  # ApiStats becomes a dict


def test_the_cache_carries_its_inner_backends_capabilities(tmp_path: Path) -> None:
    cached = CachedBackend(_Plain(), tmp_path / "c.sqlite")  # type: ignore[arg-type]
    assert cached.can_tokenize and not cached.can_complete and cached.max_connections() == 4
    assert cached.chunk_size == 32 and cached.encode("a") == [97]
    with pytest.raises(UnsupportedRequest, match="cannot continue raw text"):
        cached.complete(["x"], GenConfig())
    api = OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", concurrency=16, probe=False, probe_cache="off")
    wrapped = CachedBackend(api, tmp_path / "d.sqlite")
    assert wrapped.can_chat_logprobs and wrapped.chunk_size == 64 and wrapped.stats_dict()["requests"] == 0
