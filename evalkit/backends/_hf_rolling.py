"""Rolling-window scoring (perplexity) for the transformers backend, handed over as it is computed.

Every window of every text is one scorer row; the scorer runs them in batches (sorted, prefix-shared). Two
things leave as each batch finishes: a text whose last window was just scored goes to `on_results`, and the
windows of texts that span several windows go to the `WindowStore` (the response cache's), so a long text is
not lost whole when a run is killed. Windows already in the store are not run again: a window's values depend
on its own tokens only, so they are reused as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from evalkit.backends._hf_scoring import Row, Scored, Scorer
from evalkit.backends._protocol import ResultCallback, WindowStore
from evalkit.types import TokenLogprobs

__all__ = ["WindowPlan", "score_rolling"]

Window = tuple[tuple[int, ...], int]  # (model input, number of trailing positions scored)


@dataclass
class WindowPlan:
    """The windows of every text, the scorer rows still to run, and per text its windows' values so far."""

    rows: list[Row]
    owner: dict[int, tuple[int, int]]  # row key -> (text index, window number)
    values: list[list[tuple[float, ...] | None]]  # per text, per window: per-token logprobs once known

    def remaining(self, text: int) -> int:
        return sum(v is None for v in self.values[text])

    def joined(self, text: int) -> TokenLogprobs:
        parts = self.values[text]
        return TokenLogprobs(tuple(x for part in parts for x in part or ()), windows=len(parts))


def plan_windows(tokenized: Sequence[Sequence[int]], windows_of: Callable[[Sequence[int]], list[Window]],
                 store: WindowStore | None) -> WindowPlan:
    """Rows for every window not already in `store` (only texts of two or more windows are looked up)."""
    plan = WindowPlan([], {}, [])
    for text, tokens in enumerate(tokenized):
        windows = windows_of(tokens)
        known = store.known(text, len(windows)) if store is not None and len(windows) > 1 else {}
        slots: list[tuple[float, ...] | None] = []
        done = 0
        for number, (tokens_in, scored) in enumerate(windows):
            stored = known.get(number)
            if stored is not None and len(stored) == scored:
                slots.append(stored)
            else:
                key = len(plan.rows)
                plan.rows.append(Row(tokens_in, ((key, tuple(tokens[done:done + scored])),)))
                plan.owner[key] = (text, number)
                slots.append(None)
            done += scored
        plan.values.append(slots)
    return plan


def score_rolling(scorer: Scorer, plan: WindowPlan, *, on_results: ResultCallback | None,
                  store: WindowStore | None, progress: Callable[[int], None] | None) -> list[TokenLogprobs]:
    """Run the plan's rows; report finished texts and store finished windows as each batch completes.

    Args:
        scorer: the backend's scorer.
        plan: from `plan_windows`.
        on_results: gets `(text indices, TokenLogprobs)` for the texts whose last window a batch scored.
        store: gets each batch's windows of multi-window texts (one call per batch).
        progress: called with the number of texts each batch finished.

    Returns:
        One `TokenLogprobs` per text, in order.
    """

    def finish(texts: list[int]) -> None:
        if texts and on_results is not None:
            on_results(texts, [plan.joined(t) for t in texts])
        if texts and progress is not None:
            progress(len(texts))

    def on_batch(part: dict[int, Scored]) -> None:
        windows = []
        for key, (_, _, per_token) in part.items():
            text, number = plan.owner[key]
            plan.values[text][number] = per_token
            if len(plan.values[text]) > 1:
                windows.append((text, number, per_token))
        if windows and store is not None:
            store.add(windows)
        touched = dict.fromkeys(plan.owner[key][0] for key in part)
        finish([t for t in touched if plan.remaining(t) == 0])

    finish([t for t in range(len(plan.values)) if plan.remaining(t) == 0])  # empty, or every window stored
    for key, (_, _, per_token) in scorer.score(plan.rows, None, on_batch).items():
        text, number = plan.owner[key]
        plan.values[text][number] = per_token
    return [plan.joined(t) for t in range(len(plan.values))]
