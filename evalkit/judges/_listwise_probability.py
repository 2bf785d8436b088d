"""Probability mode for listwise judges: rank the answers by the judge's probability that each one is best.

The listwise prompt (answers shuffled per vote, as in generative mode) is rendered with the backend's chat
template and followed by the verdict start (`reply_prefix`, else `[[`). Each answer number 1..N (single digits,
N ≤ 8) is scored as the continuation, and after renormalising, q_k is the judge's probability that answer k
comes first. The vote ranks the answers by q (higher first; equal q tie). This reads a small judge's
preference even where it cannot write a whole ranking; it uses only the first place of the judge's belief,
so the ranking below first place is the order of the first-place probabilities, not a ranking the judge wrote.

Needs a backend that renders chat prompts and scores loglikelihoods (transformers, the fake backend).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from evalkit.judges._listwise import format_ranks, listwise_conversation, presented_order
from evalkit.judges._probability import ProbabilityJudge, verdict_distribution
from evalkit.judges._records import Attempt, JudgeItem, Vote
from evalkit.types import LoglikelihoodRequest

__all__ = ["ListwiseProbabilityJudge", "ranks_by_probability"]


def ranks_by_probability(probs: Sequence[float]) -> list[float]:
    """Fractional ranks of the answers by descending probability (equal probabilities tie).

    Examples:
        >>> ranks_by_probability([0.2, 0.5, 0.2, 0.1])
        [2.5, 1.0, 2.5, 4.0]
    """
    out = []
    for p in probs:
        better = sum(q > p for q in probs)
        same = sum(q == p for q in probs)
        out.append(better + (same + 1) / 2)
    return out


class ListwiseProbabilityJudge(ProbabilityJudge):
    """A listwise judge read from its first-place distribution (same arguments as `ProbabilityJudge`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.require_scoring_route("listwise")
        self.votes = max(1, kwargs.get("votes", 1))  # every vote is a new shuffle, so votes differ

    def planned_calls(self, items: Sequence[JudgeItem]) -> int:
        """One scoring pass per item and vote."""
        return len(items) * self.votes

    def _attempt_for(self, item: JudgeItem, sample: int) -> Attempt:
        seed, order = presented_order(item, self.seed, sample)
        conv = listwise_conversation(self.definition, item, order, self.data_dir)
        context = self.backend.render_chat(conv) + (self.definition.reply_prefix or "[[")
        numbers = [str(k) for k in range(1, len(item.models) + 1)]
        results = self.backend.loglikelihood([LoglikelihoodRequest(context, k) for k in numbers])
        self.stats.loglikelihood_requests += len(numbers)
        probs, mass = verdict_distribution([r.logprob for r in results])
        shown = [int(i) for i in order.split(",")]
        ranks = [0.0] * len(shown)
        for position, rank in enumerate(ranks_by_probability(probs)):
            ranks[shown[position]] = rank
        distribution = {item.models[shown[k]]: round(p, 6) for k, p in enumerate(probs)}
        return Attempt(order, format_ranks(ranks), "", "probability", distribution=distribution, valid_mass=mass,
                       low_confidence=mass < self.settings.low_confidence, seed=seed)

    def judge(self, items: Sequence[JudgeItem]) -> list[list[Vote]]:
        """One vote per item and sample, each from a freshly shuffled presentation."""
        start = time.perf_counter()
        out: list[list[Vote]] = [[] for _ in items]
        for sample in range(self.votes):
            for i, item in enumerate(items):
                attempt = self._attempt_for(item, sample)
                self.stats.calls += 1
                self.stats.judgments += 1
                self.stats.first_try_parsed += 1
                self.stats.rules["probability"] = self.stats.rules.get("probability", 0) + 1
                out[i].append(Vote(self.name, sample, attempt.value, (attempt,)))
        self.stats.seconds += time.perf_counter() - start
        return out
