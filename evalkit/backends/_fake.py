"""A scripted fake backend, registered like a real one (`fake:<script.yaml>` or `fake:echo`).

It has its own tiny tokenizer (one token per character), so tests of tasks, judges, caching and reports
never need a model or the network. Everything it returns is a deterministic function of the request.

Script file (YAML):

    replies:                      # first rule whose regex matches the last user message wins
      - match: "capital of France"
        texts: ["Paris.", "It is Paris."]   # sample i of n (or seed s) gets texts[(s + i) % len]
      - match: ".*"
        texts: ["I do not know."]
    loglikelihood:                # continuation (stripped) -> logprob; others get a hash-derived value
      "A": -0.5
      "B": -2.0
    next_tokens:                  # generation with logprobs: when the text so far ends with a key, the next
      "Rating: [[": {"7": -0.4, "8": -1.3, "1": -2.5}   # token is the likeliest of its table (greedy) and
      "Rating: [[1": {"0": -0.2, "]]": -1.8}            # the table is its top_logprobs; elsewhere the reply
                                                        # text goes on one character per token
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from evalkit.backends._protocol import BackendBase, ModelIdentity
from evalkit.backends._stops import cut_choices_at_stop
from evalkit.errors import ConfigError
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

__all__ = ["FakeBackend", "create"]

_VOCAB = 256


def _unit(text: str) -> float:
    """A deterministic number in (0, 1) derived from text."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return (int.from_bytes(digest[:8], "big") + 0.5) / 2**64


@dataclass
class FakeBackend(BackendBase):
    """Deterministic scripted backend. `calls` counts requests served per method (for cache tests)."""

    can_complete = can_render_chat = can_tokenize = can_complete_logprobs = True

    name: str = "echo"
    replies: list[tuple[re.Pattern[str], list[str]]] = field(default_factory=list)
    fixed_logprobs: dict[str, float] = field(default_factory=dict)
    max_length: int = 64
    next_tokens: dict[str, dict[str, float]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=lambda: {"loglikelihood": 0, "rolling": 0, "generate": 0})

    @property
    def identity(self) -> ModelIdentity:
        return ModelIdentity(backend="fake", model=self.name, revision="1")

    # tiny tokenizer: one token per character
    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, tokens: Sequence[int]) -> str:
        return "".join(chr(t) for t in tokens)

    def _token_logprob(self, history: str, token: str) -> float:
        # a proper distribution would need normalising; a bounded, deterministic value is enough for tests
        return math.log(0.05 + 0.9 * _unit(history[-8:] + "|" + token)) - math.log(_VOCAB) / 4

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        out = []
        for req in requests:
            self.calls["loglikelihood"] += 1
            key = req.continuation.strip()
            if key in self.fixed_logprobs:
                out.append(LoglikelihoodResult(self.fixed_logprobs[key], False))
                continue
            lp = sum(self._token_logprob(req.context + req.continuation[:i], ch)
                     for i, ch in enumerate(req.continuation))
            out.append(LoglikelihoodResult(lp, False))
        return out

    def loglikelihood_rolling(self, texts: Sequence[str], *, stride: int | None = None) -> list[TokenLogprobs]:
        out = []
        for text in texts:
            self.calls["rolling"] += 1
            lps = tuple(self._token_logprob(text[max(0, i - self.max_length):i], ch) for i, ch in enumerate(text))
            out.append(TokenLogprobs(lps, windows=max(1, math.ceil(len(text) / self.max_length))))
        return out

    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        out = []
        for conv in conversations:
            self.calls["generate"] += 1
            last = next((m.content for m in reversed(conv) if m.role == "user"), "")
            texts = self._reply_texts(last)
            base = config.seed or 0
            picked = tuple(self._cut(texts[(base + i) % len(texts)], config) for i in range(config.n))
            prompt_tokens = sum(len(m.content) for m in conv)
            out.append(Completion(picked, Usage(prompt_tokens, sum(len(t) for t in picked)),
                                  tuple("stop" for _ in picked)))
        return out

    def complete(self, prompts: Sequence[str], config: GenConfig) -> list[Completion]:
        """Raw completion: the script is matched against the whole prompt."""
        from evalkit.types import Message

        return self.generate([(Message("user", p),) for p in prompts], config)

    def complete_logprobs(self, prompts: Sequence[str], config: GenConfig,
                          top_logprobs: int) -> list[list[tuple[TokenChoice, ...]]]:
        """Greedy continuation of raw prompts, token by token, with scripted `next_tokens` tables as the
        distributions where they apply (the script is matched against the whole prompt)."""
        out = []
        for prompt in prompts:
            self.calls["logprobs"] = self.calls.get("logprobs", 0) + 1
            texts = self._reply_texts(prompt)
            base = config.seed or 0
            out.append([self._walk(prompt, texts[(base + i) % len(texts)], config, top_logprobs)
                        for i in range(config.n)])
        return out

    def _walk(self, prompt: str, reply: str, config: GenConfig, top: int) -> tuple[TokenChoice, ...]:
        emitted, tokens = "", []
        for _ in range(config.max_tokens):
            table = self._table_for(prompt + emitted)
            if table:
                ranked = sorted(table.items(), key=lambda kv: (-kv[1], kv[0]))
                token, logprob = ranked[0]
            elif reply.startswith(emitted) and len(emitted) < len(reply):
                token = reply[len(emitted)]
                logprob = self._token_logprob(prompt + emitted, token)
                ranked = [(token, logprob)]
            else:
                break
            tokens.append(TokenChoice(token, logprob, tuple(ranked[:top])))
            emitted += token
        return cut_choices_at_stop(tuple(tokens), config.stop)

    def _table_for(self, text: str) -> dict[str, float] | None:
        keys = [k for k in self.next_tokens if text.endswith(k)]
        return self.next_tokens[max(keys, key=len)] if keys else None

    def render_chat(self, conversation: Conversation, *, add_generation_prompt: bool = True) -> str:
        """A minimal, fixed chat format: `<|role|>\ncontent\n` per message."""
        text = "".join(f"<|{m.role}|>\n{m.content}\n" for m in conversation)
        return text + ("<|assistant|>\n" if add_generation_prompt else "")

    def _reply_texts(self, last_user: str) -> list[str]:
        for pattern, texts in self.replies:
            if pattern.search(last_user):
                return texts
        return [last_user]  # echo

    @staticmethod
    def _cut(text: str, config: GenConfig) -> str:
        for stop in config.stop:
            if stop and stop in text:
                text = text[: text.index(stop)]
        return text[: config.max_tokens]


def from_script(script: dict[str, Any], name: str = "scripted") -> FakeBackend:
    """Build a FakeBackend from a parsed script mapping (see the module docstring)."""
    replies = [(re.compile(str(r["match"])), [str(t) for t in r["texts"]]) for r in script.get("replies", [])]
    fixed = {str(k): float(v) for k, v in (script.get("loglikelihood") or {}).items()}
    tables = {str(k): {str(t): float(lp) for t, lp in v.items()} for k, v in (script.get("next_tokens") or {}).items()}
    return FakeBackend(name=name, replies=replies, fixed_logprobs=fixed,
                       max_length=int(script.get("max_length", 64)), next_tokens=tables)


def create(model: str, args: dict[str, str]) -> FakeBackend:
    """Factory for `fake:echo` or `fake:<path to script.yaml>`."""
    if model == "echo":
        return FakeBackend(max_length=int(args.get("max_length", 64)))
    path = Path(model)
    if not path.is_file():
        raise ConfigError(f"fake backend script '{model}' not found; use fake:echo or fake:<path to script.yaml>")
    script = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return from_script(script, name=path.stem)
