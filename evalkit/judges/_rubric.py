"""Rubric verdicts: one rating per aspect, each on its own scale.

A rubric judge (a `single` judge definition with `aspects:`) answers with either a JSON object
(`{"accuracy": 4, "clarity": 5}`; the last object in the text that parses wins) or one `aspect: [[n]]` per
aspect (the last one of each aspect wins). Aspect names match case-insensitively.

Every aspect is read and range-checked on its own: an aspect that is missing, not a number, or off its scale is
left out of that judgment (and named in `error`), never counted as 0. The judgment's value is the weighted mean
of its valid aspects; with no valid aspect the judgment is invalid (retried, then left out).

Examples:
    >>> from evalkit.judges._spec import Aspect
    >>> rubric = (Aspect(name="accuracy", scale=(1, 5)), Aspect(name="clarity", scale=(1, 5)))
    >>> v = parse_rubric('{"accuracy": 4, "clarity": 9}', rubric)
    >>> v.value, v.aspects, v.error
    (4.0, {'accuracy': 4.0}, 'aspect clarity: rating 9 outside 1..5')
    >>> parse_rubric("Accuracy: [[2]]\\nClarity: [[4]]", rubric).value
    3.0
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from evalkit.judges._parse import ParsedVerdict

__all__ = ["parse_rubric", "weighted_overall"]

_OBJECT = re.compile(r"\{[^{}]*\}")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _json_values(text: str) -> dict[str, Any] | None:
    for match in reversed(list(_OBJECT.finditer(text))):
        try:
            data = orjson.loads(match.group(0))
        except orjson.JSONDecodeError:
            continue
        if isinstance(data, dict):
            return {str(k).strip().lower(): v for k, v in data.items()}
    return None


def _bracket_value(text: str, name: str) -> str | None:
    pattern = re.compile(re.escape(name) + r"[\s*_\"']*[:=]?[\s*]*\[\[\s*([^\]]*?)\s*\]\]", re.IGNORECASE)
    found = pattern.findall(text)
    return found[-1] if found else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value.strip())
    return None


def weighted_overall(values: Mapping[str, float], weights: Mapping[str, float]) -> float | None:
    """The weighted mean of the given aspect values (weights of absent aspects are not counted)."""
    total = sum(weights.get(name, 1.0) for name in values)
    if not values or total <= 0:
        return None
    return sum(v * weights.get(name, 1.0) for name, v in values.items()) / total


def parse_rubric(text: str, aspects: Sequence[Any]) -> ParsedVerdict:
    """Parse a rubric verdict; `aspects` are the definition's `Aspect`s (name, scale, weight)."""
    found = _json_values(text)
    rule = "json" if found is not None else "aspect_brackets"
    values: dict[str, float] = {}
    errors: list[str] = []
    for aspect in aspects:
        raw = found.get(aspect.name.lower()) if found is not None else _bracket_value(text, aspect.name)
        number = _number(raw)
        low, high = aspect.scale
        if raw is None:
            errors.append(f"aspect {aspect.name}: no rating")
        elif number is None:
            errors.append(f"aspect {aspect.name}: '{raw}' is not a number")
        elif not low <= number <= high:
            errors.append(f"aspect {aspect.name}: rating {_fmt(number)} outside {_fmt(low)}..{_fmt(high)}")
        else:
            values[aspect.name] = number
    overall = weighted_overall(values, {a.name: a.weight for a in aspects})
    if overall is None:
        return ParsedVerdict(None, text, None, "; ".join(errors) or "no aspect rated", aspects=None)
    return ParsedVerdict(round(overall, 6), text, rule, "; ".join(errors), aspects=values)
