"""`evalkit judge --answers DIR`: judge existing FastChat answer files and write a run directory.

    runs/<run_id>/results.json         scores (per model, turn, category), votes, reliability, ranking
    runs/<run_id>/samples/mt_bench.jsonl   one row per judged item, with the raw responses and every vote
    runs/<run_id>/manifest.json        hashes of the judge definition, questions, references and answer files
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError, DataError
from evalkit.judges._aggregate import summarize
from evalkit.judges._runner import (
    BackendFactory,
    build_items,
    build_scorer,
    judge_items,
    plan_calls,
    reference_answers,
    sample_row,
)
from evalkit.judges._spec import JudgeConfig
from evalkit.records import ModelRecord, RunRecord, TaskRecord
from evalkit.tasks import load_model_answers, load_questions

__all__ = ["JudgeRunOptions", "run_judge"]

TASK = "mt_bench"


@dataclass(frozen=True)
class JudgeRunOptions:
    """Options of one `evalkit judge` run (the CLI flags)."""

    answers: Path
    judge: JudgeConfig
    data_dir: Path | None = None
    output: Path = Path("runs")
    models: tuple[str, ...] = ()
    limit: int | None = None
    turns: tuple[int, ...] = (1, 2)
    categories: tuple[str, ...] = ()
    seed: int = 0
    bootstrap_rounds: int = 200
    hub: bool = True
    batch: int = 64
    cache: Path | None = None  # response cache for judge calls (None: no cache)
    echo: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr))


def _select(options: JudgeRunOptions, questions: list[Any]) -> list[Any]:
    if options.categories:
        unknown = set(options.categories) - {q.category for q in questions}
        if unknown:
            raise ConfigError(f"--categories: unknown {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(sorted({q.category for q in questions}))}")
        questions = [q for q in questions if q.category in options.categories]
    return questions[: options.limit] if options.limit else questions


def _manifest(options: JudgeRunOptions, definition_file: str, questions_source: str) -> dict[str, Any]:
    from evalkit.store._rundir import file_sha256

    files = [Path(definition_file), Path(questions_source)]
    files += sorted(options.answers.glob("*.jsonl")) if options.answers.is_dir() else [options.answers]
    from evalkit.runner import package_versions

    hashes = {str(p): file_sha256(p) for p in files if p.is_file()}
    return {"seed": options.seed, "files": hashes, "versions": package_versions()}


def run_judge(options: JudgeRunOptions, *, backend_factory: BackendFactory | None = None) -> Path | None:
    """Judge the answer files; returns the run directory (None for a dry run)."""
    config = options.judge
    definition = config.load_definition()
    if definition.mode == "probability" and config.reducer == "majority" and definition.type == "single":
        options.echo("note: majority over expected scores rounds them to integers first")
    questions = _select(options, load_questions(options.data_dir, hub=options.hub, warn=options.echo))
    answers = load_model_answers(options.answers, list(options.models) or None)
    if definition.type == "pairwise" and len(answers) < 2:
        raise DataError(f"{options.answers}: pairwise judging needs answer files of at least two models")
    if definition.type == "listwise":
        from evalkit.judges._listwise import check_listwise_models

        check_listwise_models(sorted(answers), definition.name)
    refs = reference_answers(definition, questions, options.data_dir, backend_factory=backend_factory,
                             args=config.args, warn=options.echo)
    items = build_items(definition, questions, answers, references=refs, baseline=config.baseline, turns=options.turns)
    if not items:
        raise DataError(f"{options.answers}: no answers match the selected questions (ids, turns)")
    plan = plan_calls(config, definition, items)
    if config.dry_run:
        options.echo(f"dry run: {plan['items']} items x {plan['judges']} judge(s) x {plan['votes']} vote(s) -> "
                     f"{plan['calls']} judge calls (up to {plan['max_calls']} with retries); nothing was called")
        return None
    from evalkit.store._rundir import new_run_id
    from evalkit.store._writer import RunWriter

    if options.cache is not None and not config.cache:
        config = replace(config, cache=str(options.cache))
    scorer = build_scorer(config, definition, data_dir=options.data_dir, seed=options.seed,
                          backend_factory=backend_factory)
    writer = RunWriter(options.output, _record(new_run_id(f"judge-{definition.name}"), options, definition,
                                               questions[0].source if questions else ""))
    sink = writer.samples(TASK, "judged_answers")
    doc_index = {q.question_id: i for i, q in enumerate(questions)}
    started = time.perf_counter()
    judged = judge_items(scorer, items, batch=options.batch, on_batch=lambda done: sink.write(
        [sample_row(j, doc_index=doc_index.get(j.item.question_id)) for j in done]))
    elapsed = time.perf_counter() - started
    summary = summarize(judged, scorer.stats, {j.name: j.stats for j in scorer.judges}, reducer=config.reducer,
                        kind=definition.type, anchor=config.baseline, seed=options.seed,
                        labels=Path(config.labels) if config.labels else None,
                        bootstrap_rounds=options.bootstrap_rounds, definition=definition)
    writer.add_task(TASK, _task_record(summary, plan["items"]), elapsed)
    writer.write_manifest(_manifest(options, definition.source_file, questions[0].source if questions else ""))
    return writer.finish(
        model=writer.record.model.model_copy(update={"models": sorted(summary["scores"])}),
        judge={**config.as_dict(), "name": definition.name, "type": definition.type, "mode": definition.mode,
               "file": definition.source_file, "plan": plan, "cost": scorer.stats.as_dict()},
        scores=summary["scores"], reliability={**summary["reliability"], "bias": summary["bias"]},
        ranking=summary["ranking"],
        votes={"per_item": plan["votes"] * plan["judges"], "reducer": config.reducer,
               "judges": sorted(summary["reliability"]["judges"]), "samples": f"samples/{TASK}.jsonl"},
        timing={TASK: round(elapsed, 3), "total": round(elapsed, 3)})


def _task_record(summary: dict[str, Any], n: int) -> TaskRecord:
    rel = summary["reliability"]
    metrics = {k: rel[k] for k in ("valid_rate", "parse_rate", "position_consistency") if rel.get(k) is not None}
    subtasks = {str(m): {str(k): v for k, v in s.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
                for m, s in summary["scores"].items()}
    return TaskRecord.model_validate({"kind": "judged_answers", "family": "judged", "metrics": metrics,
                                      "subtasks": subtasks, "n": n, "info": {"bias": summary["bias"]}})


def _record(run_id: str, options: JudgeRunOptions, definition: Any, questions_source: str) -> RunRecord:
    from evalkit.runner import package_versions

    return RunRecord(
        run_id=run_id, created=datetime.now(timezone.utc).isoformat(timespec="seconds"), source="evalkit-judge",
        model=ModelRecord.model_validate({"backend": "answers", "models": [], "answers": str(options.answers)}),
        config={"answers": str(options.answers), "data_dir": str(options.data_dir) if options.data_dir else None,
                "questions": questions_source, "limit": options.limit, "turns": list(options.turns),
                "categories": list(options.categories), "seed": options.seed, "judge": definition.name},
        versions=package_versions())
