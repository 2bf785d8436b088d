"""The `longcontext` task kind: LongBench v1, LongBench-E and LongBench v2, as the official scripts run them.

Per record (v1 / -E): the dataset's prompt template is filled with the record (`str.format`), the prompt is
middle-truncated to the token budget *before* any chat template, then sent

- without chat template through the backend's raw completion (`complete`) for trec, triviaqa, samsum, lsht,
  lcc and repobench-p (the official script skips the template there; a backend without raw completion
  falls back to chat, noted in results.json), and
- as one user message through `generate` for every other dataset,

greedy, with the dataset's max new tokens. Scores follow the official `eval.py` (evalkit.metrics.longbench).
One known difference: for samsum the official script also stops at the first newline and forbids an
end-of-text first token; evalkit generates up to the max new tokens and scores the first line after
leading newlines, which is the same text unless the model would begin with a newline.
LongBench v2 lives in `evalkit.tasks._longbench_v2`.

Task options (`--task-args key=value,...`):
    max_length=N       prompt budget in tokens (default: model2maxlen for the model, else the model's
                       context minus the max new tokens minus the chat template's tokens)
    source=auto|local|hub|demo   where records come from (auto: data dir, then hub, demo only if nothing real)
    full_prompts=true  keep whole prompts in samples/<task>.jsonl (default: head and tail, 1000 characters each)
    max_new_tokens=N   cap the official max new tokens of every dataset (quick smoke runs; not comparable)
    mode=0shot|cot|no_context    LongBench v2 only

Judging (v1 / -E): with `--judge-model M` (or a `judge:` block in the task YAML) the summarisation datasets'
answers (gov_report, qmsum, multi_news, vcsum) are also graded by an LLM judge against the first gold summary
(`evalkit.tasks._task_judge`; default judge `rubric-qa`); the judge sees the prompt shortened like the samples'.
"""

from __future__ import annotations

from typing import Any

from evalkit.backends._adapt import as_base_backend
from evalkit.backends._protocol import Backend, BackendBase
from evalkit.errors import ConfigError, DataError
from evalkit.metrics import _longbench as lb
from evalkit.tasks._kind import RunContext, SampleSink, TaskOutcome
from evalkit.tasks._longbench_common import (
    LongContextSpec,
    chunk_size,
    chunks,
    flag,
    new_token_cap,
    source,
)
from evalkit.tasks._longbench_data import LongBenchConfig, Records, load_config, load_records
from evalkit.tasks._longbench_prompt import budget_for, fill_v1, shorten_for_sample, truncate_prompt
from evalkit.tasks._task_judge import JudgeInput, TaskJudging, start_judging
from evalkit.tasks._thinking import split_thinking
from evalkit.types import Completion, GenConfig, Message

__all__ = ["SUMMARY_JUDGE", "LongContextSpec", "run"]

SUMMARY_JUDGE = "rubric-qa"  # the judge of the summarisation datasets when neither --judge nor the YAML names one


def _selected(spec: LongContextSpec, ctx: RunContext) -> list[str]:
    if not ctx.subsets:
        return list(spec.datasets)
    unknown = [s for s in ctx.subsets if s not in spec.datasets]
    if unknown:
        raise ConfigError(f"{spec.name}:{unknown[0]} is not a dataset of {spec.name}; use one of: "
                          f"{', '.join(spec.datasets)}")
    return list(ctx.subsets)


def _call(backend: BackendBase, texts: list[str], config: GenConfig, raw: bool) -> list[Completion]:
    if raw:
        return list(backend.complete(texts, config))
    return backend.generate([(Message("user", t),) for t in texts], config)


def _judge_inputs(name: str, samples: list[dict[str, Any]], prompts: list[str], chars: int) -> list[JudgeInput]:
    """A summarisation judge reads the (shortened) prompt as the question and the first gold summary."""
    return [JudgeInput(s["id"], name, shorten_for_sample(p, chars), split_thinking(s["prediction"]).answer,
                       (s["target"] or [None])[0]) for s, p in zip(samples, prompts)]


def _run_dataset(name: str, rec: Records, spec: LongContextSpec, cfg: LongBenchConfig, backend: BackendBase,
                 ctx: RunContext, sink: SampleSink, judging: TaskJudging | None = None) -> dict[str, Any]:
    """Generate and score one dataset; returns its item scores, lengths and bookkeeping."""
    rows = rec.rows[: ctx.limit] if ctx.limit is not None else rec.rows
    if name not in cfg.prompts or name not in cfg.max_new_tokens:
        raise DataError(f"LongBench: no prompt template / max new tokens for '{name}' in {cfg.sources['prompts']}")
    max_new = min(cfg.max_new_tokens[name], new_token_cap(ctx))
    raw = name in lb.NO_CHAT_TEMPLATE_DATASETS and backend.can_complete
    budget, rule = budget_for(backend, max_new_tokens=max_new, task_args=ctx.task_args,
                              model_table=cfg.model_max_length, uses_chat=not raw)
    tokenizer = backend if backend.can_tokenize else None
    config = GenConfig(temperature=0.0, max_tokens=max_new, seed=ctx.seed)
    keep_all = flag(ctx, "full_prompts")
    scores: list[float] = []
    lengths: list[int] = []
    truncated = 0
    for part in chunks(list(zip(rows, rec.doc_index)), chunk_size(ctx)):
        prompts = [truncate_prompt(fill_v1(cfg.prompts[name], row, where=f"{rec.location} row {idx}"),
                                   tokenizer, budget) for row, idx in part]
        completions = _call(backend, [p.text for p in prompts], config, raw)
        samples = []
        for (row, idx), prompt, completion in zip(part, prompts, completions, strict=True):
            prediction = completion.text
            score = lb.score_item(name, prediction, list(row["answers"]), row.get("all_classes"))
            scores.append(score)
            lengths.append(int(row.get("length", 0)))
            truncated += prompt.truncated
            samples.append({
                "id": f"{name}/{row.get('_id', idx)}", "subset": name, "doc_index": idx,
                "prompt": prompt.text if keep_all else shorten_for_sample(prompt.text, spec.sample_prompt_chars),
                "target": list(row["answers"]), "prediction": prediction, "score": score,
                "length": row.get("length"), "prompt_tokens": prompt.prompt_tokens,
                "kept_tokens": prompt.kept_tokens, "truncated": prompt.truncated, "chat_template": not raw,
            })
        if judging is not None and name in lb.CATEGORIES["summarization"]:
            judging.judge(_judge_inputs(name, samples, [p.text for p in prompts], spec.sample_prompt_chars), samples)
        sink.write(samples)
        ctx.advance(len(part))
    return {"scores": scores, "lengths": lengths, "truncated": truncated, "budget": budget, "rule": rule,
            "raw": raw, "max_new_tokens": max_new}


def _summarise(spec: LongContextSpec, results: dict[str, dict[str, Any]]) -> tuple[
        dict[str, float], dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """(metrics, groups, subtasks) from the per-dataset results; scores on the official 0-100 scale."""
    per_dataset = {name: lb.dataset_score(r["scores"]) for name, r in results.items()}
    subtasks: dict[str, dict[str, float]] = {}
    for name, r in results.items():
        entry = {"score": per_dataset[name], "n": float(len(r["scores"])), "truncated": float(r["truncated"])}
        if spec.variant == "longbench_e":
            for bucket, value in lb.bucket_scores(r["scores"], r["lengths"]).items():
                entry[f"score_{bucket}"] = value
        subtasks[name] = entry
    cats = lb.category_scores(per_dataset)
    groups = {cat: {"score": value, "datasets": float(sum(1 for d in results if lb.DATASET_CATEGORY[d] == cat))}
              for cat, value in cats.items()}
    metrics = {"score": lb.overall_score(cats.values()),
               "score_dataset_mean": lb.overall_score(per_dataset.values())}
    if spec.variant == "longbench_e":
        for bucket in lb.LENGTH_BUCKETS:
            vals = [s[f"score_{bucket}"] for s in subtasks.values() if f"score_{bucket}" in s]
            if vals:  # a bucket no dataset has is left out rather than reported as NaN
                metrics[f"score_{bucket}"] = lb.overall_score(vals)
    return metrics, groups, subtasks


def _run_v1(spec: LongContextSpec, backend: BackendBase, ctx: RunContext, sink: SampleSink) -> TaskOutcome:
    names = _selected(spec, ctx)
    where = source(ctx)
    cfg = load_config(ctx.data_dir, spec.prompts, spec.max_new_tokens, record_file=ctx.record_file)
    records = load_records(
        names, data_dir=ctx.data_dir if where in ("auto", "local") else None,
        file_suffix="_e" if spec.variant == "longbench_e" else "", hub_repo=spec.hub_repo,
        use_hub=where in ("auto", "hub"), use_demo=where in ("auto", "demo"), warn=ctx.warn,
        record_file=ctx.record_file)
    if not records:
        raise DataError(f"{spec.name}: none of its datasets was found; pass --data-dir DIR with "
                        f"DIR/longbench/data/<dataset>.jsonl, allow the HF hub, or use --task-args source=demo")
    judging = start_judging(spec, ctx, backend.identity.model, fallback=SUMMARY_JUDGE)
    sizes = {name: len(r.rows[: ctx.limit] if ctx.limit is not None else r.rows) for name, r in records.items()}
    judged = sum(n for name, n in sizes.items() if name in lb.CATEGORIES["summarization"])
    ctx.set_total(sum(sizes.values()) + (judged if judging is not None and judging.counts_progress else 0))
    results = {name: _run_dataset(name, rec, spec, cfg, backend, ctx, sink, judging) for name, rec in records.items()}
    metrics, groups, subtasks = _summarise(spec, results)
    info = {
        "scale": "0-100, as the official LongBench eval.py; 'score' = mean of category means",
        "variant": spec.variant,
        "config_sources": cfg.sources,
        "data": {name: {"origin": r.origin, "location": r.location} for name, r in records.items()},
        "missing": [n for n in names if n not in records],
        "prompt_budget": {name: {"tokens": r["budget"], "rule": r["rule"]} for name, r in results.items()},
        "no_chat_template": sorted(n for n, r in results.items() if r["raw"]),
        "chat_instead_of_raw": sorted(n for n, r in results.items()
                                      if n in lb.NO_CHAT_TEMPLATE_DATASETS and not r["raw"]),
        "truncated_prompts": sum(r["truncated"] for r in results.values()),
        "sample_prompts": "whole" if flag(ctx, "full_prompts") else
                          f"head and tail, {spec.sample_prompt_chars} characters each, with an omission marker",
        "decoding": "greedy",
        "max_new_tokens": {name: r["max_new_tokens"] for name, r in results.items()},
    }
    if judging is not None:
        judge_metrics, info["judge"] = judging.outcome()
        metrics.update(judge_metrics)
    return TaskOutcome(metrics=metrics, n=sum(len(r["scores"]) for r in results.values()), groups=groups,
                       subtasks=subtasks, info=info)


def run(spec: LongContextSpec, backend: Backend, ctx: RunContext, sink: SampleSink) -> TaskOutcome:
    """Run a LongBench task (v1, -E or v2) against a backend; see the module docstring."""
    backend = as_base_backend(backend)
    if spec.variant == "longbench_v2":
        from evalkit.tasks._longbench_v2 import run_v2

        return run_v2(spec, backend, ctx, sink)
    return _run_v1(spec, backend, ctx, sink)
