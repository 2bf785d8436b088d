"""Probability mode for rubric judges: each aspect's rating distribution is read on its own.

For every aspect the judge's rendered chat prompt (plus an optional rationale) is followed by that aspect's
forced verdict start — `{"accuracy": ` for a JSON verdict (`output_format: json`), `accuracy: [[` otherwise —
and every rating on the aspect's scale is scored as its continuation with the closing text (`,` before
another JSON key, `}` after the last, `]]` for brackets), so `1` cannot absorb the mass of `10`. Each aspect
then gets its expected rating under the renormalised distribution; the judgment's value is the weighted mean
of the aspects (as in generative mode), its `valid_mass` the smallest of the aspects' masses.

The aspects are probed independently (each as if it were the first written), which reads the judge's belief
about that aspect without letting its rating of one aspect steer the next. Needs a backend that renders chat
prompts and scores loglikelihoods (transformers, the fake backend); API judges use the generative mode.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from evalkit.judges._judge import build_conversation
from evalkit.judges._probability import ProbabilityJudge, verdict_distribution
from evalkit.judges._records import Attempt, JudgeItem, Vote
from evalkit.judges._rubric import weighted_overall
from evalkit.types import LoglikelihoodRequest

__all__ = ["RubricProbabilityJudge"]


class RubricProbabilityJudge(ProbabilityJudge):
    """A rubric judge read from per-aspect rating distributions (same arguments as `ProbabilityJudge`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.require_scoring_route("rubric")

    @property
    def _json(self) -> bool:
        return self.definition.output_format.strip().lower() == "json"

    def prefix_stop(self) -> str:
        return "{" if self._json else "[["

    def _probe(self, index: int) -> tuple[str, str]:
        """(forced start, closing text) of aspect `index`."""
        aspect = self.definition.aspects[index]
        if self._json:
            return f'{{"{aspect.name}": ', "," if index < len(self.definition.aspects) - 1 else "}"
        return f"{aspect.name}: [[", "]]"

    def _rubric_attempt(self, context: str, rationale: str) -> Attempt:
        values: dict[str, float] = {}
        distribution: dict[str, float] = {}
        masses = []
        for index, aspect in enumerate(self.definition.aspects):
            start, close = self._probe(index)
            ratings = list(range(int(aspect.scale[0]), int(aspect.scale[1]) + 1))
            requests = [LoglikelihoodRequest(context + start, f"{r}{close}") for r in ratings]
            logprobs = [res.logprob for res in self.backend.loglikelihood(requests)]
            self.stats.loglikelihood_requests += len(requests)
            probs, mass = verdict_distribution(logprobs)
            values[aspect.name] = round(sum(p * r for p, r in zip(probs, ratings)), 6)
            distribution.update({f"{aspect.name}={r}": round(p, 6) for r, p in zip(ratings, probs)})
            masses.append(mass)
        overall = weighted_overall(values, {a.name: a.weight for a in self.definition.aspects})
        return Attempt("", overall, rationale, "probability", distribution=distribution, valid_mass=min(masses),
                       low_confidence=min(masses) < self.settings.low_confidence, aspects=values)

    def judge(self, items: Sequence[JudgeItem]) -> list[list[Vote]]:
        """One vote per item and sample, each aspect read from its own distribution."""
        start = time.perf_counter()
        convs = [build_conversation(self.definition, item, "", self.data_dir) for item in items]
        rendered = [self.backend.render_chat(conv) for conv in convs]
        out: list[list[Vote]] = [[] for _ in items]
        for sample in range(self.votes):
            rationales = self._rationales(convs, sample)
            for i, (text, why) in enumerate(zip(rendered, rationales)):
                attempt = self._rubric_attempt(text + why, why)
                self.stats.calls += 1
                self.stats.judgments += 1
                self.stats.first_try_parsed += 1
                self.stats.rules["probability"] = self.stats.rules.get("probability", 0) + 1
                out[i].append(Vote(self.name, sample, attempt.value, (attempt,)))
        self.stats.seconds += time.perf_counter() - start
        return out
