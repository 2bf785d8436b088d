"""Frozen records of judging: what is judged (`JudgeItem`), one judge call (`Attempt`), one vote (`Vote`).

Pairwise values are kept in the item's own orientation: `"A"` means `models[0]` won, whichever order the
judge saw the answers in. A pairwise vote also has a numeric *preference* for `models[0]`: 1 (A), 0.5 (tie),
0 (B), or a probability in probability mode — the scale the mean/median reducers and Bradley-Terry work on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Attempt", "JudgeItem", "JudgeStats", "Vote", "preference_of", "verdict_of"]


@dataclass(frozen=True)
class JudgeItem:
    """One judgment to make: a question (all its turns so far), the answer(s) shown, the graded turn.

    `answers[i]` holds the turns of `models[i]`; single grading shows one model, pairwise two (A then B in
    the item's own orientation). `references` holds reference answers per turn, empty when none applies.
    """

    question_id: str
    category: str
    turn: int
    questions: tuple[str, ...]
    models: tuple[str, ...]
    answers: tuple[tuple[str, ...], ...]
    references: tuple[str, ...] = ()
    listwise: bool = False  # one judgment ranks all `models` (2..8) at once

    @property
    def pairwise(self) -> bool:
        return len(self.models) == 2 and not self.listwise

    @property
    def key(self) -> str:
        return f"{self.question_id}/turn{self.turn}/{'|'.join(self.models)}"


@dataclass(frozen=True)
class Attempt:
    """One judge call's final outcome (after retries) for one order of presentation.

    `order` is "" for single grading, "AB" or "BA" for pairwise, and for listwise the presented order as
    indices into the item's models ("2,0,1": models[2] shown first), drawn with `seed`; `value` is in the
    item's orientation (listwise: the rank of each model, item order, "1,2.5,2.5"). `distribution`,
    `valid_mass` and `low_confidence` are set in probability mode; `aspects` holds a rubric judgment's
    per-aspect ratings (an invalid aspect is absent, never 0).
    """

    order: str
    value: float | str | None
    raw: str
    rule: str | None
    error: str = ""
    tries: int = 1
    preference: float | None = None
    distribution: dict[str, float] | None = None
    valid_mass: float | None = None
    low_confidence: bool = False
    earlier: tuple[str, ...] = ()  # raw outputs of the failed tries before this one
    visible_mass: float | None = None  # API judges: the mass of the returned top_logprobs at the verdict
    seed: int | None = None  # listwise: the seed of the shuffled presentation order
    aspects: dict[str, float] | None = None  # rubric judges: the valid aspects' ratings

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"order": self.order, "value": self.value, "rule": self.rule, "tries": self.tries,
                               "raw": self.raw}
        if self.error:
            out["error"] = self.error
        if self.earlier:
            out["earlier"] = list(self.earlier)
        if self.distribution is not None:
            out.update(distribution=self.distribution, valid_mass=self.valid_mass,
                       low_confidence=self.low_confidence, preference=self.preference)
        if self.visible_mass is not None:
            out["visible_mass"] = self.visible_mass
        if self.seed is not None:
            out["seed"] = self.seed
        if self.aspects is not None:
            out["aspects"] = self.aspects
        return out


def verdict_of(preference: float) -> str:
    """Discretise a preference for `models[0]`: above 0.5 is "A", below is "B", exactly 0.5 is "tie"."""
    if preference > 0.5:
        return "A"
    return "B" if preference < 0.5 else "tie"


def preference_of(verdict: str) -> float:
    """The preference scale of a verdict: A → 1, tie → 0.5, B → 0."""
    return {"A": 1.0, "tie": 0.5, "B": 0.0}[verdict]


@dataclass(frozen=True)
class Vote:
    """One judge's vote on one item: sample `sample` of judge `judge`.

    For pairwise it merges both orders: the same verdict in both is kept, any disagreement becomes a tie
    (and `consistent` is False); if either order stayed invalid, the vote is invalid.
    """

    judge: str
    sample: int
    value: float | str | None
    parts: tuple[Attempt, ...]
    preference: float | None = None
    consistent: bool | None = None

    @property
    def valid(self) -> bool:
        return self.value is not None

    @property
    def numeric(self) -> float | None:
        """The number reducers work on: the rating, or the pairwise preference (None for a listwise ranking)."""
        if self.value is None or (isinstance(self.value, str) and self.preference is None):
            return None
        return self.preference if self.preference is not None else float(self.value)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"judge": self.judge, "sample": self.sample, "value": self.value,
                               "parts": [p.as_dict() for p in self.parts]}
        if self.preference is not None:
            out["preference"] = self.preference
        if self.consistent is not None:
            out["consistent"] = self.consistent
        return out


@dataclass
class JudgeStats:
    """Cost and time counters of one judge (mutable, summed as calls happen)."""

    calls: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    loglikelihood_requests: int = 0
    seconds: float = 0.0
    rules: dict[str, int] = field(default_factory=dict)
    first_try_parsed: int = 0
    judgments: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "retries": self.retries, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "loglikelihood_requests": self.loglikelihood_requests, "seconds": round(self.seconds, 3),
                "seconds_per_judgment": round(self.seconds / self.judgments, 4) if self.judgments else None,
                "parse_rate": self.first_try_parsed / self.judgments if self.judgments else None,
                "rules": dict(sorted(self.rules.items()))}
