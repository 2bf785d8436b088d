"""Reading a verdict out of a judge's free text.

The rule is FastChat's output format, read strictly: the *last* well-formed verdict wins (judges often quote
the example `[[5]]` from the instructions before giving their own), its value must lie on the scale, and the
raw text is always kept. Anything else is *invalid* — never a score of 0 or -1.

When `fallbacks=True`, a short list of near-miss formats is accepted, each only where it is unambiguous
(one distinct value in the whole text). Every accepted verdict names the rule that produced it, so a run can
count how often each fallback fired:

    rule              single grading                             pairwise
    strict            last ``[[7]]`` / ``[[7.5]]``               last ``[[A]]``, ``[[B]]``, ``[[C]]`` (tie)
    single_bracket    ``[7]`` (FastChat's own second regex)      ``[A]`` / ``[B]`` / ``[C]``
    rating_label      ``Rating: 7`` / ``Rating: **7**`` with     ``verdict: A`` / ``Final verdict: tie``
                      nothing numeric after it
    out_of_ten        ``7/10`` or ``7 out of 10``                (none)

Examples:
    >>> parse_rating("Good answer. Rating: [[8]]").value
    8.0
    >>> parse_rating("Rating: [[11]]").error
    'rating 11 outside 1..10'
    >>> parse_rating("Rating: 6", fallbacks=True).rule
    'rating_label'
    >>> parse_pairwise("B is better. [[B]]").value
    'B'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FALLBACK_RULES", "ParsedVerdict", "parse_pairwise", "parse_rating"]

FALLBACK_RULES = ("single_bracket", "rating_label", "out_of_ten")

_NUM = r"(-?\d+(?:\.\d+)?)"
_STRICT_RATING = re.compile(r"\[\[\s*" + _NUM + r"\s*\]\]")
_SINGLE_BRACKET = re.compile(r"(?<!\[)\[\s*" + _NUM + r"\s*\](?!\])")
_RATING_LABEL = re.compile(r"\brating\b\**\s*(?:is\b|[:=])\s*\**\s*" + _NUM + r"\s*\**", re.IGNORECASE)
_OUT_OF_TEN = re.compile(_NUM + r"\s*(?:/|out of)\s*10\b", re.IGNORECASE)
_ANY_NUMBER = re.compile(r"\d")

_STRICT_PAIR = re.compile(r"\[\[\s*(A|B|C)\s*\]\]")
_GRADED_PAIR = re.compile(r"\[\[\s*(A\s*>>\s*B|A\s*>\s*B|A\s*=\s*B|B\s*>\s*A|B\s*>>\s*A)\s*\]\]")
_SINGLE_BRACKET_PAIR = re.compile(r"(?<!\[)\[\s*(A|B|C)\s*\](?!\])")
_VERDICT_LABEL = re.compile(r"\bverdict\b\**\s*(?:is\b|[:=])\s*\**\s*(?:assistant\s+)?\[?(A|B|C|tie)\b\]?",
                            re.IGNORECASE)
_PAIR_NAMES = {"A": "A", "B": "B", "C": "tie", "TIE": "tie"}
# graded verdicts (Arena-Hard style): the winner and a strength in {1, 2}; A=B is a tie of strength 0
_GRADED = {"A>>B": ("A", 2), "A>B": ("A", 1), "A=B": ("tie", 0), "B>A": ("B", 1), "B>>A": ("B", 2)}


@dataclass(frozen=True)
class ParsedVerdict:
    """One parsed judgment.

    `value` is the rating (float) or the pairwise winner (`"A"`, `"B"` or `"tie"`), `None` when invalid;
    `rule` names the parsing rule that accepted it (`"strict"` or a fallback); `error` says why not.
    `strength` is the graded-verdict margin (1 or 2; 0 for a tie) when graded verdicts are on.
    """

    value: float | str | None
    raw: str
    rule: str | None = None
    error: str = ""
    strength: int | None = None
    aspects: dict[str, float] | None = None  # rubric verdicts: the valid aspects' ratings

    @property
    def valid(self) -> bool:
        return self.value is not None


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _unique(values: list[str]) -> str | None:
    distinct = {float(v) for v in values} if values and _is_num(values[0]) else set(values)
    return values[-1] if len(distinct) == 1 else None


def _is_num(text: str) -> bool:
    return bool(re.fullmatch(_NUM, text))


def _range_checked(raw: str, value: float, low: float, high: float, rule: str) -> ParsedVerdict:
    if not low <= value <= high:
        return ParsedVerdict(None, raw, None, f"rating {_fmt(value)} outside {_fmt(low)}..{_fmt(high)}")
    return ParsedVerdict(value, raw, rule)


def _rating_fallback(text: str) -> tuple[str, str] | None:
    """(number, rule) from the first unambiguous near-miss format, or None."""
    found = _unique(_SINGLE_BRACKET.findall(text))
    if found is not None:
        return found, "single_bracket"
    labels = list(_RATING_LABEL.finditer(text))
    if labels:
        values = [m.group(1) for m in labels]
        tail = text[labels[-1].end():]
        if _unique(values) is not None and not _ANY_NUMBER.search(re.sub(r"^\s*/\s*10\b", "", tail)):
            return values[-1], "rating_label"
    found = _unique(_OUT_OF_TEN.findall(text))
    if found is not None:
        return found, "out_of_ten"
    return None


def parse_rating(text: str, low: float = 1, high: float = 10, *, fallbacks: bool = False) -> ParsedVerdict:
    """Parse a single-answer grade on the scale `low..high`.

    Args:
        text: the judge's whole output.
        low: lowest valid rating (inclusive).
        high: highest valid rating (inclusive).
        fallbacks: also accept the unambiguous near-miss formats listed in the module docstring.

    Returns:
        A `ParsedVerdict` whose `value` is the rating, or `None` with `error` set.
    """
    strict = _STRICT_RATING.findall(text)
    if strict:
        return _range_checked(text, float(strict[-1]), low, high, "strict")
    if fallbacks:
        near = _rating_fallback(text)
        if near is not None:
            return _range_checked(text, float(near[0]), low, high, near[1])
    return ParsedVerdict(None, text, None, "no [[rating]] verdict found")


def parse_pairwise(text: str, *, graded: bool = False, fallbacks: bool = False) -> ParsedVerdict:
    """Parse a pairwise verdict: `[[A]]`, `[[B]]` or `[[C]]` (tie); graded `[[A>>B]]`... when `graded`.

    Args:
        text: the judge's whole output.
        graded: accept Arena-Hard-style graded verdicts (A>>B, A>B, A=B, B>A, B>>A) as well.
        fallbacks: also accept the unambiguous near-miss formats listed in the module docstring.

    Returns:
        A `ParsedVerdict` whose `value` is `"A"`, `"B"` or `"tie"`, or `None` with `error` set.
    """
    hits: list[tuple[int, str, int | None]] = [(m.start(), _PAIR_NAMES[m.group(1)], None)
                                               for m in _STRICT_PAIR.finditer(text)]
    if graded:
        for m in _GRADED_PAIR.finditer(text):
            graded_winner, margin = _GRADED[re.sub(r"\s+", "", m.group(1))]
            hits.append((m.start(), graded_winner, margin))
    if hits:
        _, winner, strength = max(hits, key=lambda h: h[0])
        return ParsedVerdict(winner, text, "strict", strength=strength)
    if fallbacks:
        for pattern, rule in ((_SINGLE_BRACKET_PAIR, "single_bracket"), (_VERDICT_LABEL, "rating_label")):
            names = [_PAIR_NAMES[v.upper()] for v in pattern.findall(text)]
            if names and len(set(names)) == 1:
                return ParsedVerdict(names[0], text, rule)
    return ParsedVerdict(None, text, None, "no [[A]]/[[B]]/[[C]] verdict found")
