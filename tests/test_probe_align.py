"""The echo-alignment verdict as a pure function: aligned, shifted either way (and undone by `realign`), read
from the next position's distribution, misaligned, inconclusive; and the text-offset check."""

from __future__ import annotations

import math
from typing import Any

import pytest

from evalkit.backends._openai_parse import continuation_result, realign
from evalkit.backends._probe_align import (
    Alignment,
    Generated,
    generated_step,
    judge_alignment,
    offsets_problem,
)
from evalkit.server._faults import shift_echo

SEED = "Seed: "
# greedy tokens with distinct logprobs, as a real model generates them
TOKENS = [(" apple", -0.9), (" pear", -2.1), (",", -0.2), (" plum", -3.4), (" and", -1.2), (" fig", -2.8)]
# the distribution at each generated position (the greedy token first)
TOPS = [{t: lp, " x": lp - 0.5, " y": lp - 1.0} for t, lp in TOKENS]


def _generated() -> list[Generated]:
    out, pos = [], len(SEED)
    for k, (text, lp) in enumerate(TOKENS):
        out.append(Generated(text, pos, lp, dict(TOPS[k]), prompt_tokens=2 + k))
        pos += len(text)
    return out


def _echo(values: list[float | None]) -> dict[str, Any]:
    """The echo of SEED + generated text: 2 seed tokens, the 6 generated ones, one new token (max_tokens=1)."""
    tokens = ["Seed", ": "] + [t for t, _ in TOKENS] + [" kiwi"]
    offsets, pos = [], 0
    for tok in tokens:
        offsets.append(pos)
        pos += len(tok)
    return {"text": "".join(tokens), "logprobs": {"tokens": tokens, "token_logprobs": values,
                                                  "text_offset": offsets, "top_logprobs": None}}


TRUE = [None, -4.0] + [lp for _, lp in TOKENS] + [-0.7]


def test_a_correct_echo_is_aligned() -> None:
    found = judge_alignment(_generated(), _echo(list(TRUE)))
    assert (found.verdict, found.shift, found.positions) == ("aligned", 0, 6) and found.trusted
    assert found.max_error == 0 and found.detail == ""


def test_small_kernel_noise_is_tolerated_but_a_real_difference_is_not() -> None:
    noisy = [None if v is None else v + 0.01 for v in TRUE]
    assert judge_alignment(_generated(), _echo(noisy)).verdict == "aligned"
    wrong = [None if v is None else v * 1.5 for v in TRUE]
    found = judge_alignment(_generated(), _echo(wrong))
    assert found.verdict == "misaligned" and not found.trusted and "no constant shift" in found.detail


@pytest.mark.parametrize("shift", [1, -1])
def test_a_constant_shift_is_found_with_its_direction_and_undone(shift: int) -> None:
    echo = shift_echo({"choices": [_echo(list(TRUE))]}, shift)["choices"][0]
    found = judge_alignment(_generated(), echo)
    assert (found.verdict, found.shift) == ("shifted", shift) and found.trusted
    assert ("later" if shift > 0 else "earlier") in found.direction()
    assert realign(echo, found.shift)["logprobs"]["token_logprobs"][2:8] == TRUE[2:8]


def test_a_shift_by_two_is_not_corrected() -> None:
    echo = shift_echo({"choices": [_echo(list(TRUE))]}, 2)["choices"][0]
    assert judge_alignment(_generated(), echo).verdict == "misaligned"


def test_logits_read_one_position_late_are_named_and_refused() -> None:
    # token j scored with the distribution that predicts token j+1 (the classic off-by-one in a scorer)
    tops = [dict(t) for t in TOPS]
    for k in range(1, 6):  # make each token a listed alternative of the following position
        tops[k][TOKENS[k - 1][0]] = TOKENS[k - 1][1] - 0.25
    gen = [Generated(g.text, g.offset, g.logprob, tops[k], g.prompt_tokens) for k, g in enumerate(_generated())]
    late: list[float | None] = [None, None] + [tops[k + 1][TOKENS[k][0]] for k in range(5)] + [None, None]
    found = judge_alignment(gen, _echo(late))
    assert found.verdict == "next-distribution" and not found.trusted


def test_too_few_comparable_positions_is_inconclusive() -> None:
    found = judge_alignment(_generated()[:2], _echo(list(TRUE)))
    assert found.verdict == "inconclusive" and not found.trusted


def test_a_reply_without_echoed_logprobs_is_no_echo() -> None:
    assert judge_alignment(_generated(), {"text": "x", "logprobs": None}).verdict == "no-echo"


def test_positions_tokenised_differently_from_the_generation_are_not_compared() -> None:
    gen = _generated()
    moved = [Generated(g.text, g.offset, g.logprob, g.top, g.prompt_tokens + (5 if k == 3 else 0))
             for k, g in enumerate(gen)]
    wrong = list(TRUE)
    wrong[5] = -9.0  # the position whose context was tokenised differently: not evidence of misalignment
    found = judge_alignment(moved, _echo(wrong))
    assert found.verdict == "aligned" and found.positions == 5


def test_round_trip_through_the_verdict_cache_format() -> None:
    found = judge_alignment(_generated(), shift_echo({"choices": [_echo(list(TRUE))]}, 1)["choices"][0])
    assert Alignment.from_dict(found.as_dict()) == found
    with pytest.raises(ValueError):
        Alignment.from_dict({"verdict": "maybe"})


def test_generated_step_reads_the_first_token() -> None:
    reply = {"choices": [{"index": 0, "text": "\ufffd", "logprobs": {"tokens": ["bytes:\\xe4"],
                                                                     "token_logprobs": [-1.0]}}]}
    assert generated_step(reply, 3) is None  # a byte piece does not spell the text: not comparable
    reply = {"choices": [{"index": 0, "text": " A", "logprobs": {"tokens": [" A"], "token_logprobs": [None]}}]}
    assert generated_step(reply, 3) is None


def test_realigned_scores_equal_the_true_ones() -> None:
    truth = _echo(list(TRUE))
    shifted = shift_echo({"choices": [_echo(list(TRUE))]}, 1)["choices"][0]
    context_len = len("Seed:  apple pear")
    prompt_len = len(truth["text"]) - len(" kiwi")
    want = continuation_result(truth, context_len=context_len, prompt_len=prompt_len).logprob
    assert want == pytest.approx(sum(lp for _, lp in TOKENS[2:]))
    assert continuation_result(shifted, context_len=context_len, prompt_len=prompt_len).logprob != want
    got = continuation_result(realign(shifted, 1), context_len=context_len, prompt_len=prompt_len).logprob
    assert math.isclose(got, want)


def test_offsets_must_cover_the_text() -> None:
    echo = _echo(list(TRUE))
    text = echo["text"][:-len(" kiwi")]
    assert offsets_problem(echo, text) is None
    bad = {"logprobs": {**echo["logprobs"], "text_offset": [0, 4, 6, 12, 16, 18, 23, 27, 31]}}
    assert "expected 17" in (offsets_problem(bad, text) or "")
    assert "missing" in (offsets_problem({"logprobs": {**echo["logprobs"], "text_offset": None}}, text) or "")
    short = {"logprobs": {"tokens": ["Seed"], "text_offset": [0], "token_logprobs": [None]}}
    assert "cover 4 of" in (offsets_problem(short, text) or "")
