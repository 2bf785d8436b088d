"""Agreement statistics for judges, votes and human labels.

- percent agreement, with ties and without (items where either rater said "tie" dropped, as in the
  MT-Bench paper's "w/o tie" columns);
- Cohen's κ for two raters (scikit-learn `cohen_kappa_score`, unweighted);
- Fleiss' κ for three or more raters (statsmodels `fleiss_kappa` on items every rater labelled);
- position consistency of pairwise votes (both presentation orders gave the same verdict).

Ratings are compared as labels after rounding to integers (κ on discretised scores).

Examples:
    >>> percent_agreement(["A", "B", "tie"], ["A", "A", "tie"])
    0.6666666666666666
    >>> percent_agreement(["A", "B", "tie"], ["A", "A", "tie"], ignore_ties=True)
    0.5
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from evalkit.errors import MissingDependency
from evalkit.judges._records import Vote

__all__ = [
    "agreement_report",
    "cohen_kappa",
    "fleiss_kappa",
    "label_of",
    "percent_agreement",
    "position_consistency",
]

Label = Hashable


def label_of(value: float | str | None) -> Label | None:
    """The categorical label of a value: ratings rounded to integers, verdicts as they are."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return round(value)


def _paired(a: Sequence[Label | None], b: Sequence[Label | None], ignore_ties: bool) -> list[tuple[Label, Label]]:
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    if ignore_ties:
        pairs = [(x, y) for x, y in pairs if x != "tie" and y != "tie"]
    return pairs


def percent_agreement(a: Sequence[Label | None], b: Sequence[Label | None], *, ignore_ties: bool = False) -> float | None:
    """Share of items (both labelled) on which two raters agree; `None` when no item qualifies."""
    pairs = _paired(a, b, ignore_ties)
    if not pairs:
        return None
    return sum(x == y for x, y in pairs) / len(pairs)


def _finite(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else float(x)


def cohen_kappa(a: Sequence[Label | None], b: Sequence[Label | None]) -> float | None:
    """Cohen's κ of two raters over items both labelled; `None` when undefined (e.g. one label only)."""
    try:
        from sklearn.metrics import cohen_kappa_score
    except ImportError:
        raise MissingDependency("Cohen's kappa", "judges", "sklearn") from None
    pairs = _paired(a, b, False)
    if len(pairs) < 2:
        return None
    x, y = zip(*pairs)
    labels = sorted({str(v) for v in x + y})
    if len(labels) < 2:
        return None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _finite(float(cohen_kappa_score([str(v) for v in x], [str(v) for v in y], labels=labels)))


def fleiss_kappa(table: Sequence[Sequence[Label | None]]) -> float | None:
    """Fleiss' κ of raters over items: `table[i]` holds every rater's label of item i.

    Items with a missing label are dropped (Fleiss' κ needs the same number of raters per item).
    """
    try:
        from statsmodels.stats.inter_rater import aggregate_raters
        from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss
    except ImportError:
        raise MissingDependency("Fleiss' kappa", "judges", "statsmodels") from None
    rows = [[str(v) for v in row] for row in table if row and all(v is not None for v in row)]
    if len(rows) < 2 or len({len(r) for r in rows}) != 1 or len(rows[0]) < 2:
        return None
    categories = sorted({v for row in rows for v in row})
    if len(categories) < 2:
        return None
    index = {c: i for i, c in enumerate(categories)}
    counts, _ = aggregate_raters([[index[v] for v in row] for row in rows], n_cat=len(categories))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _finite(float(sm_fleiss(counts, method="fleiss")))


def position_consistency(votes: Sequence[Vote]) -> float | None:
    """Share of pairwise votes whose two presentation orders agreed (votes with both orders valid)."""
    judged = [v.consistent for v in votes if v.consistent is not None]
    return sum(judged) / len(judged) if judged else None


def agreement_report(raters: Mapping[str, Mapping[str, Label | None]]) -> dict[str, Any]:
    """Agreement between named raters, each a mapping item key → label (None = no valid label).

    Returns percent agreement with and without ties (averaged over rater pairs), Cohen's κ (per pair and
    averaged), Fleiss' κ (all raters, when there are three or more) and the number of shared items.
    """
    names = sorted(raters)
    keys = sorted(set().union(*(set(r) for r in raters.values()))) if raters else []
    if len(names) < 2:
        return {"raters": names, "items": len(keys)}
    pairs: dict[str, Any] = {}
    for x, y in itertools.combinations(names, 2):
        a = [raters[x].get(k) for k in keys]
        b = [raters[y].get(k) for k in keys]
        pairs[f"{x}~{y}"] = {"items": len(_paired(a, b, False)), "percent_agreement": percent_agreement(a, b),
                             "percent_agreement_no_ties": percent_agreement(a, b, ignore_ties=True),
                             "cohen_kappa": cohen_kappa(a, b)}

    def _mean(field: str) -> float | None:
        vals = [p[field] for p in pairs.values() if p[field] is not None]
        return sum(vals) / len(vals) if vals else None

    out: dict[str, Any] = {"raters": names, "items": len(keys),
                           "percent_agreement": _mean("percent_agreement"),
                           "percent_agreement_no_ties": _mean("percent_agreement_no_ties"),
                           "cohen_kappa": _mean("cohen_kappa"), "pairs": pairs}
    if len(names) >= 3:
        out["fleiss_kappa"] = fleiss_kappa([[raters[n].get(k) for n in names] for k in keys])
    return out
