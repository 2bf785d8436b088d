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

Repeats (v1 / -E): `--repeats K` > 1 samples K answers per record, sample k with seed `seed + k` at
`evalkit.tasks._repeats.sampling_temperature` (0.7 instead of greedy), each its own backend call and cache entry.
Each sample is scored with the dataset's metric; the headline `score` (dataset, category, task) stays sample 0's.
Every dataset adds `evalkit.metrics._sampling.score_sampling_metrics` over its records as `score_<stat>@K`, on
the 0-100 scale of `score`, with the normalised prediction as each sample's vote for maj@K (`vote_answer`); categories and the
task add the mean of their members' values, as `score` is formed (see `_aggregate_repeats`).

Judging (v1 / -E): with `--judge-model M` (or a `judge:` block in the task YAML) the summarisation datasets'
answers (gov_report, qmsum, multi_news, vcsum) are also graded by an LLM judge against the first gold summary
(`evalkit.tasks._task_judge`; default judge `rubric-qa`); the judge sees the prompt shortened like the samples'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from evalkit.backends._adapt import as_base_backend
from evalkit.backends._protocol import Backend, BackendBase
from evalkit.errors import ConfigError, DataError
from evalkit.metrics import _longbench as lb
from evalkit.metrics._sampling import score_sampling_metrics
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
from evalkit.tasks._repeats import repeat_configs, repeat_count, repeats_info
from evalkit.tasks._task_judge import JudgeInput, TaskJudging, start_judging
from evalkit.tasks._thinking import split_thinking
from evalkit.types import Completion, GenConfig, Message

__all__ = ["SUMMARY_JUDGE", "LongContextSpec", "run", "vote_answer"]

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


def vote_answer(dataset: str, prediction: str) -> str | None:
    """What a sample votes for in maj@K: its prediction as the dataset's metric reads it, normalised.

    The first line where LongBench scores only that; LongBench's Chinese normalisation for Chinese datasets,
    its English (SQuAD-style) one otherwise; for code, the first code-looking line that code similarity scores.
    None (no vote) when nothing is left.

    Examples:
        >>> vote_answer("hotpotqa", "The River Vell."), vote_answer("trec", "Date\\nQuestion: ...")
        ('river vell', 'date')
        >>> vote_answer("multifieldqa_zh", "七个 桥孔。"), vote_answer("qasper", " . ")
        ('七个桥孔', None)
        >>> vote_answer("lcc", "```python\\n    x = 1\\n```")
        'x = 1'
    """
    prediction = lb.scored_text(dataset, prediction)
    language = lb.DATASET_LANGUAGE.get(lb.base_dataset(dataset), "en")
    if language == "code":
        answer = lb.first_code_line(prediction).strip()
    else:
        answer = lb.normalize_zh(prediction) if language == "zh" else lb.normalize_en(prediction)
    return answer or None


def _draws(name: str, row: dict[str, Any], texts: Sequence[str], configs: Sequence[GenConfig]) -> list[
        dict[str, Any]]:
    """One record's K samples, each scored with the dataset's metric as sample 0 always is."""
    return [{"seed": c.seed, "prediction": text,
             "score": lb.score_item(name, text, list(row["answers"]), row.get("all_classes"))}
            for text, c in zip(texts, configs, strict=True)]


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
    repeats = repeat_count(ctx)  # K = 1: the one greedy call of the official script, unchanged
    configs = [config] if repeats == 1 else repeat_configs(config, repeats=repeats, seed=ctx.seed)
    keep_all = flag(ctx, "full_prompts")
    scores: list[float] = []
    lengths: list[int] = []
    repeat_scores: list[list[float]] = []
    votes: list[list[str | None]] = []
    truncated = 0
    for part in chunks(list(zip(rows, rec.doc_index)), chunk_size(ctx)):
        prompts = [truncate_prompt(fill_v1(cfg.prompts[name], row, where=f"{rec.location} row {idx}"),
                                   tokenizer, budget) for row, idx in part]
        answers = [_call(backend, [p.text for p in prompts], c, raw) for c in configs]  # answers[k][i]
        samples = []
        for i, ((row, idx), prompt) in enumerate(zip(part, prompts, strict=True)):
            draws = _draws(name, row, [a[i].text for a in answers], configs)
            prediction, score = draws[0]["prediction"], draws[0]["score"]
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
            if repeats > 1:
                samples[-1]["samples"] = draws
                repeat_scores.append([d["score"] for d in draws])
                votes.append([vote_answer(name, d["prediction"]) for d in draws])
        if judging is not None and name in lb.CATEGORIES["summarization"]:  # judges sample 0, as it scores
            judging.judge(_judge_inputs(name, samples, [p.text for p in prompts], spec.sample_prompt_chars), samples)
        sink.write(samples)
        ctx.advance(len(part))
    return {"scores": scores, "lengths": lengths, "truncated": truncated, "budget": budget, "rule": rule,
            "raw": raw, "max_new_tokens": max_new, "repeat_scores": repeat_scores, "votes": votes}


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
    if any(r["repeat_scores"] for r in results.values()):
        _aggregate_repeats(results, subtasks, groups, metrics)
    return metrics, groups, subtasks


def _aggregate_repeats(results: dict[str, dict[str, Any]], subtasks: dict[str, dict[str, float]],
                       groups: dict[str, dict[str, float]], metrics: dict[str, float]) -> None:
    """Add the @K metrics: per dataset over its records, per category and for the task as `score` is formed.

    They are named after `score` and on its 0-100 scale (`score_mean@3`, `score_best@3`, `score_maj@3`,
    `score_sd@3`); a 0/1 dataset reports `score_pass@K` and `score_pass@1` instead of best@K. `score` is the mean
    of category means of dataset scores, so a category's @K value is the mean of its datasets' values and the
    task's the mean of the categories', a 0/1 dataset's pass@K standing in as its best@K (with n = K both are
    "some sample right"). The stderr of a mean of members treats them as independent, sqrt(sum of squared
    stderrs) / members, as `macro_mean_stderr` does; sd@K has none.
    """
    by_category: dict[str, list[dict[str, float]]] = {}
    for name, r in results.items():
        if not r["repeat_scores"]:
            continue
        values = {f"score_{key}": 100.0 * v for key, v in score_sampling_metrics(r["repeat_scores"], r["votes"]).items()}
        subtasks[name].update(values)
        k = min(len(s) for s in r["repeat_scores"])
        best = f"score_best@{k}" if f"score_best@{k}" in values else f"score_pass@{k}"
        picked = {f"score_mean@{k}": f"score_mean@{k}", f"score_best@{k}": best, f"score_maj@{k}": f"score_maj@{k}"}
        member = {out: values[key] for out, key in picked.items()}
        member.update({f"{out}_stderr": values[f"{key}_stderr"] for out, key in picked.items()})
        member[f"score_sd@{k}"] = values[f"score_sd@{k}"]
        by_category.setdefault(lb.DATASET_CATEGORY[name], []).append(member)
    category_values = {cat: _mean_of_members(members) for cat, members in by_category.items()}
    for cat, values in category_values.items():
        groups[cat].update(values)
    metrics.update(_mean_of_members(list(category_values.values())))


def _mean_of_members(members: Sequence[dict[str, float]]) -> dict[str, float]:
    """Each metric's mean over members; its stderr sqrt(sum se^2) / members (NaN when a member's is NaN).

    Examples:
        >>> _mean_of_members([{"mean@2": 0.2, "mean@2_stderr": 0.3}, {"mean@2": 0.6, "mean@2_stderr": 0.4}])
        {'mean@2': 0.4, 'mean@2_stderr': 0.25}
    """
    out: dict[str, float] = {}
    for key in members[0]:
        values = [m[key] for m in members]
        if key.endswith("_stderr"):
            out[key] = math.sqrt(math.fsum(v * v for v in values)) / len(values)
        else:
            out[key] = math.fsum(values) / len(values)
    return out


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
    if repeat_count(ctx) > 1:
        info.update(repeats_info(ctx, 0.0), decoding=f"sampled (--repeats {repeat_count(ctx)})",
                    repeats_note="'score' (dataset, category, task) is sample 0's; score_<stat>@K are on its 0-100 "
                                 "scale, categories and the task the mean of their members' values")
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
