"""The judge-bias report of a judged run: position bias, length bias and self-preference.

Every figure is computed from the judge's own verdicts in this run (each presentation order of each vote is
one verdict), so it describes the judge a user actually ran:

- **position** (pairwise): `first_position_rate`, the share of decisive verdicts (not ties) that chose the
  answer shown first (0.5 = no position bias; MT-Bench's GPT-4 judge: 0.526); `flip_rate`, the share of votes
  whose verdict changed when the order was swapped (both orders valid; GPT-4: 0.129), and `reversal_rate`,
  the share where the winner itself swapped. Listwise: `first_position_rate`, the share of rankings that put
  the answer shown first on top (a top tie of k answers counts 1/k), beside `chance` (the mean of 1/N), and
  `earlier_preferred_rate`, over all pairs of answers with different ranks, the share where the one shown
  earlier was ranked better (0.5 = none).
- **length** (answer length in characters of the graded turn): pairwise and listwise,
  `longer_preferred_rate` = P(the longer answer is preferred) over decisive comparisons of answers of
  different length (0.5 = none; GPT-4 on MT-Bench: 0.68); single grading, `spearman` = Spearman's ρ of the
  rating with the answer length.
- **self_preference**, where a judge model is also one of the judged models (its name, without backend prefix,
  path or `[mode]`/`#k` suffix, equals a model's name): single, the mean rating it gives its own model vs the
  others (`own`, `others`, `delta`); pairwise, its own model's win rate; listwise, its own model's mean rank
  and first-place share vs the others'. Where other judges rated the same items, `own_by_other_judges` gives
  their figure for the same model: the difference is the self-preference.

Examples:
    >>> judge_base_name("openai:gpt-4[generate]"), judge_base_name("hf:/models/Qwen2-7B#2")
    ('gpt-4', 'qwen2-7b')
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from evalkit.judges._listwise import ranks_of
from evalkit.judges._records import Attempt, JudgeItem

__all__ = ["bias_report", "judge_base_name", "length_bias", "position_bias", "self_preference"]


def judge_base_name(judge: str) -> str:
    """The model name inside a judge label: no backend prefix, folder, file suffix (a script or GGUF file is
    named after its model), `[mode]` or `#k` suffix; lowercase."""
    name = judge.split("[", 1)[0].split("#", 1)[0]
    name = name.split(":", 1)[1] if ":" in name else name
    name = name.rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"\.(gguf|ya?ml|json)$", "", name, flags=re.IGNORECASE).lower()


def _rate(hits: Sequence[float]) -> float | None:
    return round(sum(hits) / len(hits), 4) if hits else None


def _length(item: JudgeItem, index: int) -> int:
    return len(item.answers[index][-1])


def _pairwise_parts(judged: Sequence[Any]) -> list[tuple[JudgeItem, Attempt]]:
    return [(j.item, p) for j in judged if j.item.pairwise for v in j.votes for p in v.parts if p.value is not None]


def _listwise_parts(judged: Sequence[Any]) -> list[tuple[JudgeItem, Attempt]]:
    return [(j.item, p) for j in judged if j.item.listwise for v in j.votes for p in v.parts if p.value is not None]


def position_bias(judged: Sequence[Any]) -> dict[str, Any] | None:
    """Position figures of the pairwise or listwise verdicts (None when the run has neither)."""
    pairs = _pairwise_parts(judged)
    if pairs:
        decisive = [(item, p) for item, p in pairs if p.value != "tie"]
        first = [float((p.order == "AB") == (p.value == "A")) for _, p in decisive]
        both = [v for j in judged if j.item.pairwise for v in j.votes
                if len(v.parts) == 2 and all(p.value is not None for p in v.parts)]
        flips = [float(v.parts[0].value != v.parts[1].value) for v in both]
        reversals = [float({str(p.value) for p in v.parts} == {"A", "B"}) for v in both]
        return {"verdicts": len(pairs), "decisive": len(decisive), "first_position_rate": _rate(first),
                "tie_rate": _rate([float(p.value == "tie") for _, p in pairs]), "swapped_votes": len(both),
                "flip_rate": _rate(flips), "reversal_rate": _rate(reversals)}
    lists = _listwise_parts(judged)
    if not lists:
        return None
    first, chance, earlier = [], [], []
    for _, p in lists:
        ranks = ranks_of(str(p.value))
        shown = [int(i) for i in p.order.split(",")]
        top = min(ranks)
        tied = sum(r == top for r in ranks)
        first.append(1.0 / tied if ranks[shown[0]] == top else 0.0)
        chance.append(1.0 / len(ranks))
        for a in range(len(shown)):
            for b in range(a + 1, len(shown)):
                if ranks[shown[a]] != ranks[shown[b]]:
                    earlier.append(float(ranks[shown[a]] < ranks[shown[b]]))
    return {"verdicts": len(lists), "first_position_rate": _rate(first), "chance": _rate(chance),
            "earlier_preferred_rate": _rate(earlier), "compared_pairs": len(earlier)}


def _spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    from scipy.stats import spearmanr

    rho = float(spearmanr(x, y).statistic)
    return None if math.isnan(rho) else round(rho, 4)


def length_bias(judged: Sequence[Any]) -> dict[str, Any] | None:
    """Length figures: P(longer preferred) for pairwise/listwise, Spearman ρ(rating, length) for single."""
    pairs = _pairwise_parts(judged)
    if pairs:
        longer = [float((p.value == "A") == (_length(item, 0) > _length(item, 1))) for item, p in pairs
                  if p.value != "tie" and _length(item, 0) != _length(item, 1)]
        return {"unit": "characters", "comparisons": len(longer), "longer_preferred_rate": _rate(longer)}
    lists = _listwise_parts(judged)
    if lists:
        longer = []
        for item, p in lists:
            ranks = ranks_of(str(p.value))
            for a in range(len(ranks)):
                for b in range(a + 1, len(ranks)):
                    la, lb = _length(item, a), _length(item, b)
                    if ranks[a] != ranks[b] and la != lb:
                        longer.append(float((ranks[a] < ranks[b]) == (la > lb)))
        return {"unit": "characters", "comparisons": len(longer), "longer_preferred_rate": _rate(longer)}
    singles = [(float(p.value), float(_length(j.item, 0))) for j in judged if len(j.item.models) == 1
               for v in j.votes for p in v.parts if isinstance(p.value, (int, float))]
    if not singles:
        return None
    return {"unit": "characters", "ratings": len(singles),
            "spearman": _spearman([s for s, _ in singles], [n for _, n in singles])}


def _own_figures(judged: Sequence[Any], votes_of: Any, own: str) -> dict[str, float | None]:
    """Single: mean rating own vs others; pairwise: own win rate; listwise: mean rank and first places."""
    own_vals: list[float] = []
    other_vals: list[float] = []
    own_first: list[float] = []
    for j in judged:
        models = [m.lower() for m in j.item.models]
        for v in votes_of(j):
            if not v.valid:
                continue
            if j.item.listwise:
                ranks = ranks_of(str(v.value))
                for m, r in zip(models, ranks):
                    (own_vals if m == own else other_vals).append(r)
                    if m == own:
                        own_first.append(float(r == min(ranks)))
            elif j.item.pairwise and own in models:
                pref = float(v.numeric) if v.numeric is not None else 0.5
                own_vals.append(pref if models[0] == own else 1.0 - pref)
            elif len(models) == 1 and v.numeric is not None:
                (own_vals if models[0] == own else other_vals).append(float(v.numeric))
    out: dict[str, float | None] = {"own": _rate(own_vals), "n_own": len(own_vals)}
    if other_vals:
        out["others"] = _rate(other_vals)
        if out["own"] is not None:
            out["delta"] = round(float(out["own"]) - float(out["others"] or 0.0), 4)
    if own_first:
        out["own_first_place_rate"] = _rate(own_first)
    return out


def self_preference(judged: Sequence[Any]) -> dict[str, Any] | None:
    """Per judge that is also a judged model: how it rates its own model (None when no judge is)."""
    judges = sorted({v.judge for j in judged for v in j.votes})
    models = {m.lower() for j in judged for m in j.item.models}
    kind = "listwise" if any(j.item.listwise for j in judged) else (
        "pairwise" if any(j.item.pairwise for j in judged) else "single")
    measure = {"single": "mean rating", "pairwise": "win rate (ties half)", "listwise": "mean rank (1 = best)"}[kind]
    out: dict[str, Any] = {}
    for judge in judges:
        own = judge_base_name(judge)
        if own not in models:
            continue
        entry: dict[str, Any] = {"model": own, "measure": measure,
                                 **_own_figures(judged, lambda j, name=judge: [v for v in j.votes if v.judge == name], own)}
        others = _own_figures(judged, lambda j, name=judge: [v for v in j.votes if v.judge != name], own)
        if others["n_own"]:
            entry["own_by_other_judges"] = others["own"]
        out[judge] = entry
    return out or None


def bias_report(judged: Sequence[Any]) -> dict[str, Any]:
    """Position bias, length bias and self-preference of a judged run (`JudgedItem`s), for results.json.

    Keys are present only where they apply (no position figures for single grading, no self-preference
    unless a judge model is among the judged models).
    """
    out: dict[str, Any] = {}
    for key, figures in (("position", position_bias(judged)), ("length", length_bias(judged)),
                         ("self_preference", self_preference(judged))):
        if figures is not None:
            out[key] = figures
    return out
