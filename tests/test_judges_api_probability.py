"""Probability-mode judges over HTTP: `top_logprobs` from a real `evalkit serve` on 127.0.0.1, with
scripted distributions so every expected score is worked out by hand."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from evalkit.backends._fake import FakeBackend, from_script
from evalkit.backends._openai import OpenAIBackend
from evalkit.errors import UnsupportedRequest
from evalkit.judges import JudgeItem, ProbabilityJudge, load_judge_definition
from evalkit.judges._verdict_tokens import option_masses
from evalkit.types import GenConfig, Message

pytestmark = pytest.mark.integration

SINGLE = load_judge_definition("mt-bench-single-prob")
PAIR = load_judge_definition("mt-bench-pair-prob")
RATINGS = [str(k) for k in range(1, 11)]
ln = math.log

# At "Rating: [[": 7 (0.5), 1 (0.3), 8 (0.1), "x" (0.05, not a verdict). After "[[1": "0" (0.6) → 10, "]]" (0.4) → 1.
SCRIPT = {
    "replies": [{"match": "NO-OPENER", "texts": ["I cannot decide."]},
                {"match": ".*", "texts": ["Helpful and correct. Rating: [[1"]}],
    "next_tokens": {
        "Rating: [[": {"7": ln(0.5), "1": ln(0.3), "8": ln(0.1), "x": ln(0.05)},
        "Rating: [[1": {"0": ln(0.6), "]]": ln(0.4)},
        "correct. Rating: [[": {"1": ln(0.5), "7": ln(0.3), "8": ln(0.1)},  # where the judge writes it itself
        "Final verdict: [[": {"A": ln(0.6), "B": ln(0.2), "C": ln(0.1)},
    },
}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, FakeBackend]]:
    from evalkit.server import create_app, serve_in_thread

    backend = from_script(SCRIPT, name="judge")
    with serve_in_thread(create_app(backend, "judge")) as url:
        yield url, backend


def _item(answer: str = "An answer.") -> JudgeItem:
    return JudgeItem("1", "writing", 1, ("Q?",), ("m",), ((answer,),))


# --- the string-space walk, exact cases ---------------------------------------------------------------------
def test_ambiguous_prefix_is_split_by_the_next_position() -> None:
    after = {"1": [("0", ln(0.6)), ("]]", ln(0.4))]}
    found = option_masses(RATINGS, "]]", [("7", ln(0.5)), ("1", ln(0.3)), ("x", ln(0.05))], after.get)
    assert found.masses["7"] == pytest.approx(0.5)
    assert found.masses["10"] == pytest.approx(0.3 * 0.6) and found.masses["1"] == pytest.approx(0.3 * 0.4)
    assert found.visible == pytest.approx(0.85) and found.valid == pytest.approx(0.8) and found.unresolved == 0


def test_unexpandable_ambiguity_goes_to_the_shorter_option_and_is_counted() -> None:
    found = option_masses(RATINGS, "]]", [("1", ln(0.3)), ("9", ln(0.2))], lambda _: None)
    assert found.masses["1"] == pytest.approx(0.3) and found.masses["10"] == 0
    assert found.unresolved == pytest.approx(0.3)


def test_tokens_carrying_the_suffix_and_whole_multi_digit_tokens() -> None:
    found = option_masses(RATINGS, "]]", [("7]]", ln(0.4)), ("10", ln(0.3)), ("10]", ln(0.1)), ("11", ln(0.1))],
                          lambda _: pytest.fail("nothing here is ambiguous"))
    assert found.masses["7"] == pytest.approx(0.4) and found.masses["10"] == pytest.approx(0.4)
    assert found.valid == pytest.approx(0.8)  # "11" is no option


def test_a_bare_prefix_token_is_followed_to_the_option() -> None:
    # a tokenizer whose digits come after a separate "[" token: "[" then "5"
    found = option_masses(["[5"], "]]", [("[", ln(0.5))], {"[": [("5", ln(0.8))]}.get)
    assert found.masses["[5"] == pytest.approx(0.4)


# --- through evalkit serve ----------------------------------------------------------------------------------
def test_prefill_route_forces_the_prefix_and_expands_ten(served: tuple[str, FakeBackend]) -> None:
    url, backend = served
    client = OpenAIBackend("judge", base_url=url)
    assert client.supports_prefill  # /v1/models says evalkit
    before = backend.calls.get("logprobs", 0)
    judge = ProbabilityJudge(SINGLE, client, name="api")
    assert judge.route == "top_logprobs"
    [[vote]] = judge.judge([_item()])
    part = vote.parts[0]
    masses = {"7": 0.5, "1": 0.3 * 0.4, "10": 0.3 * 0.6, "8": 0.1}
    valid = sum(masses.values())
    assert part.valid_mass == pytest.approx(valid) and part.visible_mass == pytest.approx(0.95)
    assert vote.value == pytest.approx(sum(float(k) * m for k, m in masses.items()) / valid)
    assert part.distribution is not None and part.distribution["10"] == pytest.approx(0.18 / valid, abs=1e-6)
    assert part.low_confidence is False and part.rule == "probability"
    assert backend.calls.get("logprobs", 0) - before == 2  # the verdict position, then "1" expanded once


def test_free_reply_route_reads_after_the_judges_own_opener(served: tuple[str, FakeBackend]) -> None:
    url, _ = served
    client = OpenAIBackend("judge", base_url=url, prefill="false")
    judge = ProbabilityJudge(SINGLE, client, name="api")
    [[vote]] = judge.judge([_item()])
    part = vote.parts[0]
    # the judge wrote "... Rating: [[1" and then "0" (greedy in the "[[1" table): "1" is split along that path
    masses = {"1": 0.5 * 0.4, "10": 0.5 * 0.6, "7": 0.3, "8": 0.1}
    assert vote.value == pytest.approx(sum(float(k) * m for k, m in masses.items()) / sum(masses.values()))
    assert part.raw.startswith("Helpful and correct. Rating: [[")
    [[missing]] = judge.judge([_item("NO-OPENER")])
    assert missing.value is None and "verdict opener" in missing.parts[0].error


def test_pairwise_preference_from_both_orders(served: tuple[str, FakeBackend]) -> None:
    url, _ = served
    item = JudgeItem("1", "writing", 1, ("Q?",), ("x", "y"), (("ALPHA",), ("BETA",)))
    [[vote]] = ProbabilityJudge(PAIR, OpenAIBackend("judge", base_url=url), name="api").judge([item])
    # same distribution in both orders: AB prefers the first shown (x), BA the first shown (y) -> averaged
    p_a, p_c = 0.6 / 0.9, 0.1 / 0.9
    ab = p_a + p_c / 2
    ba = 1 - (p_a + p_c / 2)
    assert vote.preference == pytest.approx((ab + ba) / 2) and [p.order for p in vote.parts] == ["AB", "BA"]
    assert vote.parts[0].visible_mass == pytest.approx(0.9)


def test_low_mass_is_flagged(served: tuple[str, FakeBackend]) -> None:
    url, _ = served
    strict = SINGLE.model_copy(update={"probability": SINGLE.probability.model_copy(update={"low_confidence": 0.9})})
    [[vote]] = ProbabilityJudge(strict, OpenAIBackend("judge", base_url=url), name="api").judge([_item()])
    assert vote.parts[0].low_confidence is True and vote.value is not None


def test_served_chat_logprobs_follow_openais_format(served: tuple[str, FakeBackend]) -> None:
    url, _ = served
    import httpx

    body = {"model": "judge", "messages": [{"role": "user", "content": "Rate."},
                                           {"role": "assistant", "content": "Rating: [["}],
            "continue_final_message": True, "add_generation_prompt": False, "max_tokens": 1, "temperature": 0,
            "logprobs": True, "top_logprobs": 2}
    data = httpx.post(f"{url}/chat/completions", json=body).json()
    [token] = data["choices"][0]["logprobs"]["content"]
    assert token["token"] == "7" and token["logprob"] == pytest.approx(ln(0.5)) and token["bytes"] == [55]
    assert [t["token"] for t in token["top_logprobs"]] == ["7", "1"]
    assert data["choices"][0]["message"]["content"] == "7"
    both = httpx.post(f"{url}/chat/completions", json={**body, "add_generation_prompt": True})
    assert both.status_code == 400 and "add_generation_prompt=false" in both.json()["error"]["message"]


class ChatOnly:
    """A backend that can chat and score but reports no token logprobs (like many engines)."""

    def __init__(self) -> None:
        self.inner = FakeBackend()

    @property
    def identity(self) -> Any:
        return self.inner.identity

    def loglikelihood(self, requests: Sequence[Any]) -> Any:
        return self.inner.loglikelihood(requests)

    def loglikelihood_rolling(self, texts: Sequence[str], *, stride: int | None = None) -> Any:
        return self.inner.loglikelihood_rolling(texts, stride=stride)

    def generate(self, conversations: Sequence[Any], config: GenConfig) -> Any:
        return self.inner.generate(conversations, config)


def test_a_server_without_token_logprobs_names_the_generative_mode() -> None:
    from evalkit.server import create_app, serve_in_thread

    with serve_in_thread(create_app(ChatOnly(), "plain")) as url:  # type: ignore[arg-type]
        judge = ProbabilityJudge(SINGLE, OpenAIBackend("plain", base_url=url, prefill="false"), name="api")
        with pytest.raises(UnsupportedRequest, match="generative mode"):
            judge.judge([_item()])
        client = OpenAIBackend("plain", base_url=url)
        with pytest.raises(UnsupportedRequest, match="generative mode"):
            client.chat_logprobs([(Message("user", "hi"),)], GenConfig(max_tokens=1), 5)


def test_api_judgments_are_cached(served: tuple[str, FakeBackend], tmp_path: Any) -> None:
    from evalkit.store._cache import CachedBackend

    url, backend = served
    first = CachedBackend(OpenAIBackend("judge", base_url=url), tmp_path / "cache.sqlite")  # type: ignore[arg-type]
    [[vote]] = ProbabilityJudge(SINGLE, first, name="api").judge([_item()])  # type: ignore[arg-type]
    first.close()
    before = backend.calls.get("logprobs", 0)
    again = CachedBackend(OpenAIBackend("judge", base_url=url), tmp_path / "cache.sqlite")  # type: ignore[arg-type]
    [[same]] = ProbabilityJudge(SINGLE, again, name="api").judge([_item()])  # type: ignore[arg-type]
    assert backend.calls.get("logprobs", 0) == before and again.cache_stats.hits == 2 and again.cache_stats.misses == 0
    assert same.value == vote.value and same.parts[0].distribution == vote.parts[0].distribution
