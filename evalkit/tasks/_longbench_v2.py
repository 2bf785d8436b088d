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

`--repeats K` > 1 samples K answers per question (sample k: seed `seed + k`, temperature from
`sampling_temperature`, in cot mode for both passes); `acc` stays sample 0's, and maj@K, pass@K, pass@1 and
mean@K (`sampling_metrics` of the extracted letters) join it overall, per group and per domain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from evalkit.backends._adapt import as_base_backend
from evalkit.backends._protocol import Backend, BackendBase
from evalkit.errors import ConfigError, DataError
from evalkit.metrics._aggregate import mean_stderr
from evalkit.metrics._sampling import sampling_metrics
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
from evalkit.tasks._repeats import repeat_configs, repeat_count, repeats_info
from evalkit.types import GenConfig, Message

__all__ = ["run_v2", "v2_accuracy", "v2_sampling"]

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


def v2_sampling(rows: Sequence[dict[str, Any]], letters: Sequence[Sequence[str | None]]) -> tuple[
        dict[str, float], dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """(metrics, groups, subtasks) of K sampled letters per question, where `v2_accuracy` has `acc`.

    Examples:
        >>> rows = [{"difficulty": "easy", "length": "short", "domain": "d", "answer": "A"},
        ...         {"difficulty": "hard", "length": "long", "domain": "d", "answer": "B"}]
        >>> metrics, groups, subtasks = v2_sampling(rows, [["A", "C", "A"], ["C", "B", None]])
        >>> metrics["maj@3"], metrics["pass@3"], groups["long"]["maj@3"], round(subtasks["d"]["mean@3"], 3)
        (0.5, 1.0, 0.0, 0.5)
    """
    def over(picked: list[int]) -> dict[str, float]:
        return sampling_metrics([letters[i] for i in picked], [str(rows[i]["answer"]) for i in picked])

    metrics = over(list(range(len(rows))))
    groups: dict[str, dict[str, float]] = {}
    for key, names in (("difficulty", _DIFFICULTY), ("length", _LENGTH)):
        for name in names:
            picked = [i for i, row in enumerate(rows) if str(row.get(key)) == name]
            if picked:
                groups[name] = over(picked)
    subtasks = {domain or "(no domain)": over([i for i, row in enumerate(rows) if str(row.get("domain", "")) == domain])
                for domain in dict.fromkeys(str(row.get("domain", "")) for row in rows)}
    return metrics, groups, subtasks


def _cut(backend: BackendBase, prompts: list[str], budget: int | None) -> list[Any]:
    tokenizer = backend if backend.can_tokenize else None
    return [truncate_prompt(p, tokenizer, budget, style="v2") for p in prompts]


def _ask(backend: BackendBase, cut: list[Any], config: GenConfig) -> list[str]:
    completions = backend.generate([(Message("user", c.text),) for c in cut], config)
    return [c.text.strip() for c in completions]


def _answer(backend: BackendBase, part: Sequence[tuple[dict[str, Any], int]], cut: list[Any],
            follow_template: str | None, budget: int | None, config: GenConfig, answer_max: int) -> tuple[
        list[str], list[str]]:
    """One sample's (responses, reasoning) for a chunk; in cot mode the reasoning goes into a second pass."""
    responses = _ask(backend, cut, config)
    if follow_template is None:
        return responses, [""] * len(part)
    follow = [fill_v2(follow_template, row, cot=r) for (row, _), r in zip(part, responses)]
    return _ask(backend, _cut(backend, follow, budget), replace(config, max_tokens=answer_max)), responses


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
    config = GenConfig(temperature=0.0, max_tokens=first_max, seed=ctx.seed)
    repeats = repeat_count(ctx)  # K = 1: the one greedy call (two in cot mode), unchanged
    configs = [config] if repeats == 1 else repeat_configs(config, repeats=repeats, seed=ctx.seed)
    follow_template = templates["0shot_cot_ans"] if mode == "cot" else None
    ctx.set_total(len(rows))
    correct: list[bool] = []
    letters: list[list[str | None]] = []
    truncated = unextracted = 0
    for part in chunks(list(zip(rows, rec.doc_index)), chunk_size(ctx)):
        cut = _cut(backend, [fill_v2(templates[_MODES[mode]], row) for row, _ in part], budget)
        drawn = [_answer(backend, part, cut, follow_template, budget, c, answer_max) for c in configs]
        samples = []
        for i, ((row, idx), prompt) in enumerate(zip(part, cut, strict=True)):
            draws = [_draw(c.seed, responses[i], thoughts[i], row["answer"], mode)
                     for c, (responses, thoughts) in zip(configs, drawn)]
            sample = _sample(row, idx, prompt, draws[0]["prediction"], draws[0]["extracted"],
                             flag(ctx, "full_prompts"), spec.sample_prompt_chars)
            correct.append(sample["correct"])
            truncated += prompt.truncated
            unextracted += sample["extracted"] is None
            if mode == "cot":
                sample["reasoning"] = draws[0]["reasoning"]
            if repeats > 1:
                sample["samples"] = draws
                letters.append([d["extracted"] for d in draws])
            samples.append(sample)
        sink.write(samples)
        ctx.advance(len(part))
    metrics, groups, subtasks = v2_accuracy(rows, correct)
    info = {"variant": "longbench_v2", "mode": mode, "templates": template_source,
            "data": {"origin": rec.origin, "location": rec.location},
            "prompt_budget": {"tokens": budget, "rule": rule}, "truncated_prompts": truncated,
            "unextracted_answers": unextracted, "decoding": "greedy (official: temperature 0.1)",
            "scale": "0-1 (official result.py prints 100 x acc, one decimal)"}
    if repeats > 1:
        _merge(v2_sampling(rows, letters), metrics, groups, subtasks)
        info.update(repeats_info(ctx, config.temperature),
                    decoding=f"sampled (--repeats {repeats}); 'acc' is sample 0's (official: temperature 0.1)")
    return TaskOutcome(metrics=metrics, n=len(rows), groups=groups, subtasks=subtasks, info=info)


def _draw(seed: int | None, response: str, reasoning: str, target: str, mode: str) -> dict[str, Any]:
    letter = extract_choice(response)
    draw = {"seed": seed, "prediction": response, "extracted": letter, "correct": letter == target}
    if mode == "cot":
        draw["reasoning"] = reasoning
    return draw


def _merge(sampled: tuple[dict[str, float], dict[str, dict[str, float]], dict[str, dict[str, float]]],
           metrics: dict[str, float], groups: dict[str, dict[str, float]],
           subtasks: dict[str, dict[str, float]]) -> None:
    """Add the @K metrics of `v2_sampling` to `v2_accuracy`'s tables, entry by entry."""
    metrics.update(sampled[0])
    for table, extra in ((groups, sampled[1]), (subtasks, sampled[2])):
        for name, values in extra.items():
            table[name].update(values)
