"""k-sample metrics, calibration and circular evaluation, driven by hand-computed cases
(tests/data/mc_metrics_cases.json)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from evalkit.errors import ConfigError
from evalkit.metrics._calibration import (
    brier_score,
    calibration_metrics,
    expected_calibration_error,
    option_probabilities,
)
from evalkit.metrics._sampling import maj_at_k, majority_letter, mean_at_k, pass_at_k, sampling_metrics
from evalkit.tasks._circular import acc_circular, circular_variants, rotations
from evalkit.tasks.multiple_choice import Question

CASES: dict[str, list[dict[str, Any]]] = json.loads(
    (Path(__file__).parent / "data" / "mc_metrics_cases.json").read_text(encoding="utf-8"))
TOL = 1e-9


@pytest.mark.parametrize("case", CASES["pass_at_k"])
def test_pass_at_k_known_values(case: dict[str, Any]) -> None:
    got = pass_at_k(case["n"], case["c"], case["k"])
    assert got == pytest.approx(case["expected"], abs=TOL)
    exact = 1.0 if case["n"] - case["c"] < case["k"] else \
        1 - math.comb(case["n"] - case["c"], case["k"]) / math.comb(case["n"], case["k"])
    assert got == pytest.approx(exact, abs=TOL)  # the product form equals the binomial definition


def test_pass_at_k_stays_finite_where_binomials_overflow_floats() -> None:
    value = pass_at_k(5000, 3, 1000)
    assert 0.0 < value < 1.0 and math.isfinite(value)
    assert value == pytest.approx(1 - (4000 * 3999 * 3998) / (5000 * 4999 * 4998), abs=1e-12)
    with pytest.raises(ValueError, match="1 <= k <= n"):
        pass_at_k(3, 1, 4)


@pytest.mark.parametrize("case", CASES["majority"])
def test_majority_tie_rule(case: dict[str, Any]) -> None:
    assert majority_letter(case["letters"]) == case["expected"]


@pytest.mark.parametrize("case", CASES["sampling"])
def test_sampling_metrics(case: dict[str, Any]) -> None:
    got = sampling_metrics(case["samples"], case["targets"])
    for key, value in case["expected"].items():
        assert got[key] == pytest.approx(value, abs=TOL), key
    k = len(case["samples"][0])
    assert maj_at_k(case["samples"], case["targets"])[0] == pytest.approx(got[f"maj@{k}"])
    assert mean_at_k(case["samples"], case["targets"])[0] == pytest.approx(got[f"mean@{k}"])


@pytest.mark.parametrize("case", CASES["ece"])
def test_expected_calibration_error_equal_mass(case: dict[str, Any]) -> None:
    got = expected_calibration_error(case["confidences"], case["correct"], case["bins"])
    assert got == pytest.approx(case["expected"], abs=TOL)


@pytest.mark.parametrize("case", CASES["brier"])
def test_brier(case: dict[str, Any]) -> None:
    assert brier_score(case["probabilities"], case["targets"]) == pytest.approx(case["expected"], abs=TOL)


@pytest.mark.parametrize("case", CASES["calibration"])
def test_calibration_from_choice_logprobs(case: dict[str, Any]) -> None:
    got = calibration_metrics(case["choice_logprobs"], case["targets"])
    assert got == pytest.approx(case["expected"], abs=TOL)


def test_softmax_is_stable_for_very_negative_loglikelihoods() -> None:
    probs = option_probabilities([-1000.0, -1001.0])
    assert sum(probs) == pytest.approx(1.0) and probs[0] == pytest.approx(1 / (1 + math.exp(-1)))
    assert math.isnan(expected_calibration_error([], []))


def test_rotations_follow_circular_eval() -> None:
    turns = rotations(["甲", "乙", "丙", "丁"], "C")
    assert [t[0] for t in turns] == [("甲", "乙", "丙", "丁"), ("乙", "丙", "丁", "甲"), ("丙", "丁", "甲", "乙"),
                                     ("丁", "甲", "乙", "丙")]
    assert [t[1] for t in turns] == ["C", "B", "A", "D"]
    for options, answer in turns:  # the correct text stays the correct text
        assert options["ABCD".index(answer)] == "丙"
    assert acc_circular([[True] * 4, [True, True, False, True], [False] * 4])[0] == pytest.approx(1 / 3)


def test_rotations_refuse_non_letter_options() -> None:
    with pytest.raises(ConfigError, match=r"--task-args circular=true: fineval's options are labelled 1/2/3"):
        rotations(["x", "y", "z"], "1", ["1", "2", "3"], task="fineval")
    with pytest.raises(ConfigError, match="fix the row"):
        rotations(["x", "y"], "C", "AB")


def test_circular_variants_of_a_multiple_choice_question() -> None:
    question = Question(7, "哪个是丙？", ("甲", "乙", "丙", "丁"), "C", {"id": "7"})
    variants = circular_variants(question, "ABCD")
    assert variants[0] == question
    assert [v.answer for v in variants] == ["C", "B", "A", "D"]
    assert all(v.options["ABCD".index(v.answer)] == "丙" and v.doc_index == 7 and v.raw == {"id": "7"}
               for v in variants)
