"""Run-level numbers from judged items: scores (per model, category, turn), reliability, ranking.

Single grading: a model's score is the mean of its valid reduced item scores (invalid items are counted,
never scored), with a 95 % percentile-bootstrap interval over items. The ranking is a Bradley-Terry fit on
battles derived per question and turn (the higher score wins, equal scores tie).
Pairwise: the ranking is a Bradley-Terry fit on the reduced preferences (ties are half wins).
Listwise: per model the mean rank (95 % bootstrap interval over verdicts) and first-place votes (a model tied
for first counts as first); the ranking is a Bradley-Terry fit on the pairwise outcomes each valid ranking
implies (better rank wins, equal ranks tie).
Rubric judges: per model the mean of each aspect (over the judgments that rated it validly) and `overall`, the
mean of the aspect means, weighted by the definition's aspect weights.
Pairwise against a baseline: also each model's length-controlled win rate (AlpacaEval 2.0's GLM,
`evalkit.judges._lc`) with a bootstrap interval, beside the raw `score_rate`.
Every summary carries the judge-bias report (`evalkit.judges._bias`).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.errors import DataError
from evalkit.judges._agreement import agreement_report, label_of, position_consistency
from evalkit.judges._bias import bias_report
from evalkit.judges._bradley_terry import Battle, bradley_terry
from evalkit.judges._listwise import ranks_of
from evalkit.judges._records import JudgeStats, Vote
from evalkit.judges._runner import JudgedItem
from evalkit.judges._vote import reduce_votes

__all__ = ["battles_of", "human_agreement", "listwise_table", "mean_with_ci", "reliability", "score_table",
           "summarize"]


def mean_with_ci(values: Sequence[float], *, rounds: int = 1000, seed: int = 0) -> dict[str, float | int | None]:
    """Mean and 95 % percentile-bootstrap interval of the mean."""
    if not values:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    arr = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, len(arr), (rounds, len(arr)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": round(float(arr.mean()), 4), "ci_low": round(float(low), 4), "ci_high": round(float(high), 4),
            "n": len(arr)}


def _aspect_table(rows: Sequence[JudgedItem], weights: Mapping[str, float]) -> dict[str, Any]:
    """Per-aspect means of one model's rubric judgments and their (weighted) overall."""
    values: dict[str, list[float]] = defaultdict(list)
    for j in rows:
        for v in j.votes:
            for part in v.parts:
                for name, value in (part.aspects or {}).items():
                    values[name].append(value)
    means = {name: {"mean": round(sum(vals) / len(vals), 4), "n": len(vals)} for name, vals in values.items()}
    total = sum(weights.get(name, 1.0) for name in means)
    overall = sum(m["mean"] * weights.get(name, 1.0) for name, m in means.items()) / total if total else None
    return {"aspects": means, "overall": None if overall is None else round(overall, 4)}


def score_table(judged: Sequence[JudgedItem],
                aspect_weights: Mapping[str, float] | None = None) -> dict[str, dict[str, Any]]:
    """Single grading: per model the overall, per-turn and per-category mean scores and invalid counts
    (rubric judges, `aspect_weights` given: also per-aspect means and their weighted overall)."""
    by_model: dict[str, list[JudgedItem]] = defaultdict(list)
    for j in judged:
        by_model[j.item.models[0]].append(j)
    table: dict[str, dict[str, Any]] = {}
    for model, rows in sorted(by_model.items()):
        valid = [j for j in rows if j.reduced.value is not None]
        entry: dict[str, Any] = {**mean_with_ci([float(j.reduced.value) for j in valid]),  # type: ignore[arg-type]
                                 "items": len(rows), "invalid": len(rows) - len(valid)}
        for label, key in (("turn", lambda j: f"turn{j.item.turn}"), ("category", lambda j: j.item.category)):
            groups: dict[str, list[float]] = defaultdict(list)
            for j in valid:
                groups[key(j)].append(float(j.reduced.value))  # type: ignore[arg-type]
            entry[f"by_{label}"] = {g: round(sum(v) / len(v), 4) for g, v in sorted(groups.items())}
        if aspect_weights is not None:
            entry.update(_aspect_table(rows, aspect_weights))
        table[model] = entry
    return table


def battles_of(judged: Sequence[JudgedItem]) -> list[Battle]:
    """Battles for Bradley-Terry: pairwise preferences, or single scores compared per question and turn."""
    battles: list[Battle] = []
    by_slot: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
    for j in judged:
        if j.item.listwise:
            battles.extend(_implied_battles(j))
            continue
        if j.reduced.value is None:
            continue
        if j.item.pairwise:
            battles.append((j.item.models[0], j.item.models[1], float(j.reduced.value)))
        else:
            by_slot[(j.item.question_id, j.item.turn)][j.item.models[0]] = float(j.reduced.value)
    for scores in by_slot.values():
        for a, b in itertools.combinations(sorted(scores), 2):
            battles.append((a, b, 1.0 if scores[a] > scores[b] else 0.0 if scores[a] < scores[b] else 0.5))
    return battles


def _implied_battles(judged: JudgedItem) -> list[Battle]:
    """The pairwise outcomes implied by each valid ranking of a listwise item."""
    out: list[Battle] = []
    models = judged.item.models
    for v in judged.votes:
        if not v.valid:
            continue
        ranks = ranks_of(str(v.value))
        for a, b in itertools.combinations(range(len(models)), 2):
            out.append((models[a], models[b], 1.0 if ranks[a] < ranks[b] else 0.0 if ranks[a] > ranks[b] else 0.5))
    return out


def listwise_table(judged: Sequence[JudgedItem], *, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Listwise: per model its mean rank (with a bootstrap interval over verdicts), first-place votes and
    their share, over every valid ranking."""
    ranks: dict[str, list[float]] = defaultdict(list)
    firsts: dict[str, int] = defaultdict(int)
    for j in judged:
        for v in j.votes:
            if not v.valid:
                continue
            vote_ranks = ranks_of(str(v.value))
            for model, rank in zip(j.item.models, vote_ranks):
                ranks[model].append(rank)
                firsts[model] += int(rank == min(vote_ranks))
    table = {}
    for model, values in sorted(ranks.items()):
        ci = mean_with_ci(values, seed=seed)
        table[model] = {"mean_rank": ci["mean"], "mean_rank_ci_low": ci["ci_low"], "mean_rank_ci_high": ci["ci_high"],
                        "first_place": firsts[model], "first_place_rate": round(firsts[model] / len(values), 4),
                        "n": len(values)}
    return table


def length_controlled(judged: Sequence[JudgedItem], baseline: str, *, seed: int = 0,
                      rounds: int = 200) -> dict[str, dict[str, Any]]:
    """Pairwise against a baseline: each model's raw and length-controlled win rate (`evalkit.judges._lc`)."""
    from evalkit.judges._lc import lc_win_rate

    per_model: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for j in judged:
        if j.item.pairwise and j.item.models[1] == baseline and j.reduced.value is not None:
            prefs, diffs = per_model[j.item.models[0]]
            prefs.append(float(j.reduced.value))
            diffs.append(len(j.item.answers[0][-1]) - len(j.item.answers[1][-1]))
    return {m: {k: v for k, v in lc_win_rate(p, d, seed=seed, rounds=rounds).items() if k.startswith("lc_")}
            for m, (p, d) in sorted(per_model.items())}


def _rater_labels(judged: Sequence[JudgedItem], key_of: Any, reducer: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, dict[str, list[Vote]]] = defaultdict(lambda: defaultdict(list))
    for j in judged:
        for v in j.votes:
            groups[key_of(v)][j.item.key].append(v)
    items = {j.item.key: j.item for j in judged}
    out: dict[str, dict[str, Any]] = {}
    for rater, per_item in groups.items():
        out[rater] = {}
        for k, votes in per_item.items():
            red = reduce_votes(items[k], votes, reducer)
            out[rater][k] = label_of(red.verdict if items[k].pairwise or items[k].listwise else red.value)
    return out


def reliability(judged: Sequence[JudgedItem], stats: JudgeStats, judge_stats: Mapping[str, JudgeStats],
                reducer: str) -> dict[str, Any]:
    """Parse/valid rates, fallback counts, position consistency, agreement between votes and judges."""
    votes = [v for j in judged for v in j.votes]
    parts = [p for v in votes for p in v.parts]
    out: dict[str, Any] = {
        "items": len(judged),
        "valid_rate": sum(j.reduced.valid for j in judged) / len(judged) if judged else None,
        "vote_valid_rate": sum(v.valid for v in votes) / len(votes) if votes else None,
        "parse_rate": stats.first_try_parsed / stats.judgments if stats.judgments else None,
        "retries": stats.retries, "rules": dict(sorted(stats.rules.items())),
        "low_confidence": sum(p.low_confidence for p in parts),
        "position_consistency": position_consistency(votes),
        "judges": {name: s.as_dict() for name, s in judge_stats.items()},
    }
    samples = {v.sample for v in votes}
    if len(samples) > 1:
        out["between_votes"] = {
            name: agreement_report(_rater_labels([_only(j, name) for j in judged], lambda v: f"vote{v.sample}",
                                                 reducer))
            for name in judge_stats}
    if len(judge_stats) > 1:
        out["between_judges"] = agreement_report(_rater_labels(judged, lambda v: v.judge, reducer))
    modes = _mode_pairs(judge_stats)
    if modes:  # the same judge model in generative and probability mode (--judge-mode generate,probability)
        out["between_modes"] = {
            model: agreement_report(_rater_labels([_only_judges(j, pair) for j in judged],
                                                  lambda v: v.judge.rsplit("[", 1)[1].rstrip("]"), reducer))
            for model, pair in modes.items()}
    return out


def _mode_pairs(judge_stats: Mapping[str, JudgeStats]) -> dict[str, tuple[str, str]]:
    """Judge names `<model>[generate]` and `<model>[probability]` paired by model."""
    pairs = {}
    for name in judge_stats:
        if name.endswith("[generate]"):
            model = name[:-len("[generate]")]
            if f"{model}[probability]" in judge_stats:
                pairs[model] = (name, f"{model}[probability]")
    return pairs


def _only_judges(j: JudgedItem, judges: tuple[str, ...]) -> JudgedItem:
    return JudgedItem(j.item, j.reduced, tuple(v for v in j.votes if v.judge in judges))


def _only(j: JudgedItem, judge: str) -> JudgedItem:
    return JudgedItem(j.item, j.reduced, tuple(v for v in j.votes if v.judge == judge))


def human_agreement(judged: Sequence[JudgedItem], labels_path: Path) -> dict[str, Any]:
    """Agreement of the reduced judge outcomes with human labels from a JSONL file.

    Rows: `{"question_id", "turn", "model", "score"}` for single grading, or
    `{"question_id", "turn", "model_a", "model_b", "winner": "model_a"|"model_b"|"tie"}` for pairwise
    (the layout of lmsys/mt_bench_human_judgments); several rows per item are several human raters, and
    each is compared with the judge.
    """
    from evalkit.tasks._mtbench_data import read_jsonl

    if not labels_path.is_file():
        raise DataError(f"{labels_path}: no such label file")
    judge_of: dict[tuple[str, int, str, str], Any] = {}
    for j in judged:
        m = j.item.models
        label = label_of(j.reduced.verdict if j.item.pairwise else j.reduced.value)
        judge_of[(j.item.question_id, j.item.turn, m[0], m[1] if len(m) > 1 else "")] = label
    judge_labels: list[Any] = []
    human_labels: list[Any] = []
    flip = {"A": "B", "B": "A", "tie": "tie"}
    for _, row in read_jsonl(labels_path):
        human: Any
        qid, turn = str(row.get("question_id")), int(row.get("turn", 1))
        if "winner" in row:
            human = {"model_a": "A", "model_b": "B"}.get(str(row["winner"]), "tie")
            a, b = str(row["model_a"]), str(row["model_b"])
            if (qid, turn, a, b) not in judge_of and (qid, turn, b, a) in judge_of:
                a, b, human = b, a, flip[human]
            key = (qid, turn, a, b)
        else:
            key, human = (qid, turn, str(row.get("model")), ""), label_of(float(row["score"]))
        if key in judge_of:
            judge_labels.append(judge_of[key])
            human_labels.append(human)
    report = agreement_report({"judge": {str(i): x for i, x in enumerate(judge_labels)},
                               "human": {str(i): x for i, x in enumerate(human_labels)}})
    report["matched_labels"] = len(human_labels)
    return report


def summarize(judged: Sequence[JudgedItem], stats: JudgeStats, judge_stats: Mapping[str, JudgeStats], *,
              reducer: str, kind: str, anchor: str | None = None, seed: int = 0,
              labels: Path | None = None, bootstrap_rounds: int = 200, definition: Any = None) -> dict[str, Any]:
    """Scores, reliability, ranking and the judge-bias report of a judged run, ready for results.json.

    `definition` (the `JudgeDefinition`) supplies rubric aspect weights; without it aspects weigh equally.
    """
    out: dict[str, Any] = {"reliability": reliability(judged, stats, judge_stats, reducer)}
    aspects = getattr(definition, "aspects", ()) or ()
    rubric = bool(aspects) or any(p.aspects for j in judged for v in j.votes for p in v.parts)
    weights = {a.name: a.weight for a in aspects} if rubric else None
    if kind == "single":
        out["scores"] = score_table(judged, weights)
    elif kind == "listwise":
        out["scores"] = listwise_table(judged, seed=seed)
    else:
        wins: dict[str, list[float]] = defaultdict(list)
        for j in judged:
            if j.reduced.value is not None:
                wins[j.item.models[0]].append(float(j.reduced.value))
                wins[j.item.models[1]].append(1.0 - float(j.reduced.value))
        out["scores"] = {m: {"score_rate": round(sum(v) / len(v), 4), "n": len(v)} for m, v in sorted(wins.items())}
        if anchor is not None:
            for model, figures in length_controlled(judged, anchor, seed=seed, rounds=bootstrap_rounds).items():
                out["scores"].setdefault(model, {}).update(figures)
    ranked = bradley_terry(battles_of(judged), anchor=anchor, rounds=bootstrap_rounds, seed=seed)
    out["ranking"] = [r.as_dict() for r in ranked]
    if labels is not None:
        out["reliability"]["human"] = human_agreement(judged, labels)
    out["bias"] = bias_report(judged)
    return out
