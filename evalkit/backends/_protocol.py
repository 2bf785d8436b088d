"""The backend contract: three methods, like lm-eval's LM."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from evalkit.errors import UnsupportedRequest
from evalkit.types import (
    Completion,
    Conversation,
    GenConfig,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    TokenChoice,
    TokenLogprobs,
)

__all__ = ["Backend", "BackendBase", "ChatLogprobs", "ChatRendering", "LogprobCompletion", "ModelIdentity", "RawCompletion",
           "ResultCallback", "StreamingResults", "TokenizerAccess", "WindowStore"]

ResultCallback = Callable[[Sequence[int], Sequence[Any]], None]
"""`on_results(indices, results)`: what a streaming backend calls as each internal batch finishes, with
indices into the request list it was given and those requests' results (in the method's result type)."""


@dataclass(frozen=True)
class ModelIdentity:
    """What a backend evaluates. Goes into results.json and into every cache key.

    `revision` pins the weights: a hub revision, a file hash, or a server-reported model version.
    Never holds secrets.
    """

    backend: str
    model: str
    revision: str = ""
    details: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"backend": self.backend, "model": self.model, "revision": self.revision, **self.details}

    def cache_key(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in sorted(self.details.items()))
        return f"{self.backend}|{self.model}|{self.revision}|{extra}"


@runtime_checkable
class Backend(Protocol):
    """Anything that can score and generate text.

    A backend that cannot serve one of the three methods raises `UnsupportedRequest` with a message that
    names the alternative (e.g. "use generative multiple choice").
    """

    @property
    def identity(self) -> ModelIdentity: ...

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        """Log-probability of each continuation given its context, and whether it is the greedy one."""
        ...

    def loglikelihood_rolling(self, texts: Sequence[str], *, stride: int | None = None) -> list[TokenLogprobs]:
        """Per-token log-probabilities of whole texts in windows of the model's max length.

        `stride=None` (or the max length) gives disjoint windows (lm-eval); a smaller stride gives each window
        `max_length - stride` tokens of left context (HF perplexity guide).
        """
        ...

    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        """One `Completion` (with `config.n` texts) per conversation, through the model's chat template."""
        ...


@runtime_checkable
class TokenizerAccess(Protocol):
    """Optional capability of backends that own a tokenizer (used for prompt truncation)."""

    @property
    def max_length(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, tokens: Sequence[int]) -> str: ...


@runtime_checkable
class RawCompletion(Protocol):
    """Optional capability: continue raw prompt text without a chat template (LongBench's no-template datasets,
    /v1/completions)."""

    def complete(self, prompts: Sequence[str], config: GenConfig) -> list[Completion]: ...


@runtime_checkable
class ChatRendering(Protocol):
    """Optional capability: the exact prompt text the chat template makes of a conversation (judges that read
    verdict probabilities append a forced prefix to it and score options with `loglikelihood`)."""

    def render_chat(self, conversation: Conversation, *, add_generation_prompt: bool = True) -> str: ...


@runtime_checkable
class LogprobCompletion(Protocol):
    """Optional capability: continue raw prompt text and report each generated token's logprob and top
    alternatives (what `evalkit serve` answers `logprobs`/`top_logprobs` with)."""

    def complete_logprobs(self, prompts: Sequence[str], config: GenConfig,
                          top_logprobs: int) -> list[list[tuple[TokenChoice, ...]]]:
        """Per prompt, `config.n` sequences of generated tokens (after stop strings are cut)."""
        ...


@runtime_checkable
class ChatLogprobs(Protocol):
    """Optional capability of API backends: chat completions with per-token `top_logprobs`, optionally
    continuing a forced start of the assistant's reply (`prefill`, where the server supports it)."""

    @property
    def supports_prefill(self) -> bool: ...

    def chat_logprobs(self, conversations: Sequence[Conversation], config: GenConfig, top_logprobs: int,
                      prefills: Sequence[str | None] | None = None) -> list[tuple[TokenChoice, ...]]:
        """The generated tokens of one chat completion per conversation (n=1)."""
        ...


@runtime_checkable
class StreamingResults(Protocol):
    """Optional capability: hand results over batch by batch while a call is still running.

    A backend that declares `streams_results = True` accepts a keyword-only `on_results` (a `ResultCallback`)
    on `loglikelihood`, `loglikelihood_rolling`, `generate` and, where it has it, `complete`. It calls it once
    per internal batch as that batch finishes, with indices into that call's request list (each index at most
    once, in any order) and their results, and still returns the full list. The response cache passes a
    callback that commits those rows at once, so a killed run loses at most one batch, while the backend
    still sees whole subjects (prefix sharing). Indices a backend never reports are stored when the call
    returns. Backends without the flag (or with it False) are called without `on_results`.
    """

    streams_results: bool

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest], *,
                      on_results: ResultCallback | None = None) -> list[LoglikelihoodResult]: ...

    def loglikelihood_rolling(self, texts: Sequence[str], *, stride: int | None = None,
                              on_results: ResultCallback | None = None,
                              windows: WindowStore | None = None) -> list[TokenLogprobs]:
        """As `Backend.loglikelihood_rolling`; a text that spans several windows also has each window handed
        to `windows` as its batch finishes, and windows `windows` already holds are not computed again."""
        ...

    def generate(self, conversations: Sequence[Conversation], config: GenConfig, *,
                 on_results: ResultCallback | None = None) -> list[Completion]: ...


@runtime_checkable
class WindowStore(Protocol):
    """Where a streaming backend keeps the scored windows of long texts while `loglikelihood_rolling` runs.

    The response cache passes one to a `streams_results` backend, so a text of many windows (a whole file
    scored for perplexity) is not lost whole to a kill: its finished windows are stored batch by batch and a
    rerun computes only the others. Indices are into that call's list of texts.
    """

    def known(self, text: int, count: int) -> dict[int, tuple[float, ...]]:
        """The stored per-token logprobs of the windows (numbered 0..count-1) of text `text`."""
        ...

    def add(self, windows: Sequence[tuple[int, int, tuple[float, ...]]]) -> None:
        """Store `(text, window number, per-token logprobs)` of windows just scored, in one transaction."""
        ...


class BackendBase:
    """Base class of evalkit's backends: every optional capability declared once, with its default.

    A subclass implements `identity` and the three methods of `Backend`; for each optional capability it has,
    it overrides the method and sets the flag. Callers ask the flag (`if backend.can_complete: ...`) instead of
    probing attributes; a default method raises `UnsupportedRequest` naming what the backend lacks. A plain
    object that implements only the `Backend` protocol gets the same face from
    `evalkit.backends.as_base_backend`.

    Every subclass has every method, so `isinstance(b, RawCompletion)` (or any capability protocol above)
    is true of all of them: ask the flags, never `isinstance` or `hasattr`.
    """

    can_score: bool = True  # loglikelihood / loglikelihood_rolling can work (False: a chat-only API)
    can_complete: bool = False  # complete(): continue raw text without a chat template
    can_render_chat: bool = False  # render_chat(): the chat template's text of a conversation
    can_tokenize: bool = False  # encode(), decode() and max_length
    can_complete_logprobs: bool = False  # complete_logprobs(): generated tokens with top alternatives
    can_chat_logprobs: bool = False  # chat_logprobs(): chat completions with top_logprobs
    streams_results: bool = False  # the methods accept `on_results` (see StreamingResults)
    cache_chunk_size: int | None = None  # requests per response-cache chunk it wants (None: the cache decides)

    @property
    def identity(self) -> ModelIdentity:
        """What this backend evaluates (every subclass defines it)."""
        raise NotImplementedError(f"{type(self).__name__} must define `identity`")

    @property
    def supports_prefill(self) -> bool:
        """Whether `chat_logprobs` can continue a forced start of the reply (`prefills`)."""
        return False

    def _lacks(self, what: str) -> UnsupportedRequest:
        return UnsupportedRequest(f"backend {self.identity.backend}:{self.identity.model} cannot {what}")

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        """Log-probability of each continuation; by default unsupported."""
        raise self._lacks("score text (loglikelihood); use a generative mode (--task-args mode=generate)")

    def loglikelihood_rolling(self, texts: Sequence[str], *, stride: int | None = None) -> list[TokenLogprobs]:
        """Per-token log-probabilities of whole texts; by default unsupported."""
        raise self._lacks("score whole texts (loglikelihood_rolling) for perplexity; use a backend with logprobs")

    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        """One completion per conversation; by default unsupported."""
        raise self._lacks("generate text")

    # ---- optional capabilities, with their defaults -----------------------------------------------------------
    def max_connections(self) -> int:
        """Requests it serves at once (an API's concurrency); the response cache sizes its chunks from it."""
        return 1

    def set_batch_size(self, batch_size: str | None) -> None:
        """Apply `--batch-size N|auto`; backends without batches ignore it."""

    def stats(self) -> Any:
        """Counters for results.json's `backend_stats`: a dict, or an object with `as_dict()`; none by default."""
        return {}

    def stats_dict(self) -> dict[str, Any]:
        """`stats()` as a plain dict (what results.json stores)."""
        values = self.stats()
        as_dict = getattr(values, "as_dict", None)  # the one place a stats object becomes a dict
        return dict(as_dict() if callable(as_dict) else values or {})

    def close(self) -> None:
        """Release connections, workers or files; nothing to release by default."""

    def complete(self, prompts: Sequence[str], config: GenConfig) -> list[Completion]:
        """Continue raw prompt text without a chat template (`can_complete`)."""
        raise self._lacks("continue raw text without a chat template (complete)")

    def render_chat(self, conversation: Conversation, *, add_generation_prompt: bool = True) -> str:
        """The chat template's text of a conversation (`can_render_chat`)."""
        raise self._lacks("render its chat template as text (render_chat)")

    @property
    def max_length(self) -> int:
        """The model's context length in tokens (`can_tokenize`)."""
        raise self._lacks("tell its context length (no tokenizer)")

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (`can_tokenize`)."""
        raise self._lacks("tokenize text (no tokenizer)")

    def decode(self, tokens: Sequence[int]) -> str:
        """Text of token ids (`can_tokenize`)."""
        raise self._lacks("decode tokens (no tokenizer)")

    def complete_logprobs(self, prompts: Sequence[str], config: GenConfig,
                          top_logprobs: int) -> list[list[tuple[TokenChoice, ...]]]:
        """Generated tokens with their logprobs and top alternatives (`can_complete_logprobs`)."""
        raise self._lacks("report the logprobs of generated tokens (complete_logprobs)")

    def chat_logprobs(self, conversations: Sequence[Conversation], config: GenConfig, top_logprobs: int,
                      prefills: Sequence[str | None] | None = None) -> list[tuple[TokenChoice, ...]]:
        """Chat completions with per-token top_logprobs (`can_chat_logprobs`)."""
        raise self._lacks("return chat completions with token logprobs (chat_logprobs)")
