"""Multi-turn judged tasks (MT-Bench): the model answers every turn with its own earlier answers in the
history, then LLM judges grade the answers (single 1-10 grading, or pairwise against a baseline's answers).

Sampling temperatures per category follow FastChat's llm_judge (writing/roleplay 0.7; extraction, math,
coding, reasoning 0.0; stem/humanities 0.1); the YAML's `temperatures` or task args override them:
`--task-args temperature=0` (every category), `temperature_writing=0.5`, `max_tokens=512`,
`save_answers=answers/mymodel.jsonl` (FastChat model_answer layout, re-judgeable with `evalkit judge`),
`judge_mode=probability`, `reducer=median`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from evalkit.backends._protocol import Backend
from evalkit.errors import ConfigError
from evalkit.tasks._kind import RunContext, SampleSink, TaskOutcome
from evalkit.tasks._mtbench_data import (
    CATEGORY_TEMPERATURE,
    Question,
    answer_questions,
    load_model_answers,
    load_questions,
    write_model_answers,
)
from evalkit.tasks._spec import TaskSpecBase

__all__ = ["MultiturnJudgeSpec", "run"]

_TASK_ARGS = {"temperature", "max_tokens", "save_answers", "judge_mode", "reducer", "baseline"}


class MultiturnJudgeSpec(TaskSpecBase):
    """An MT-Bench-style task: questions with several user turns, answered by the model, graded by judges."""

    kind: Literal["multiturn_judge"]
    family: str = "judge"
    default_judge: str = "mt-bench-single"
    categories: tuple[str, ...] = ()
    temperatures: dict[str, float] = Field(default_factory=dict)
    default_temperature: float = 0.7
    max_tokens: int = Field(default=1024, ge=1)
    system_prompt: str | None = None
    turns: tuple[int, ...] = (1, 2)

    def subset_names(self) -> list[str]:
        return list(self.categories)


def _temperatures(spec: MultiturnJudgeSpec, args: dict[str, str]) -> dict[str, float]:
    table = {**CATEGORY_TEMPERATURE, **spec.temperatures}
    try:
        if "temperature" in args:
            table = {cat: float(args["temperature"]) for cat in set(table) | set(spec.categories)}
        for key, value in args.items():
            if key.startswith("temperature_"):
                table[key.removeprefix("temperature_")] = float(value)
    except ValueError:
        raise ConfigError("--task-args temperature*: values must be numbers, e.g. temperature_writing=0.7") from None
    return table


def _check_args(args: dict[str, str]) -> None:
    unknown = [k for k in args if k not in _TASK_ARGS and not k.startswith("temperature_")]
    if unknown:
        raise ConfigError(f"mt_bench task args: unknown {', '.join(unknown)}; use {', '.join(sorted(_TASK_ARGS))} "
                          "or temperature_<category>")


def _select(spec: MultiturnJudgeSpec, ctx: RunContext) -> list[Question]:
    questions = load_questions(ctx.data_dir, warn=ctx.warn, record_file=ctx.record_file)
    known = {q.category for q in questions}
    wanted = ctx.subsets or spec.categories
    unknown = set(wanted) - known
    if unknown:
        raise ConfigError(f"{spec.name}: unknown categories {', '.join(sorted(unknown))}; known: "
                          f"{', '.join(sorted(known))}")
    if wanted:
        questions = [q for q in questions if q.category in wanted]
    if ctx.limit:
        per_cat: dict[str, int] = {}
        kept = []
        for q in questions:
            per_cat[q.category] = per_cat.get(q.category, 0) + 1
            if per_cat[q.category] <= ctx.limit:
                kept.append(q)
        questions = kept
    return questions


def _judge_config(spec: MultiturnJudgeSpec, ctx: RunContext) -> Any:
    config = ctx.judge
    if config is None:
        return None
    args = ctx.task_args
    updates: dict[str, Any] = {}
    if "judge_mode" in args:
        updates["mode"] = args["judge_mode"]
    if "reducer" in args:
        updates["reducer"] = args["reducer"]
    if "baseline" in args:
        updates["baseline"] = args["baseline"]
    if not config.definition:
        updates["definition"] = spec.judge.definition if spec.judge is not None else spec.default_judge
    return replace(config, **updates) if updates else config


def run(spec: MultiturnJudgeSpec, backend: Backend, ctx: RunContext, sink: SampleSink) -> TaskOutcome:
    """Answer every question turn by turn, then judge the answers with `ctx.judge` (a `JudgeConfig`)."""
    _check_args(ctx.task_args)
    questions = _select(spec, ctx)
    config = _judge_config(spec, ctx)
    turns = sum(min(len(q.turns), max(spec.turns)) for q in questions)
    judged_items = len(questions) * len(spec.turns) if config is not None and not config.dry_run else 0
    ctx.set_total(turns + judged_items)
    try:
        max_tokens = int(ctx.task_args.get("max_tokens", spec.max_tokens))
    except ValueError:
        raise ConfigError("--task-args max_tokens must be an integer") from None
    answers = answer_questions(backend, questions, temperatures=_temperatures(spec, ctx.task_args),
                               max_tokens=max_tokens, seed=ctx.seed, system=spec.system_prompt,
                               default_temperature=spec.default_temperature,
                               on_turn=ctx.advance)
    model = backend.identity.model
    if "save_answers" in ctx.task_args:
        write_model_answers(Path(ctx.task_args["save_answers"]), model, answers)
    if config is None:
        ctx.warn(f"{spec.name}: no judge given (--judge / --judge-model): answers were generated but not graded")
        sink.write([_answer_row(q, i, answers) for i, q in enumerate(questions)])
        return TaskOutcome(metrics={}, n=len(questions), info={"judged": False, "answers": len(answers)})
    return _judge(spec, ctx, config, questions, model, answers, sink)


def _answer_row(question: Question, index: int, answers: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    return {"id": question.question_id, "subset": question.category, "doc_index": index,
            "prompt": list(question.turns), "prediction": list(answers[question.question_id]), "target": None}


def _judge(spec: MultiturnJudgeSpec, ctx: RunContext, config: Any, questions: list[Question], model: str,
           answers: dict[str, tuple[str, ...]], sink: SampleSink) -> TaskOutcome:
    from evalkit.judges import (
        build_items,
        build_scorer,
        judge_items,
        reference_answers,
        sample_row,
        summarize,
    )
    from evalkit.judges._runner import plan_calls

    definition = config.load_definition(spec.default_judge)
    by_model = {model: answers}
    if definition.type == "pairwise":
        if not config.baseline:
            raise ConfigError(f"pairwise judge '{definition.name}' in a run needs a baseline model's answers: "
                              "--task-args baseline=<model> with <data_dir>/mt_bench/model_answer/<model>.jsonl")
        if ctx.data_dir is None:
            raise ConfigError("pairwise judging in a run reads the baseline's answers from --data-dir")
        by_model.update(load_model_answers(ctx.data_dir / "mt_bench" / "model_answer", [config.baseline],
                                           record_file=ctx.record_file))
    refs = reference_answers(definition, questions, ctx.data_dir, args=config.args, warn=ctx.warn,
                             record_file=ctx.record_file)
    items = build_items(definition, questions, by_model, references=refs, baseline=config.baseline,
                        turns=spec.turns)
    plan = plan_calls(config, definition, items)
    if config.dry_run:
        ctx.warn(f"dry run: {plan['calls']} judge calls (up to {plan['max_calls']} with retries) for {spec.name}")
        return TaskOutcome(metrics={}, n=len(items), info={"judge_plan": plan})
    scorer = build_scorer(config, definition, data_dir=ctx.data_dir, seed=ctx.seed)
    index = {q.question_id: i for i, q in enumerate(questions)}

    def write(done: list[Any]) -> None:
        sink.write([sample_row(j, doc_index=index.get(j.item.question_id)) for j in done])
        ctx.advance(len(done))

    judged = judge_items(scorer, items, on_batch=write)
    summary = summarize(judged, scorer.stats, {j.name: j.stats for j in scorer.judges}, reducer=config.reducer,
                        kind=definition.type, anchor=config.baseline, seed=ctx.seed,
                        labels=Path(config.labels) if config.labels else None, definition=definition)
    return _outcome(summary, model, definition, config, plan, scorer.stats.as_dict(), len(items))


def _outcome(summary: dict[str, Any], model: str, definition: Any, config: Any, plan: dict[str, int],
             cost: dict[str, Any], n: int) -> TaskOutcome:
    rel = summary["reliability"]
    metrics: dict[str, float] = {k: rel[k] for k in ("valid_rate", "parse_rate", "position_consistency")
                                 if rel.get(k) is not None}
    groups: dict[str, dict[str, float]] = {}
    entry = summary["scores"].get(model, {})
    if definition.type == "single" and entry.get("mean") is not None:
        metrics.update(score=entry["mean"], score_ci_low=entry["ci_low"], score_ci_high=entry["ci_high"])
        metrics.update({f"score_{t}": v for t, v in entry["by_turn"].items()})
        groups = {cat: {"score": v} for cat, v in entry["by_category"].items()}
    elif definition.type == "pairwise" and entry:
        metrics["win_rate"] = entry["score_rate"]  # ties count half, vs the baseline
    info = {"judge": {**config.as_dict(), "definition": definition.name, "type": definition.type,
                      "mode": definition.mode, "plan": plan, "cost": cost},
            "votes": {"per_item": plan["votes"] * plan["judges"], "reducer": config.reducer},
            "reliability": rel, "ranking": summary["ranking"], "scores": summary["scores"],
            "bias": summary.get("bias", {})}
    return TaskOutcome(metrics=metrics, n=n, groups=groups, subtasks={}, info=info)
