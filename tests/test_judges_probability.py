"""Probability-mode judges on scripted backends whose verdict distributions are known exactly."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from evalkit.backends._fake import FakeBackend, from_script
from evalkit.errors import UnsupportedRequest
from evalkit.judges import (
    GenerativeJudge,
    JudgeItem,
    ProbabilityJudge,
    load_judge_definition,
    verdict_distribution,
    vote,
)
from evalkit.types import LoglikelihoodRequest, LoglikelihoodResult

SINGLE = load_judge_definition("mt-bench-single-prob")
PAIR = load_judge_definition("mt-bench-pair-prob")
ITEM = JudgeItem("1", "writing", 1, ("Q?",), ("m",), (("An answer.",),))
PAIR_ITEM = JudgeItem("1", "writing", 1, ("Q?",), ("x", "y"), (("ALPHA",), ("BETA",)))


def _known(probs: dict[str, float], floor: float = 1e-4) -> FakeBackend:
    """Every rating option gets log(p) from `probs` (or `floor`)."""
    table = {f"{k}]]": math.log(probs.get(str(k), floor)) for k in range(1, 11)}
    return from_script({"loglikelihood": table}, name="known")


class Recording(FakeBackend):
    requests: list[LoglikelihoodRequest]

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        self.requests.extend(requests)
        return super().loglikelihood(requests)


def test_expected_score_renormalised_and_mass() -> None:
    judge = ProbabilityJudge(SINGLE, _known({"7": 0.3, "8": 0.1}), name="p")
    [[v]] = judge.judge([ITEM])
    part = v.parts[0]
    mass = 0.4 + 8 * 1e-4
    assert part.valid_mass == pytest.approx(mass)
    expected = (7 * 0.3 + 8 * 0.1 + 1e-4 * (1 + 2 + 3 + 4 + 5 + 6 + 9 + 10)) / mass
    assert v.value == pytest.approx(expected) and part.rule == "probability"
    assert part.distribution is not None and part.distribution["7"] == pytest.approx(0.3 / mass, abs=1e-6)
    assert sum(part.distribution.values()) == pytest.approx(1.0, abs=1e-5)
    assert part.low_confidence is True  # 0.4 < 0.5 floor
    confident = ProbabilityJudge(SINGLE, _known({"9": 0.9}), name="p").judge([ITEM])[0][0]
    assert confident.parts[0].low_confidence is False and confident.value == pytest.approx(9.0, abs=0.01)


def test_multi_token_options_are_scored_whole_after_the_forced_prefix() -> None:
    backend = Recording(name="rec")
    backend.requests = []
    [[v]] = ProbabilityJudge(SINGLE, backend, name="p").judge([ITEM])
    conts = [r.continuation for r in backend.requests]
    assert conts == [f"{k}]]" for k in range(1, 11)]  # "10]]" is its own 4-token option, "1]]" cannot absorb it
    ctx = backend.requests[0].context
    assert ctx.endswith("<|assistant|>\nRating: [[") and ctx.startswith("<|system|>")
    # the fake scores character by character: recompute each option's full-sequence logprob by hand
    by_hand = [sum(backend._token_logprob(ctx + c[:i], ch) for i, ch in enumerate(c)) for c in conts]
    probs, mass = verdict_distribution(by_hand)
    assert v.value == pytest.approx(sum(p * k for p, k in zip(probs, range(1, 11))))
    assert v.parts[0].valid_mass == pytest.approx(mass)


class OrderAware(FakeBackend):
    """Pairwise verdict distribution depending on which answer is shown first."""

    biased: bool = False

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        out = []
        for r in requests:
            alpha_first = r.context.index("ALPHA") < r.context.index("BETA")
            if self.biased:
                p = {"A]]": 0.6, "B]]": 0.2, "C]]": 0.2}
            elif alpha_first:
                p = {"A]]": 0.7, "B]]": 0.1, "C]]": 0.2}
            else:
                p = {"A]]": 0.1, "B]]": 0.5, "C]]": 0.2}
            out.append(LoglikelihoodResult(math.log(p[r.continuation]), False))
        return out


def test_pairwise_preference_averages_both_orders() -> None:
    [[v]] = ProbabilityJudge(PAIR, OrderAware(name="o"), name="p").judge([PAIR_ITEM])
    ab, ba = v.parts
    assert ab.preference == pytest.approx(0.7 + 0.1)  # P(A) + P(C)/2, x shown first
    assert ba.preference == pytest.approx(1 - (0.1 / 0.8 + 0.5 * 0.2 / 0.8))  # renormalised, mapped back to x
    assert v.preference == pytest.approx((ab.preference + ba.preference) / 2)
    assert v.value == "A" and v.consistent is True
    assert ba.valid_mass == pytest.approx(0.8)
    biased = OrderAware(name="b")
    biased.biased = True
    [[w]] = ProbabilityJudge(PAIR, biased, name="p").judge([PAIR_ITEM])
    assert w.preference == pytest.approx(0.5) and w.value == "tie" and w.consistent is False


def test_backend_without_chat_rendering_names_the_generative_mode() -> None:
    class NoRender:
        @property
        def identity(self):  # type: ignore[no-untyped-def]
            return FakeBackend().identity

    with pytest.raises(UnsupportedRequest, match="generative mode"):
        ProbabilityJudge(SINGLE, NoRender(), name="x")  # type: ignore[arg-type]


def test_loglikelihood_unsupported_names_the_generative_mode() -> None:
    class ChatOnly(FakeBackend):
        def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
            raise UnsupportedRequest("chat API without logprobs")

    with pytest.raises(UnsupportedRequest, match="generative"):
        ProbabilityJudge(SINGLE, ChatOnly(), name="x").judge([ITEM])


def test_rationale_first_then_forced_prefix() -> None:
    definition = SINGLE.model_copy(update={"probability": SINGLE.probability.model_copy(
        update={"rationale_tokens": 40})})
    backend = Recording(replies=from_script({"replies": [{"match": ".*", "texts": ["Clear and correct. [[9]] extra"]}]}).replies)
    backend.requests = []
    [[v]] = ProbabilityJudge(definition, backend, name="p").judge([ITEM])
    ctx = backend.requests[0].context
    assert ctx.endswith("<|assistant|>\nClear and correct.\nRating: [[")  # stopped before its own verdict
    assert v.parts[0].raw == "Clear and correct.\n"


def test_probability_votes_mix_with_generative_votes() -> None:
    prob = ProbabilityJudge(SINGLE, _known({"6": 0.98}, floor=0.002), name="prob")
    gen = GenerativeJudge(load_judge_definition("mt-bench-single"),
                          from_script({"replies": [{"match": ".*", "texts": ["Rating: [[8]]"]}]}), name="gen")
    [(reduced, votes)] = vote([prob, gen], "mean").score([ITEM])
    assert [v.judge for v in votes] == ["prob", "gen"]
    assert reduced.value == pytest.approx((votes[0].value + 8.0) / 2)
    assert votes[0].value == pytest.approx(6.0, abs=0.05)


def test_without_rationale_one_vote_is_made() -> None:
    judge = ProbabilityJudge(SINGLE, _known({"5": 0.5}), name="p", votes=4)
    assert len(judge.judge([ITEM])[0]) == 1 and judge.planned_calls([ITEM]) == 1
