"""Voting is a combinator over judges: `vote(judges, reducer)` is itself a scorer whose votes are all the
votes of its judges (a panel; each judge may sample several votes), reduced to one value per item.

Reducers work on the valid votes only (invalid votes are reported, never counted as 0):

- ``mean`` / ``median`` of the numbers (ratings; for pairwise, the preference for model A: 1, 0.5, 0).
- ``majority``: the most frequent value (ratings rounded to integers first; pairwise verdicts A/B/tie).
  **Tie rule**: when several values share the top count, single grading takes the median of the tied
  values, and pairwise gives "tie" — a split panel has not preferred either answer.

An item with no valid vote reduces to `None` (invalid).

Examples:
    >>> reduce_values([8, 6, 7], "median")
    7.0
    >>> reduce_values([8, 8, 3], "majority")
    8.0
    >>> reduce_values([8, 3], "majority")  # tie of counts: median of the tied values
    5.5
    >>> reduce_verdicts(["A", "B"], "majority")
    'tie'
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from evalkit.errors import ConfigError
from evalkit.judges._judge import Scorer
from evalkit.judges._listwise import ranks_of
from evalkit.judges._records import JudgeItem, JudgeStats, Vote, preference_of, verdict_of

__all__ = ["REDUCERS", "Reduced", "Voting", "reduce_rankings", "reduce_values", "reduce_verdicts", "reduce_votes",
           "vote"]

Reducer = Literal["mean", "median", "majority"]
REDUCERS = ("mean", "median", "majority")


def reduce_values(values: Sequence[float], reducer: str) -> float | None:
    """Reduce valid ratings to one number (see the module docstring for the tie rule)."""
    if not values:
        return None
    if reducer == "mean":
        return float(statistics.fmean(values))
    if reducer == "median":
        return float(statistics.median(values))
    if reducer == "majority":
        counts = Counter(round(v) for v in values)
        top = max(counts.values())
        return float(statistics.median(sorted(v for v, c in counts.items() if c == top)))
    raise ConfigError(f"unknown reducer '{reducer}': use one of {', '.join(REDUCERS)}")


def reduce_verdicts(verdicts: Sequence[str], reducer: str) -> str | None:
    """Reduce pairwise verdicts: majority with ties → "tie"; mean/median on the preference scale."""
    if not verdicts:
        return None
    if reducer == "majority":
        counts = Counter(verdicts).most_common()
        if len(counts) > 1 and counts[0][1] == counts[1][1]:
            return "tie"
        return counts[0][0]
    pref = reduce_values([preference_of(v) for v in verdicts], reducer)
    return None if pref is None else verdict_of(pref)


@dataclass(frozen=True)
class Reduced:
    """One item's reduced outcome: `value` (rating, or pairwise preference for model A), `verdict`
    (pairwise; listwise: the mean-rank order "a > b = c"), counts of valid and all votes, and for listwise
    items the mean rank of each model (`ranks`, item order; `value` stays None)."""

    value: float | None
    verdict: str | None
    valid_votes: int
    votes: int
    ranks: tuple[float, ...] | None = None

    @property
    def valid(self) -> bool:
        """True when at least one valid vote produced the outcome."""
        return self.value is not None or self.ranks is not None


def reduce_rankings(item: JudgeItem, valid: Sequence[Vote], votes: int) -> Reduced:
    """One listwise item's outcome: each model's mean rank over the valid votes, and the order they give."""
    if not valid:
        return Reduced(None, None, 0, votes)
    rankings = [ranks_of(str(v.value)) for v in valid]
    means = tuple(round(sum(r[i] for r in rankings) / len(rankings), 4) for i in range(len(item.models)))
    ordered = sorted(zip(means, item.models))
    text = ordered[0][1]
    for (before, _), (mean, model) in itertools.pairwise(ordered):
        text += f" {'=' if mean == before else '>'} {model}"
    return Reduced(None, text, len(valid), votes, means)


def reduce_votes(item: JudgeItem, votes: Sequence[Vote], reducer: str) -> Reduced:
    """Reduce one item's votes with `reducer`."""
    valid = [v for v in votes if v.valid]
    if item.listwise:
        return reduce_rankings(item, valid, len(votes))
    numbers = [float(v.numeric) for v in valid if v.numeric is not None]
    if not item.pairwise:
        return Reduced(reduce_values(numbers, reducer), None, len(valid), len(votes))
    if reducer == "majority":
        verdict = reduce_verdicts([str(v.value) for v in valid], reducer)
        value = None if verdict is None else preference_of(verdict)
        return Reduced(value, verdict, len(valid), len(votes))
    value = reduce_values(numbers, reducer)
    return Reduced(value, None if value is None else verdict_of(value), len(valid), len(votes))


class Voting:
    """A panel: the votes of several judges (each with its own samples) reduced per item.

    It is a scorer too (`judge` returns every vote), so panels can nest.
    """

    def __init__(self, judges: Sequence[Scorer], reducer: str = "mean") -> None:
        if not judges:
            raise ConfigError("a vote needs at least one judge")
        if reducer not in REDUCERS:
            raise ConfigError(f"unknown reducer '{reducer}': use one of {', '.join(REDUCERS)}")
        self.judges = list(judges)
        self.reducer = reducer
        self.name = "+".join(j.name for j in self.judges)

    @property
    def stats(self) -> JudgeStats:
        total = JudgeStats()
        for j in self.judges:
            s = j.stats
            total.calls += s.calls
            total.retries += s.retries
            total.prompt_tokens += s.prompt_tokens
            total.completion_tokens += s.completion_tokens
            total.loglikelihood_requests += s.loglikelihood_requests
            total.seconds += s.seconds
            total.first_try_parsed += s.first_try_parsed
            total.judgments += s.judgments
            for rule, n in s.rules.items():
                total.rules[rule] = total.rules.get(rule, 0) + n
        return total

    def planned_calls(self, items: Sequence[JudgeItem]) -> int:
        return sum(j.planned_calls(items) for j in self.judges)

    def judge(self, items: Sequence[JudgeItem]) -> list[list[Vote]]:
        """Every judge's votes, per item, in judge order."""
        out: list[list[Vote]] = [[] for _ in items]
        for j in self.judges:
            for i, votes in enumerate(j.judge(items)):
                out[i].extend(votes)
        return out

    def score(self, items: Sequence[JudgeItem]) -> list[tuple[Reduced, list[Vote]]]:
        """The reduced outcome and the votes of each item."""
        return [(reduce_votes(item, votes, self.reducer), votes)
                for item, votes in zip(items, self.judge(items))]


def vote(judges: Sequence[Scorer], reducer: str = "mean") -> Voting:
    """Combine judges into a voting panel.

    Args:
        judges: scorers (generative or probability judges, or other panels).
        reducer: "mean", "median" or "majority" (tie rule in the module docstring).

    Returns:
        A `Voting` scorer; `score(items)` gives one reduced outcome per item plus its votes.
    """
    return Voting(judges, reducer)
