"""LongBench v2: 503 four-choice questions over long contexts, run as the official `pred.py` / `result.py`.

Each question fills a template ($DOC$, $Q$, $C_A$..$C_D$; stripped), the prompt is middle-truncated
(v2 style: `ids[:b//2] + ids[-(b//2):]` with floor division of the negative number, decoded once), sent as one
user message, and the answer letter is extracted from "The correct answer is (X)" / "... is X" after
removing "*". An answer that cannot be extracted counts as wrong (the official `compensated` option, which
would count it as 0.25, is off there too).

Modes (`--task-args mode=...`): `0shot` (default, 128 new tokens), `cot` (a 1024-token reasoning pass with
0shot_cot, then 0shot_cot_ans with the reasoning in $COT$ and 128 new tokens) and `no_context`.
Decoding is greedy here (the official script samples at temperature 0.1).

Accuracy is reported on the 0-1 scale like every `acc` in evalkit: overall, easy / hard (by `difficulty`)
and short / medium / long (by `length`), with per-domain accuracy in subtasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evalkit.backends._adapt import as_base_backend
from evalkit.backends._protocol import Backend, BackendBase
from evalkit.errors import ConfigError, DataError
from evalkit.metrics._aggregate import mean_stderr
from evalkit.tasks._kind import RunContext, SampleSink, TaskOutcome
from evalkit.tasks._longbench_common import (
    LongContextSpec,
    chunk_size,
    chunks,
    flag,
    new_token_cap,
    source,
)
from evalkit.tasks._longbench_data import load_config, load_v2_records, load_v2_templates
from evalkit.tasks._longbench_prompt import (
    budget_for,
    extract_choice,
    fill_v2,
    shorten_for_sample,
    truncate_prompt,
)
from evalkit.types import GenConfig, Message

__all__ = ["run_v2", "v2_accuracy"]

_MODES = {"0shot": "0shot", "cot": "0shot_cot", "no_context": "0shot_no_context"}
_DIFFICULTY = ("easy", "hard")
_LENGTH = ("short", "medium", "long")


def v2_accuracy(rows: Sequence[dict[str, Any]], correct: Sequence[bool]) -> tuple[
        dict[str, float], dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """(metrics, groups, subtasks): accuracy overall, by difficulty, by length, and by domain.

    Examples:
        >>> rows = [{"difficulty": "easy", "length": "short", "domain": "d"},
        ...         {"difficulty": "hard", "length": "long", "domain": "d"}]
        >>> metrics, groups, _ = v2_accuracy(rows, [True, False])
        >>> metrics["acc"], metrics["acc_easy"], metrics["acc_long"], groups["short"]["n"]
        (0.5, 1.0, 0.0, 1.0)
    """
    values = [1.0 if c else 0.0 for c in correct]
    acc, stderr = mean_stderr(values)
    metrics = {"acc": acc, "acc_stderr": stderr}
    groups: dict[str, dict[str, float]] = {}
    for key, names in (("difficulty", _DIFFICULTY), ("length", _LENGTH)):
        for name in names:
            picked = [v for v, row in zip(values, rows, strict=True) if str(row.get(key)) == name]
            if picked:
                g_acc, g_err = mean_stderr(picked)
                groups[name] = {"acc": g_acc, "acc_stderr": g_err, "n": float(len(picked))}
                metrics[f"acc_{name}"] = g_acc
    subtasks: dict[str, dict[str, float]] = {}
    for domain in dict.fromkeys(str(row.get("domain", "")) for row in rows):
        picked = [v for v, row in zip(values, rows, strict=True) if str(row.get("domain", "")) == domain]
        d_acc, d_err = mean_stderr(picked)
        subtasks[domain or "(no domain)"] = {"acc": d_acc, "acc_stderr": d_err, "n": float(len(picked))}
    return metrics, groups, subtasks


def _ask(backend: BackendBase, prompts: list[str], max_new: int, budget: int | None, seed: int) -> tuple[
        list[str], list[Any]]:
    tokenizer = backend if backend.can_tokenize else None
    cut = [truncate_prompt(p, tokenizer, budget, style="v2") for p in prompts]
    config = GenConfig(temperature=0.0, max_tokens=max_new, seed=seed)
    completions = backend.generate([(Message("user", c.text),) for c in cut], config)
    return [c.text.strip() for c in completions], cut


def _sample(row: dict[str, Any], idx: int, prompt: Any, response: str, letter: str | None, keep_all: bool,
            sample_chars: int) -> dict[str, Any]:
    return {
        "id": str(row.get("_id", idx)), "subset": str(row.get("domain", "")), "doc_index": idx,
        "prompt": prompt.text if keep_all else shorten_for_sample(prompt.text, sample_chars),
        "target": row["answer"], "prediction": response, "extracted": letter, "correct": letter == row["answer"],
        "difficulty": row.get("difficulty"), "length": row.get("length"),
        "prompt_tokens": prompt.prompt_tokens, "kept_tokens": prompt.kept_tokens, "truncated": prompt.truncated,
    }


def _templates(spec: LongContextSpec, ctx: RunContext, mode: str) -> tuple[dict[str, str], str]:
    if mode not in _MODES:
        raise ConfigError(f"--task-args mode={mode}: use one of {', '.join(_MODES)}")
    templates, template_source = load_v2_templates(ctx.data_dir, spec.v2_templates,
                                                   record_file=ctx.record_file)
    needed = [_MODES[mode], *(["0shot_cot_ans"] if mode == "cot" else [])]
    missing = [n for n in needed if n not in templates]
    if missing:
        raise ConfigError(f"{spec.source_file}: no LongBench v2 template '{missing[0]}' in {template_source}")
    return templates, template_source


def _records(ctx: RunContext) -> Any:
    where = source(ctx)
    rec = load_v2_records(ctx.data_dir if where in ("auto", "local") else None,
                          use_hub=where in ("auto", "hub"), use_demo=where in ("auto", "demo"),
                          warn=ctx.warn, record_file=ctx.record_file)
    if rec is None:
        file = ctx.data_dir / "longbench" / "v2" / "data.json" if ctx.data_dir else "DIR/longbench/v2/data.json"
        tried = [f"{file} (or data.jsonl)" if where in ("auto", "local") else "",
                 "the hub THUDM/LongBench-v2" if where in ("auto", "hub") else "",
                 "the demo set" if where in ("auto", "demo") else ""]
        raise DataError(f"LongBench v2: no data: looked for {', '.join(t for t in tried if t)}; pass --data-dir "
                        f"DIR, or get it with `evalkit data pull longbench_v2 --to DIR`")
    if rec.origin == "demo":
        ctx.warn("LongBench v2: no real data found; using the DEMO set (original items) -- not LongBench v2 scores")
    return rec


def run_v2(spec: LongContextSpec, backend: Backend, ctx: RunContext, sink: SampleSink) -> TaskOutcome:
    """Run LongBench v2 (see the module docstring)."""
    backend = as_base_backend(backend)
    mode = ctx.task_args.get("mode", "0shot")
    templates, template_source = _templates(spec, ctx, mode)
    rec = _records(ctx)
    rows = rec.rows[: ctx.limit] if ctx.limit is not None else rec.rows
    models = load_config(ctx.data_dir, {}, {}, model2maxlen_file="v2_prompts/model2maxlen_v2.json",
                         record_file=ctx.record_file).model_max_length
    cap = new_token_cap(ctx)
    first_max = min(spec.v2_cot_max_new_tokens if mode == "cot" else spec.v2_max_new_tokens, cap)
    answer_max = min(spec.v2_max_new_tokens, cap)
    budget, rule = budget_for(backend, max_new_tokens=first_max, task_args=ctx.task_args,
                              model_table=models, uses_chat=True)
    ctx.set_total(len(rows))
    correct: list[bool] = []
    truncated = unextracted = 0
    for part in chunks(list(zip(rows, rec.doc_index)), chunk_size(ctx)):
        prompts = [fill_v2(templates[_MODES[mode]], row) for row, _ in part]
        responses, cut = _ask(backend, prompts, first_max, budget, ctx.seed)
        reasoning = [""] * len(part)
        if mode == "cot":
            reasoning = responses
            follow = [fill_v2(templates["0shot_cot_ans"], row, cot=r) for (row, _), r in zip(part, reasoning)]
            responses, _ = _ask(backend, follow, answer_max, budget, ctx.seed)
        samples = []
        for (row, idx), prompt, response, thought in zip(part, cut, responses, reasoning, strict=True):
            letter = extract_choice(response)
            sample = _sample(row, idx, prompt, response, letter, flag(ctx, "full_prompts"), spec.sample_prompt_chars)
            correct.append(sample["correct"])
            truncated += prompt.truncated
            unextracted += letter is None
            if mode == "cot":
                sample["reasoning"] = thought
            samples.append(sample)
        sink.write(samples)
        ctx.advance(len(part))
    metrics, groups, subtasks = v2_accuracy(rows, correct)
    info = {"variant": "longbench_v2", "mode": mode, "templates": template_source,
            "data": {"origin": rec.origin, "location": rec.location},
            "prompt_budget": {"tokens": budget, "rule": rule}, "truncated_prompts": truncated,
            "unextracted_answers": unextracted, "decoding": "greedy (official: temperature 0.1)",
            "scale": "0-1 (official result.py prints 100 x acc, one decimal)"}
    return TaskOutcome(metrics=metrics, n=len(rows), groups=groups, subtasks=subtasks, info=info)
