"""Generative judges on the scripted fake backend: retries, invalid votes, distinct vote samples, position
swap, and voting panels with their reducers and tie rules."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from evalkit.backends._fake import FakeBackend, from_script
from evalkit.judges import (
    GenerativeJudge,
    JudgeItem,
    load_judge_definition,
    position_consistency,
    reduce_values,
    reduce_verdicts,
    vote,
)
from evalkit.types import Completion, Conversation, GenConfig

SINGLE = load_judge_definition("mt-bench-single")
PAIR = load_judge_definition("mt-bench-pair")


def _single_item(answer: str = "Paris.") -> JudgeItem:
    return JudgeItem("1", "writing", 1, ("Capital of France?",), ("m",), ((answer,),))


def _pair_item() -> JudgeItem:
    return JudgeItem("1", "writing", 1, ("Q?",), ("x", "y"), (("ALPHA",), ("BETA",)))


def _fake(*texts: str, match: str = ".*") -> FakeBackend:
    return from_script({"replies": [{"match": match, "texts": list(texts)}]})


class _Recording(FakeBackend):
    """Remembers the GenConfig of every generate call."""

    configs: list[GenConfig]

    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        self.configs.append(config)
        return super().generate(conversations, config)


def test_reducers_and_tie_rules() -> None:
    assert reduce_values([3, 5, 9], "mean") == pytest.approx(17 / 3)
    assert reduce_values([3, 5, 9], "median") == 5
    assert reduce_values([3, 5, 9], "majority") == 5  # all tied: median of the tied values
    assert reduce_values([9, 9, 2, 2, 5], "majority") == 5.5
    assert reduce_values([7.4, 6.6, 2.0], "majority") == 7  # rounded before counting
    assert reduce_values([], "mean") is None
    assert reduce_verdicts(["A", "A", "B"], "majority") == "A"
    assert reduce_verdicts(["A", "B", "tie"], "majority") == "tie"
    assert reduce_verdicts(["A", "A", "B"], "mean") == "A"  # preference 2/3
    assert reduce_verdicts(["A", "B"], "mean") == "tie"


def test_retry_then_valid_keeps_failed_raw() -> None:
    judge = GenerativeJudge(SINGLE, _fake("I like it.", "Rating: [[7]]"), name="j")
    [[v]] = judge.judge([_single_item()])
    assert v.value == 7.0
    part = v.parts[0]
    assert part.tries == 2 and part.earlier == ("I like it.",) and part.raw == "Rating: [[7]]"
    assert judge.stats.calls == 2 and judge.stats.retries == 1 and judge.stats.first_try_parsed == 0


def test_invalid_after_max_retries_is_not_a_score() -> None:
    judge = GenerativeJudge(SINGLE.model_copy(update={"max_retries": 3}), _fake("Rating: [[0]]"), name="j")
    [[v]] = judge.judge([_single_item()])
    assert v.value is None and not v.valid and v.numeric is None
    assert v.parts[0].tries == 4 and v.parts[0].error == "rating 0 outside 1..10"
    panel = vote([judge], "mean")
    [(reduced, _)] = panel.score([_single_item()])
    assert reduced.value is None and reduced.valid_votes == 0


def test_votes_are_distinct_samples_with_distinct_seeds() -> None:
    backend = _Recording(replies=from_script({"replies": [{"match": ".*", "texts": ["[[3]]", "[[5]]", "[[9]]"]}]}).replies)
    backend.configs = []
    judge = GenerativeJudge(SINGLE, backend, name="j", votes=3, seed=10)
    [votes] = judge.judge([_single_item()])
    assert sorted(v.value for v in votes) == [3.0, 5.0, 9.0]  # seeds 10, 11, 12 pick texts 1, 2, 0
    assert [c.seed for c in backend.configs] == [10, 11, 12]
    assert all(c.temperature == pytest.approx(0.7) for c in backend.configs)  # votes at T=0 would be equal
    for reducer, expected in (("mean", 17 / 3), ("median", 5.0), ("majority", 5.0)):
        [(reduced, _)] = vote([judge], reducer).score([_single_item()])
        assert reduced.value == pytest.approx(expected)


def test_retry_uses_fresh_seed_and_retry_temperature() -> None:
    backend = _Recording(replies=from_script({"replies": [{"match": ".*", "texts": ["x", "y", "[[4]]"]}]}).replies)
    backend.configs = []
    GenerativeJudge(SINGLE, backend, name="j").judge([_single_item()])
    assert [c.seed for c in backend.configs] == [0, 1, 2]
    assert [c.temperature for c in backend.configs] == [0.0, 0.7, 0.7]


def test_position_bias_becomes_tie_and_is_counted() -> None:
    biased = GenerativeJudge(PAIR, _fake("[[A]]"), name="biased")  # always prefers the first answer shown
    [[v]] = biased.judge([_pair_item()])
    assert [p.value for p in v.parts] == ["A", "B"]  # BA's "A" is model y: mapped back to the item's orientation
    assert v.value == "tie" and v.consistent is False and v.preference == 0.5


def test_consistent_judge_keeps_its_verdict() -> None:
    script = {"replies": [{"match": r"\[Assistant A's Answer - start\]\nALPHA", "texts": ["x is better [[A]]"]},
                          {"match": ".*", "texts": ["the second one [[B]]"]}]}
    judge = GenerativeJudge(PAIR, from_script(script), name="fair")  # always prefers ALPHA (model x)
    [[v]] = judge.judge([_pair_item()])
    assert v.value == "A" and v.consistent is True and v.preference == 1.0
    biased = GenerativeJudge(PAIR, _fake("[[A]]"), name="biased")
    votes = judge.judge([_pair_item()])[0] + biased.judge([_pair_item()])[0]
    assert position_consistency(votes) == 0.5


def test_pairwise_one_order_invalid_makes_the_vote_invalid() -> None:
    script = {"replies": [{"match": r"A's Answer - start\]\nALPHA", "texts": ["[[A]]"]}, {"match": ".*", "texts": ["hmm"]}]}
    judge = GenerativeJudge(PAIR.model_copy(update={"max_retries": 0}), from_script(script), name="j")
    [[v]] = judge.judge([_pair_item()])
    assert v.value is None and v.consistent is None


def test_panel_reduces_over_all_judges_votes() -> None:
    j1 = GenerativeJudge(SINGLE, _fake("[[8]]"), name="a", votes=2)
    j2 = GenerativeJudge(SINGLE, _fake("[[2]]", "nonsense"), name="b", votes=1)
    panel = vote([j1, j2], "median")
    [(reduced, votes)] = panel.score([_single_item()])
    assert [v.judge for v in votes] == ["a", "a", "b"]
    assert reduced.value == 8.0 and reduced.votes == 3 and reduced.valid_votes == 3
    assert panel.stats.calls == 3
    assert panel.planned_calls([_single_item(), _single_item()]) == 6


def test_multi_turn_and_reference_prompts() -> None:
    item = JudgeItem("2", "math", 2, ("1+1?", "times 3?"), ("m",), (("2", "6"),), ("2", "6"))
    backend = _Recording(replies=from_script({"replies": [{"match": ".*", "texts": ["[[9]]"]}]}).replies)
    backend.configs = []
    judge = GenerativeJudge(SINGLE, backend, name="j")
    conv = judge.definition.prompt("math_multi_turn", None)
    assert "{ref_answer_2}" in conv.template
    from evalkit.judges import build_conversation

    messages = build_conversation(SINGLE, item, "")
    assert messages[0].role == "system" and "SECOND" in messages[0].content
    assert "### Reference answer:\n6" in messages[1].content and "### Assistant:\n6" in messages[1].content


def test_fallback_rules_are_counted() -> None:
    judge = GenerativeJudge(SINGLE, _fake("Rating: 6", "Rating: [[7]]", "I give it 5/10."), name="j", votes=3)
    [votes] = judge.judge([_single_item()])
    assert sorted(v.value for v in votes) == [5.0, 6.0, 7.0]
    assert judge.stats.rules == {"rating_label": 1, "strict": 1, "out_of_ten": 1}
    strict = GenerativeJudge(SINGLE.model_copy(update={"fallbacks": False, "max_retries": 0}), _fake("Rating: 6"),
                             name="s")
    assert strict.judge([_single_item()])[0][0].value is None and strict.stats.rules == {}


def test_reference_answers_from_a_reference_model() -> None:
    from evalkit.judges import Question, build_items, reference_answers

    definition = SINGLE.model_copy(update={"reference": SINGLE.reference.model_copy(
        update={"source": "model", "model": "ref-model"})})
    questions = [Question("1", "math", ("2+2?", "and times 3?")), Question("2", "writing", ("Poem?", "Shorter?"))]
    seen: list[str] = []

    def factory(spec: str, args: dict[str, str]) -> FakeBackend:
        seen.append(spec)
        return from_script({"replies": [{"match": r"2\+2", "texts": ["4"]}, {"match": "times", "texts": ["12"]}]})

    refs = reference_answers(definition, questions, None, backend_factory=factory)
    assert seen == ["ref-model"] and refs == {"1": ("4", "12")}  # only the reference categories
    items = build_items(definition, questions, {"m": {"1": ("4", "12"), "2": ("roses", "red")}}, references=refs)
    by_key = {(i.question_id, i.turn): i for i in items}
    assert by_key[("1", 2)].references == ("4", "12") and by_key[("2", 1)].references == ()
