"""Echoed prompt logprobs for /v1/completions, computed with an evalkit backend's own methods.

Two ways to score a prompt:

- standard (any OpenAI client): the backend's `loglikelihood_rolling` over the whole prompt, split into the
  backend's tokens (`encode`/`decode` where it has a tokenizer). The Backend contract gives no alternatives,
  so `top_logprobs` is null.
- exact split (`evalkit_context_chars: N`, sent by evalkit's OpenAI backend once /v1/models says the server
  is evalkit): the backend's `loglikelihood(prompt[:N], prompt[N:])`, returned as two segments, context
  (no logprob) and continuation (its summed logprob, top-1 when greedy). A client summing the continuation's
  tokens gets the wrapped backend's number exactly, and is_greedy with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evalkit.backends._adapt import as_base_backend
from evalkit.backends._protocol import Backend
from evalkit.backends._stops import token_pieces
from evalkit.types import LoglikelihoodRequest, TokenLogprobs

__all__ = ["EchoScore", "score_rolling", "score_rolling_many", "score_splits"]

EchoScore = dict[str, Any]  # an OpenAI `logprobs` object, token and window counts, (rolling) the raw logprobs


def score_splits(backend: Backend, prompts: Sequence[str], context_chars: Sequence[int]) -> list[EchoScore]:
    """Exact context/continuation scores through one `backend.loglikelihood` call (one batch)."""
    cuts = [max(0, min(n, len(p))) for p, n in zip(prompts, context_chars)]
    results = backend.loglikelihood([LoglikelihoodRequest(p[:n], p[n:]) for p, n in zip(prompts, cuts)])
    return [_split_score(p, n, r.logprob, r.is_greedy) for p, n, r in zip(prompts, cuts, results)]


def _split_score(prompt: str, n: int, logprob: float, is_greedy: bool) -> EchoScore:
    context, continuation = prompt[:n], prompt[n:]
    top = {continuation: logprob} if is_greedy else {}
    tokens: list[str] = [context, continuation] if context else [continuation]
    logprobs: list[float | None] = [None, logprob] if context else [logprob]
    tops: list[dict[str, float] | None] = [None, top] if context else [top]
    offsets = [0, n] if context else [0]
    return {"logprobs": {"tokens": tokens, "token_logprobs": logprobs, "top_logprobs": tops,
                         "text_offset": offsets},
            "num_tokens": len(tokens), "windows": 1}


def _token_strings(backend: Backend, prompt: str, count: int) -> list[str] | None:
    """The prompt cut into `count` token strings, or None when the backend's tokens do not line up."""
    base = as_base_backend(backend)
    if not base.can_tokenize:
        return list(prompt) if len(prompt) == count else None
    ids = base.encode(prompt)
    if len(ids) == count + 1:
        ids = ids[1:]  # a BOS token the rolling scores do not include
    if len(ids) != count:
        return None
    pieces = token_pieces(base.decode, ids)
    return pieces if pieces is not None and "".join(pieces) == prompt else None


def score_rolling(backend: Backend, prompt: str, *, stride: int | None = None) -> EchoScore:
    """Per-token logprobs of the whole prompt through `backend.loglikelihood_rolling`."""
    return score_rolling_many(backend, [prompt], stride=stride)[0]


def score_rolling_many(backend: Backend, prompts: Sequence[str], *, stride: int | None = None) -> list[EchoScore]:
    """`score_rolling` of several prompts through one `backend.loglikelihood_rolling` call (one batch)."""
    rolled = backend.loglikelihood_rolling(list(prompts), stride=stride)
    return [_rolling_score(backend, prompt, r) for prompt, r in zip(prompts, rolled)]


def _rolling_score(backend: Backend, prompt: str, rolled: TokenLogprobs) -> EchoScore:
    values: Sequence[float] = rolled.logprobs
    pieces = _token_strings(backend, prompt, len(values))
    if pieces is None:  # cannot align tokens with text: one segment carrying the total
        pieces, values = [prompt], [rolled.total]
    offsets, pos = [], 0
    for piece in pieces:
        offsets.append(pos)
        pos += len(piece)
    return {"logprobs": {"tokens": pieces, "token_logprobs": list(values), "top_logprobs": None,
                         "text_offset": offsets},
            "num_tokens": rolled.num_tokens, "windows": rolled.windows, "raw": list(rolled.logprobs)}
