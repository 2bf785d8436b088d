"""Prompt-lookup drafts: greedy decoding that checks several guessed tokens in one forward.

Generated answers often copy their prompt: a multiple-choice answer repeats its option's text, an extraction
answer quotes the passage, a model stuck in a loop repeats itself. When a row's last tokens occurred earlier
in its prompt or output, the tokens that followed that occurrence are a cheap guess (a draft) of what comes
next. A decoding step then feeds the row's next token and its draft together; the model's argmax at each
position says how much of the draft is right. The accepted tokens, plus the argmax after the last of them,
are exactly what one-token greedy steps would have produced, so a draft only changes how many forwards a
row takes, never its tokens (up to the last bits of float rounding, which differ between a forward of one
position and one of several; tests and benchmarks check the tokens against plain decoding).

A step of a few rows is bound by reading the weights, not by arithmetic: on SmolLM2 on one CPU core, a row's
step costs 82 ms with one position and 139 ms with eight. Once at most `DRAFT_ROWS` rows are decoding (the
tail of a batch, where the long answers finish alone), each row drafts on its own, in steps of at most
`STEP_POSITIONS` positions; a row whose draft was wholly rejected waits 1, 3, 7, ... steps before its next one,
so free text that seldom repeats its prompt loses little. A wider step (up to `WIDE_POSITIONS` positions)
costs every row while only the longest answer bounds the batch, so its drafts must pay as a whole: after such a
step that kept fewer than half of its draft tokens, the batch drafts no wide step for 1, 3, 7, ... steps. That
is how copied answers (every row repeating an option) finish together in a few wide steps, while a batch of
free-form answers drafts only a handful of times.

This is the technique of `prompt_lookup_num_tokens` in transformers' `generate` and of vLLM's n-gram
speculative decoding; the matching here (the latest occurrence of the longest suffix of up to `MAX_NGRAM`
tokens) is evalkit's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["DRAFT_ROWS", "MAX_DRAFT", "MAX_NGRAM", "STEP_POSITIONS", "WIDE_POSITIONS", "Backoff", "DraftState",
           "accepted", "lookup", "step_cap"]

DRAFT_ROWS = 4  # rows at most of a step whose rows draft on their own backoff alone
STEP_POSITIONS = 16  # rows x positions of such a step at most
WIDE_POSITIONS = 48  # rows x positions at most of a step of more rows, drafted while the batch's drafts pay
MAX_DRAFT = 8  # draft tokens of one row at most
MAX_NGRAM = 3  # longest suffix looked up
MAX_WAIT = 64  # steps a row waits at most after repeated misses


def lookup(context: Any, limit: int, max_ngram: int = MAX_NGRAM) -> list[int]:
    """Up to `limit` tokens that followed the latest earlier occurrence of `context`'s last n tokens, for the
    longest n <= `max_ngram` that occurred; [] when none did.

    Examples:
        >>> import numpy as np
        >>> lookup(np.array([7, 1, 2, 3, 9, 1, 2]), 2)
        [3, 9]
        >>> lookup(np.array([5, 6, 5, 6, 5]), 3)
        [6, 5]
        >>> lookup(np.array([1, 2, 3]), 4)
        []
    """
    import numpy as np

    length = len(context)
    for n in range(min(max_ngram, length - 1), 0, -1):
        hits = np.ones(length - n, dtype=bool)  # start i of an earlier occurrence: context[i:i+n] == suffix
        for j in range(n):
            hits &= context[j:length - n + j] == context[length - n + j]
        found = np.flatnonzero(hits)
        if len(found):
            start = int(found[-1]) + n
            return [int(t) for t in context[start:start + limit]]
    return []


def accepted(draft: Sequence[int], argmax: Sequence[int]) -> list[int]:
    """The tokens greedy decoding yields from a drafted step: the argmax at each position while the draft
    agreed with it, then the argmax after the last agreeing draft token.

    Examples:
        >>> accepted([4, 5, 6], [4, 5, 9, 2])
        [4, 5, 9]
        >>> accepted([], [3])
        [3]
    """
    tokens = [int(argmax[0])]
    for i, guess in enumerate(draft):
        if guess != tokens[-1]:
            break
        tokens.append(int(argmax[i + 1]))
    return tokens


class Backoff:
    """Waits 1, 3, 7, ... steps (at most `MAX_WAIT`) after consecutive misses; a hit ends the waiting."""

    __slots__ = ("misses", "wait")

    def __init__(self) -> None:
        self.misses = 0
        self.wait = 0

    def ready(self) -> bool:
        """Whether this step may draft (a step asked while waiting counts towards the wait)."""
        if self.wait > 0:
            self.wait -= 1
            return False
        return True

    def record(self, hit: bool) -> None:
        if hit:
            self.misses = 0
        else:
            self.misses += 1
            self.wait = min(MAX_WAIT, 2 ** self.misses - 1)


def step_cap(rows: int) -> int:
    """Draft tokens each row may carry in a decoding step of `rows` rows (0: the step does not draft).

    Examples:
        >>> [step_cap(rows) for rows in (1, 2, 4, 5, 8, 16, 24, 32)]
        [8, 7, 3, 8, 5, 2, 1, 0]
    """
    positions = STEP_POSITIONS if rows <= DRAFT_ROWS else WIDE_POSITIONS
    return max(0, min(MAX_DRAFT, positions // rows - 1))


class DraftState:
    """A row's drafting state: its prompt as an array (built once) and its backoff after misses."""

    __slots__ = ("backoff", "prompt")

    def __init__(self) -> None:
        self.prompt: Any = None
        self.backoff = Backoff()

    def propose(self, prompt: Sequence[int], generated: Sequence[int], limit: int) -> list[int]:
        """A draft of at most `limit` tokens for a row with `prompt` and `generated` so far (its pending token
        last), or [] while it waits after a miss."""
        import numpy as np

        if limit <= 0 or not self.backoff.ready():
            return []
        if self.prompt is None:
            self.prompt = np.asarray(prompt, dtype=np.int64)
        context = np.concatenate([self.prompt, np.asarray(generated, dtype=np.int64)])
        return lookup(context, limit)

    def record(self, drafted: int, taken: int) -> None:
        """After a step that checked `drafted` draft tokens of this row and kept `taken` of them."""
        if drafted:
            self.backoff.record(taken > 0)
