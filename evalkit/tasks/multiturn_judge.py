"""Multi-turn judged tasks (MT-Bench): the model answers every turn with its own earlier answers in the
history, then LLM judges grade the answers (single 1-10 grading, or pairwise against a baseline's answers).

Sampling temperatures per category follow FastChat's llm_judge (writing/roleplay 0.7; extraction, math,
coding, reasoning 0.0; stem/humanities 0.1); the YAML's `temperatures` or task args override them:
`--task-args temperature=0` (every category), `temperature_writing=0.5`, `max_tokens=512`,
`save_answers=answers/mymodel.jsonl` (FastChat model_answer layout, re-judgeable with `evalkit judge`),
`judge_mode=probability`, `reducer=median`.

`--repeats K` (K > 1) answers every question K times, sample k a whole conversation with seed `seed + k`
(a greedy category samples at `sampling_temperature`, 0.7), and judges every sample. The headline metrics
(`score`, `score_<turn>`, per-category `score`, `win_rate`, reliability, ranking, bias) stay sample 0's, so
they compare with a one-sample run; `score_sampling_metrics` over each sample's per-question value (single:
the mean of its turns' scores; pairwise: its mean outcome, win 1, tie 0.5, loss 0) adds `score_mean@K`,
`score_best@K`, `score_sd@K` on the judge's scale (pairwise: `win_rate_mean@K`, ...; `_mean@K` per category too).
A sample with an invalid verdict is left out of its question's list; the question keeps the samples it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from evalkit.backends._protocol import Backend
from evalkit.errors import ConfigError
from evalkit.metrics._sampling import score_sampling_metrics
from evalkit.tasks._kind import RunContext, SampleSink, TaskOutcome
from evalkit.tasks._mtbench_data import (
    CATEGORY_TEMPERATURE,
    Question,
    answer_repeats,
    load_model_answers,
    load_questions,
    sampled_temperatures,
    write_model_answers,
)
from evalkit.tasks._spec import TaskSpecBase

__all__ = ["MultiturnJudgeSpec", "run"]

_TASK_ARGS = {"temperature", "max_tokens", "save_answers", "judge_mode", "reducer", "baseline"}

Answers = dict[str, tuple[str, ...]]  # question id -> the answer turns of one sample


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
    """Answer every question turn by turn (K times with `ctx.repeats`), then judge with `ctx.judge`."""
    _check_args(ctx.task_args)
    questions = _select(spec, ctx)
    config = _judge_config(spec, ctx)
    repeats = ctx.repeats or 1
    turns = sum(min(len(q.turns), max(spec.turns)) for q in questions)
    judged_items = len(questions) * len(spec.turns) if config is not None and not config.dry_run else 0
    ctx.set_total((turns + judged_items) * repeats)
    try:
        max_tokens = int(ctx.task_args.get("max_tokens", spec.max_tokens))
    except ValueError:
        raise ConfigError("--task-args max_tokens must be an integer") from None
    temperatures = _temperatures(spec, ctx.task_args)
    samples = answer_repeats(backend, questions, repeats=repeats, seed=ctx.seed, temperatures=temperatures,
                             default_temperature=spec.default_temperature, max_tokens=max_tokens,
                             system=spec.system_prompt, on_turn=ctx.advance)
    extra = _repeat_info(ctx.seed, repeats, sampled_temperatures(
        questions, temperatures, repeats=repeats, default_temperature=spec.default_temperature))
    model = backend.identity.model
    if "save_answers" in ctx.task_args:
        write_model_answers(Path(ctx.task_args["save_answers"]), model, *samples)
    if config is None:
        ctx.warn(f"{spec.name}: no judge given (--judge / --judge-model): answers were generated but not graded")
        sink.write([_tag(_answer_row(q, i, answers), k, ctx.seed, repeats)
                    for k, answers in enumerate(samples) for i, q in enumerate(questions)])
        return TaskOutcome(metrics={}, n=len(questions), info={"judged": False, "answers": len(samples[0]), **extra})
    outcome = _judge(spec, ctx, config, questions, model, samples, sink)
    return replace(outcome, info={**outcome.info, **extra})


def _repeat_info(seed: int, repeats: int, temperatures: dict[str, float]) -> dict[str, Any]:
    """What a K-sample run adds to info (nothing for one sample, so such a run's record stays as it was)."""
    if repeats == 1:
        return {}
    return {"repeats": repeats, "seeds": [seed + k for k in range(repeats)], "temperatures": temperatures}


def _tag(row: dict[str, Any], sample: int, seed: int, repeats: int) -> dict[str, Any]:
    """Mark a sample row with its sample index and seed when K > 1; sample k > 0 gets its own id (sample 0
    keeps the one-sample id, so a regression gate pairs it with a one-sample run)."""
    if repeats == 1:
        return row
    if sample:
        row["id"] = f"{row['id']}/sample{sample}"
    row.update(sample=sample, seed=seed + sample)
    return row


def _answer_row(question: Question, index: int, answers: Answers) -> dict[str, Any]:
    return {"id": question.question_id, "subset": question.category, "doc_index": index,
            "prompt": list(question.turns), "prediction": list(answers[question.question_id]), "target": None}


def _baseline_answers(ctx: RunContext, config: Any, definition: Any) -> dict[str, Answers]:
    """The baseline model's answers a pairwise judge compares with (none for other judges)."""
    if definition.type != "pairwise":
        return {}
    if not config.baseline:
        raise ConfigError(f"pairwise judge '{definition.name}' in a run needs a baseline model's answers: "
                          "--task-args baseline=<model> with <data_dir>/mt_bench/model_answer/<model>.jsonl")
    if ctx.data_dir is None:
        raise ConfigError("pairwise judging in a run reads the baseline's answers from --data-dir")
    return load_model_answers(ctx.data_dir / "mt_bench" / "model_answer", [config.baseline],
                              record_file=ctx.record_file)


def _judge(spec: MultiturnJudgeSpec, ctx: RunContext, config: Any, questions: list[Question], model: str,
           samples: list[Answers], sink: SampleSink) -> TaskOutcome:
    from evalkit.judges import build_items, build_scorer, judge_items, reference_answers, summarize
    from evalkit.judges._runner import plan_calls

    definition = config.load_definition(spec.default_judge)
    baseline = _baseline_answers(ctx, config, definition)
    refs = reference_answers(definition, questions, ctx.data_dir, args=config.args, warn=ctx.warn,
                             record_file=ctx.record_file)
    items = [build_items(definition, questions, {model: answers, **baseline}, references=refs,
                         baseline=config.baseline, turns=spec.turns) for answers in samples]
    plan = plan_calls(config, definition, [item for per_sample in items for item in per_sample])
    if config.dry_run:
        ctx.warn(f"dry run: {plan['calls']} judge calls (up to {plan['max_calls']} with retries) for {spec.name}")
        return TaskOutcome(metrics={}, n=sum(map(len, items)), info={"judge_plan": plan})
    scorer = build_scorer(config, definition, data_dir=ctx.data_dir, seed=ctx.seed)
    write = partial(_write_rows, ctx, sink, {q.question_id: i for i, q in enumerate(questions)}, len(samples))
    judged = [judge_items(scorer, items[0], on_batch=partial(write, 0))]
    # sample 0's figures are taken before the other samples are judged: the judges' counters (parse rate,
    # rules, calls per judge) in reliability are then exactly a one-sample run's
    summary = summarize(judged[0], scorer.stats, {j.name: j.stats for j in scorer.judges}, reducer=config.reducer,
                        kind=definition.type, anchor=config.baseline, seed=ctx.seed,
                        labels=Path(config.labels) if config.labels else None, definition=definition)
    judged += [judge_items(scorer, per_sample, on_batch=partial(write, k)) for k, per_sample in enumerate(items[1:], 1)]
    outcome = _outcome(summary, model, definition, config, plan, scorer.stats.as_dict(), len(items[0]))
    if len(samples) == 1 or definition.type not in ("single", "pairwise"):
        return outcome
    return _with_sampling_metrics(outcome, judged)


def _write_rows(ctx: RunContext, sink: SampleSink, index: dict[str, int], repeats: int, sample: int,
                done: list[Any]) -> None:
    from evalkit.judges import sample_row

    sink.write([_tag(sample_row(j, doc_index=index.get(j.item.question_id)), sample, ctx.seed, repeats)
                for j in done])
    ctx.advance(len(done))


def _sample_values(judged: Sequence[Sequence[Any]]) -> tuple[dict[str, list[float]], dict[str, str], int]:
    """Per question id, the value of each sample judged validly (the mean of its items' scores or outcomes, in
    sample order); the questions' categories; how many samples had an invalid verdict and were left out.

    Examples:
        >>> from types import SimpleNamespace as N
        >>> def j(qid, value): return N(item=N(question_id=qid, category="math"), reduced=N(value=value))
        >>> _sample_values([[j("1", 8.0), j("1", 6.0), j("2", 3.0)], [j("1", 9.0), j("1", None), j("2", 5.0)]])
        ({'1': [7.0], '2': [3.0, 5.0]}, {'1': 'math', '2': 'math'}, 1)
    """
    per_sample: list[dict[str, list[float] | None]] = []
    categories: dict[str, str] = {}
    for sample in judged:
        values: dict[str, list[float] | None] = {}
        for j in sample:
            qid = j.item.question_id
            categories[qid] = j.item.category
            found = values.setdefault(qid, [])
            if j.reduced.value is None or found is None:
                values[qid] = None  # one unjudgeable turn leaves the whole sample out
            else:
                found.append(float(j.reduced.value))
        per_sample.append(values)
    out: dict[str, list[float]] = {qid: [] for qid in categories}
    for values in per_sample:
        for qid, found in values.items():
            if found:
                out[qid].append(sum(found) / len(found))
    excluded = sum(found is None for values in per_sample for found in values.values())
    return out, categories, excluded


def _with_sampling_metrics(outcome: TaskOutcome, judged: Sequence[Sequence[Any]]) -> TaskOutcome:
    """Add <metric>_mean@K, _best@K, _sd@K (task) and _mean@K (per category) over every sample's per-question value.

    <metric> is the headline they compare with: `score` (single grading, its 1-10 scale) or `win_rate`.
    """
    values, categories, excluded = _sample_values(judged)
    kept = {qid: v for qid, v in values.items() if v}
    k, prefix = len(judged), "score" if "score" in outcome.metrics else "win_rate"
    metrics = {**outcome.metrics, **score_sampling_metrics(list(kept.values()), k=k, prefix=prefix)}
    groups = {cat: dict(table) for cat, table in outcome.groups.items()}
    for cat in sorted(set(categories.values())):
        rows = [v for qid, v in kept.items() if categories[qid] == cat]
        means = {key: v for key, v in score_sampling_metrics(rows, k=k, prefix=prefix).items()
                 if key.startswith(f"{prefix}_mean@")}
        if means:
            groups.setdefault(cat, {}).update(means)
    info = {**outcome.info, "sampling": {"questions": len(kept), "dropped_questions": len(values) - len(kept),
                                         "excluded_samples": excluded}}
    return replace(outcome, metrics=metrics, groups=groups, info=info)


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
