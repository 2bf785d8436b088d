"""Verdict probabilities from per-token `top_logprobs` (API judges), in string space.

An API returns, at each generated position, the likeliest next tokens as text. The verdict options are
strings too ("1" … "10", or "A" / "B" / "C"), closed by a suffix ("]]"). Walking the returned tokens:

- a token that spells a whole option and cannot go on to a longer one ("7", or "7]]") gives that option its
  probability;
- a token that is an option *and* the start of a longer one ("1" of "10") is ambiguous: its mass is split by
  the next position's distribution (`expand`), "0" → "10", "]]" → "1". Where no next distribution can be had,
  the mass goes to the shorter option and is counted as unresolved;
- a token that is only the start of an option is followed the same way; anything else is not a verdict.

So a multi-token verdict is scored over its whole spelling under the server's own tokenizer, and the mass
that was visible (the returned alternatives' total) is recorded next to the mass on valid options.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["VerdictMasses", "option_masses"]

Alternatives = Sequence[tuple[str, float]]


@dataclass(frozen=True)
class VerdictMasses:
    """Raw probability per option, the visible mass at the verdict position, and the unresolved mass."""

    masses: dict[str, float]
    visible: float
    unresolved: float = 0.0

    @property
    def valid(self) -> float:
        return sum(self.masses.values())


def _completed(options: Sequence[str], suffix: str, text: str) -> str | None:
    """The option `text` spells followed by (the start of) the suffix, e.g. "7]" or "10]]"."""
    best = None
    for option in options:
        rest = text[len(option):]
        if text.startswith(option) and rest and (suffix.startswith(rest) or rest.startswith(suffix)):
            best = option if best is None or len(option) > len(best) else best
    return best


def option_masses(options: Sequence[str], suffix: str, top: Alternatives,
                  expand: Callable[[str], Alternatives | None], *, depth: int = 3) -> VerdictMasses:
    """Probability of each option from the alternatives at the verdict position.

    Args:
        options: the verdict strings.
        suffix: what closes a verdict ("]]").
        top: (token text, logprob) alternatives at the first verdict position.
        expand: the alternatives after a given emitted text (relative to the verdict position), or None
            when they cannot be had.
        depth: how many positions deep ambiguous tokens are followed.

    Examples:
        >>> after = {"1": [("0", math.log(0.5)), ("]]", math.log(0.5))]}
        >>> m = option_masses([str(k) for k in range(1, 11)], "]]",
        ...                   [("7", math.log(0.6)), ("1", math.log(0.2)), ("x", math.log(0.1))], after.get)
        >>> {k: round(v, 3) for k, v in m.masses.items() if v}, round(m.visible, 3), round(m.valid, 3)
        ({'1': 0.1, '7': 0.6, '10': 0.1}, 0.9, 0.8)
    """
    masses = {option: 0.0 for option in options}
    unresolved = 0.0

    def walk(emitted: str, alternatives: Alternatives, weight: float, level: int) -> None:
        nonlocal unresolved
        for token, logprob in alternatives:
            text, p = emitted + token, weight * math.exp(logprob)
            done = _completed(options, suffix, text)
            if done is not None:
                masses[done] += p
                continue
            longer = any(o.startswith(text) and o != text for o in options)
            if not longer:
                if text in masses:
                    masses[text] += p
                continue
            following = expand(text) if level < depth else None
            if following is None:
                unresolved += p
                if text in masses:  # "1" that might have become "10": the shorter reading
                    masses[text] += p
                continue
            walk(text, following, p, level + 1)

    walk("", top, 1.0, 1)
    return VerdictMasses(masses, sum(math.exp(lp) for _, lp in top), unresolved)
