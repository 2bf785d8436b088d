"""Option-order robustness: OpenCompass's CircularEval.

Each question is asked under the N cyclic rotations of its options (rotation r shows option (i + r) mod N
in position i, so the correct letter moves from index a to (a - r) mod N); the question counts as correct
under `acc_circular` only if it is answered correctly under every rotation. Rotation 0 is the original order.

Examples:
    >>> [(opts, ans) for opts, ans in rotations(["x", "y", "z"], "A")]
    [(('x', 'y', 'z'), 'A'), (('y', 'z', 'x'), 'C'), (('z', 'x', 'y'), 'B')]
    >>> acc_circular([[True, True, True], [True, False, True]])[0]
    0.5
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, TypeVar

from evalkit.errors import ConfigError
from evalkit.metrics._aggregate import mean_stderr

__all__ = ["acc_circular", "check_letters", "circular_variants", "rotations"]

Q = TypeVar("Q")


def check_letters(letters: Sequence[str], task: str = "this task") -> str:
    """The option labels as a string ("ABCD"); a ConfigError if they are not distinct single letters."""
    labels = [str(x) for x in letters]
    if not labels or any(len(x) != 1 or not ("A" <= x <= "Z") for x in labels) or len(set(labels)) != len(labels):
        raise ConfigError(f"--task-args circular=true: {task}'s options are labelled {'/'.join(labels) or '(none)'},"
                          f" not distinct letters A-Z; drop circular=true for it")
    return "".join(labels)


def rotations(choices: Sequence[str], answer: str, letters: Sequence[str] = "ABCD",
              task: str = "this task") -> list[tuple[tuple[str, ...], str]]:
    """The N cyclic rotations of a question's options, each with its correct letter.

    Args:
        choices: the option texts in their original order (N of them).
        answer: the correct letter in the original order.
        letters: the option labels (the first N are used); must be single letters A-Z.
        task: the task name, for the error message.

    Raises:
        ConfigError: the labels are not letters (circular evaluation is defined on lettered options).
    """
    labels = check_letters(letters, task)[: len(choices)]
    if len(labels) != len(choices) or answer not in labels:
        raise ConfigError(f"--task-args circular=true: {task} has a question with {len(choices)} options and "
                          f"answer {answer!r}, which the labels {'/'.join(labels)} do not cover; fix the row")
    n, correct = len(choices), labels.index(answer)
    return [(tuple(choices[(i + r) % n] for i in range(n)), labels[(correct - r) % n]) for r in range(n)]


def acc_circular(correct_by_rotation: Sequence[Sequence[bool]]) -> tuple[float, float]:
    """Mean and standard error over questions of [correct under every rotation]."""
    return mean_stderr([1.0 if len(r) > 0 and all(r) else 0.0 for r in correct_by_rotation])


def circular_variants(question: Q, letters: Sequence[str], task: str = "this task") -> list[Q]:
    """Copies of a frozen dataclass question (fields `options`, `answer`) under each rotation, rotation 0 first.

    For the loglikelihood path: build each variant's prompt with the same few-shot prefix and score it.

    Examples:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Q:
        ...     options: tuple[str, ...]
        ...     answer: str
        >>> [(v.options, v.answer) for v in circular_variants(Q(("x", "y"), "B"), "AB")]
        [(('x', 'y'), 'B'), (('y', 'x'), 'A')]
    """
    item: Any = question
    return [replace(item, options=opts, answer=ans) for opts, ans in rotations(item.options, item.answer, letters, task)]
