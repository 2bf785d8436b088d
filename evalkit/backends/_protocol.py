"""The backend contract: three methods, like lm-eval's LM."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from evalkit.types import (
    Completion,
    Conversation,
    GenConfig,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    TokenChoice,
    TokenLogprobs,
)

__all__ = ["Backend", "ChatLogprobs", "ChatRendering", "LogprobCompletion", "ModelIdentity", "RawCompletion",
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
