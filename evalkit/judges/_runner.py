"""From answers to judged samples: plan the items, build the judges of a `JudgeConfig`, judge, write rows.

Used by `evalkit judge --answers DIR` and by the MT-Bench task kind.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.backends._protocol import Backend
from evalkit.errors import ConfigError, DataError
from evalkit.judges._judge import GenerativeJudge, Scorer, build_conversation, orders_of
from evalkit.judges._records import JudgeItem, Vote
from evalkit.judges._spec import JudgeConfig, JudgeDefinition
from evalkit.judges._vote import Reduced, Voting, vote
from evalkit.tasks._mtbench_data import Question, answer_questions, load_references

__all__ = ["JudgedItem", "build_items", "build_scorer", "judge_items", "plan_calls", "reference_answers",
           "sample_row"]

BackendFactory = Callable[[str, dict[str, str]], Backend]


@dataclass(frozen=True)
class JudgedItem:
    """An item with its reduced outcome and all its votes."""

    item: JudgeItem
    reduced: Reduced
    votes: tuple[Vote, ...]


def reference_answers(definition: JudgeDefinition, questions: Sequence[Question], data_dir: Path | None, *,
                      backend_factory: BackendFactory | None = None, args: Mapping[str, str] | None = None,
                      warn: Callable[[str], None] = lambda m: None,
                      record_file: Callable[[Path], None] = lambda path: None) -> dict[str, tuple[str, ...]]:
    """Reference answers for the questions of the reference categories, per the definition's policy.

    `record_file` is called with each reference file read (a task passes `ctx.record_file`).
    """
    policy = definition.reference
    needing = [q for q in questions if q.category in policy.categories]
    if policy.source == "none" or not needing:
        return {}
    if policy.source == "model":
        if not policy.model:
            raise ConfigError(f"{definition.source_file}: reference.source is 'model' but reference.model is empty")
        from evalkit.backends._registry import load_backend

        backend = (backend_factory or load_backend)(policy.model, dict(args or {}))
        temps = {q.category: 0.0 for q in needing}
        return answer_questions(backend, needing, temperatures=temps, max_tokens=definition.max_tokens)
    refs = load_references(data_dir, list(questions), policy.file, record_file=record_file)
    missing = [q.question_id for q in needing if q.question_id not in refs]
    if missing:
        warn(f"no reference answer for {len(missing)} question(s) of categories {', '.join(policy.categories)} "
             f"(e.g. {missing[0]}); they are judged with the general prompt")
    return refs


def _pairs(models: Sequence[str], baseline: str | None) -> list[tuple[str, str]]:
    if baseline is None:
        return list(itertools.combinations(sorted(models), 2))
    if baseline not in models:
        raise DataError(f"baseline '{baseline}' has no answers; answer files hold: {', '.join(sorted(models))}")
    return [(m, baseline) for m in sorted(models) if m != baseline]


def build_items(definition: JudgeDefinition, questions: Sequence[Question],
                answers: Mapping[str, Mapping[str, tuple[str, ...]]], *,
                references: Mapping[str, tuple[str, ...]] | None = None, baseline: str | None = None,
                turns: Sequence[int] = (1, 2)) -> list[JudgeItem]:
    """Items to judge: every (model or model pair) × question × turn that has answers.

    Single grading judges each model; pairwise judges each model against `baseline`, or every pair when no
    baseline is given (both orders are judged inside the judge).
    """
    refs = references or {}
    listwise = definition.type == "listwise"
    groups: list[tuple[str, ...]]
    if listwise:
        from evalkit.judges._listwise import check_listwise_models

        check_listwise_models(sorted(answers), definition.name)
        groups = [tuple(sorted(answers))]
    elif definition.type == "single":
        groups = [(m,) for m in sorted(answers)]
    else:
        groups = list(_pairs(list(answers), baseline))
    items = []
    for q in questions:
        ref = refs.get(q.question_id, ()) if q.category in definition.reference.categories else ()
        for turn in turns:
            if turn > len(q.turns):
                continue
            for models in groups:
                shown = [answers[m].get(q.question_id, ()) for m in models]
                if any(len(a) < turn for a in shown):
                    continue
                items.append(JudgeItem(q.question_id, q.category, turn, q.turns[:turn], models,
                                       tuple(a[:turn] for a in shown), ref[:turn] if len(ref) >= turn else (),
                                       listwise=listwise))
    return items


def _cached(factory: BackendFactory, path: Path) -> BackendFactory:
    """Wrap every judge backend in the response cache (votes stay distinct: sampled calls carry their index)."""

    def build(spec: str, args: dict[str, str]) -> Backend:
        from evalkit.store._cache import CachedBackend

        return CachedBackend(factory(spec, args), path)

    return build


def build_scorer(config: JudgeConfig, definition: JudgeDefinition, *, data_dir: Path | None = None, seed: int = 0,
                 backend_factory: BackendFactory | None = None) -> Voting:
    """The judges of a run (one per --judge-model, each with --judge-votes samples) as a voting panel."""
    if config.votes < 1:
        raise ConfigError(f"--judge-votes must be at least 1 (got {config.votes})")
    if backend_factory is None:
        from evalkit.backends._registry import load_backend

        backend_factory = load_backend
    if config.cache:
        backend_factory = _cached(backend_factory, Path(config.cache))
    judges: list[Scorer] = []
    seen: dict[str, int] = {}
    modes = config.modes or (definition.mode,)
    for spec in config.model_specs(definition):
        seen[spec] = seen.get(spec, 0) + 1
        name = spec if seen[spec] == 1 else f"{spec}#{seen[spec]}"
        backend = backend_factory(spec, dict(config.args))
        for mode in modes:
            label = name if len(modes) == 1 else f"{name}[{mode}]"
            if mode == "probability" and definition.type == "listwise":
                from evalkit.judges._listwise_probability import ListwiseProbabilityJudge

                judges.append(ListwiseProbabilityJudge(definition, backend, name=label, votes=config.votes,
                                                       seed=seed, data_dir=data_dir))
            elif mode == "probability" and definition.aspects:
                from evalkit.judges._rubric_probability import RubricProbabilityJudge

                judges.append(RubricProbabilityJudge(definition, backend, name=label, votes=config.votes, seed=seed,
                                                     data_dir=data_dir))
            elif definition.type == "listwise":
                from evalkit.judges._listwise import ListwiseJudge

                judges.append(ListwiseJudge(definition, backend, name=label, votes=config.votes, seed=seed,
                                            data_dir=data_dir))
            elif mode == "probability":
                from evalkit.judges._probability import ProbabilityJudge

                judges.append(ProbabilityJudge(definition, backend, name=label, votes=config.votes, seed=seed,
                                               data_dir=data_dir))
            else:
                judges.append(GenerativeJudge(definition, backend, name=label, votes=config.votes, seed=seed,
                                              data_dir=data_dir))
    return vote(judges, config.reducer)


def judge_items(scorer: Voting, items: Sequence[JudgeItem], *, batch: int = 64,
                on_batch: Callable[[list[JudgedItem]], None] = lambda done: None) -> list[JudgedItem]:
    """Judge items in batches (so a sink can write each finished batch) and keep every vote."""
    out: list[JudgedItem] = []
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        done = [JudgedItem(item, reduced, tuple(votes)) for item, (reduced, votes) in zip(chunk, scorer.score(chunk))]
        on_batch(done)
        out.extend(done)
    return out


def sample_row(judged: JudgedItem, *, doc_index: int | None = None, definition: JudgeDefinition | None = None,
               data_dir: Path | None = None) -> dict[str, Any]:
    """One samples/<task>.jsonl row: the item, the reduced score, the raw responses and every vote."""
    item, reduced = judged.item, judged.reduced
    responses: list[str] = []
    votes = []
    for v in judged.votes:
        d = v.as_dict()
        for part in d["parts"]:
            failed = part.pop("earlier", [])
            if failed:
                part["failed_responses"] = list(range(len(responses), len(responses) + len(failed)))
                responses.extend(failed)
            responses.append(part.pop("raw"))
            part["response"] = len(responses) - 1
        votes.append(d)
    row: dict[str, Any] = {
        "id": item.key, "subset": item.category, "doc_index": doc_index, "question_id": item.question_id,
        "turn": item.turn, "models": list(item.models), "prompt": item.questions[-1],
        "prediction": item.answers[0][-1] if not item.pairwise else None, "target": item.references[-1:] or None,
        "score": reduced.value, "valid": reduced.value is not None, "valid_votes": reduced.valid_votes,
        "responses": responses, "votes": votes,
    }
    if item.pairwise or item.listwise:
        row["verdict"] = reduced.verdict
        row["answers"] = {m: a[-1] for m, a in zip(item.models, item.answers)}
    if item.listwise:
        row["prediction"] = None
        row["valid"] = reduced.valid
        row["ranks"] = dict(zip(item.models, reduced.ranks)) if reduced.ranks is not None else None
    aspects = _aspect_means(judged.votes)
    if aspects:
        row["aspects"] = aspects
    if definition is not None:
        if item.listwise:  # the prompt of the first vote (each vote has its own shuffled order)
            from evalkit.judges._listwise import listwise_conversation

            order = str(judged.votes[0].parts[0].order) if judged.votes else ",".join(map(str, range(len(item.models))))
            row["judge_prompt"] = listwise_conversation(definition, item, order, data_dir)[-1].content
        else:
            row["judge_prompt"] = build_conversation(definition, item, orders_of(item)[0], data_dir)[-1].content
    return row


def _aspect_means(votes: Sequence[Vote]) -> dict[str, float]:
    """A rubric item's mean rating per aspect over the votes that gave that aspect validly."""
    values: dict[str, list[float]] = {}
    for v in votes:
        for part in v.parts:
            for name, value in (part.aspects or {}).items():
                values.setdefault(name, []).append(value)
    return {name: round(sum(vals) / len(vals), 4) for name, vals in values.items()}


def plan_calls(config: JudgeConfig, definition: JudgeDefinition, items: Sequence[JudgeItem]) -> dict[str, int]:
    """How many judge calls a run will make (for --dry-run), without building any backend.

    `calls` counts one generation (or one scoring pass in probability mode) per item, presentation order,
    vote and judge model; `max_calls` adds every allowed retry (generative mode only).
    """
    votes = config.votes
    if definition.mode == "probability" and definition.probability.rationale_tokens <= 0 and definition.type != "listwise":
        votes = 1
    judges = len(config.models) if config.models else 1
    per_judge = sum(len(orders_of(item)) for item in items) * votes
    calls = per_judge * judges
    retries = calls * definition.max_retries if definition.mode == "generate" else 0
    return {"items": len(items), "judges": judges, "votes": votes, "calls": calls, "max_calls": calls + retries}
