"""Frozen records that flow along the one arrow: task → requests → backend → responses → metrics → store.

Examples:
    >>> LoglikelihoodRequest("答案：", " A")
    LoglikelihoodRequest(context='答案：', continuation=' A')
    >>> logprob, is_greedy = LoglikelihoodResult(-0.5, True)
    >>> GenConfig(temperature=0.7).greedy
    False
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

__all__ = [
    "Completion",
    "Conversation",
    "GenConfig",
    "LoglikelihoodRequest",
    "LoglikelihoodResult",
    "Message",
    "TokenChoice",
    "TokenLogprobs",
    "Usage",
]

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    """One chat message."""

    role: Role
    content: str


Conversation = tuple[Message, ...]


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """Score `continuation` given `context` (lm-eval's (context, continuation) pair)."""

    context: str
    continuation: str


class LoglikelihoodResult(NamedTuple):
    """Sum of the continuation's token log-probabilities, and whether greedy decoding would produce it."""

    logprob: float
    is_greedy: bool


@dataclass(frozen=True)
class TokenLogprobs:
    """Per-token log-probabilities of a whole text, from `loglikelihood_rolling`.

    `logprobs[i]` is log p(token_i | everything the window showed before it); every token of the text is
    scored exactly once.
    """

    logprobs: tuple[float, ...]
    windows: int = 1

    @property
    def total(self) -> float:
        return float(sum(self.logprobs))

    @property
    def num_tokens(self) -> int:
        return len(self.logprobs)


@dataclass(frozen=True)
class GenConfig:
    """Sampling parameters of one generation call. `temperature == 0` means greedy."""

    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    n: int = 1
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass(frozen=True)
class Usage:
    """Token counts of a call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens)


@dataclass(frozen=True)
class Completion:
    """The `n` sampled answers to one conversation.

    `reasoning[i]` is the thought a server returned apart from `texts[i]` (OpenAI-compatible
    `reasoning_content`); empty when the backend gives none.
    """

    texts: tuple[str, ...]
    usage: Usage = field(default_factory=Usage)
    finish_reasons: tuple[str, ...] = ()
    reasoning: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return self.texts[0]


@dataclass(frozen=True)
class TokenChoice:
    """One generated token: its text, its log-probability, and the top alternatives at its position.

    `top` holds (token text, logprob) pairs, most likely first; it includes the chosen token when it was
    among them. Token texts are as the model's tokenizer spells them (a byte-level token that ends inside a
    character decodes to "").
    """

    text: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()
