"""Open QA on the user's own file (`open_qa`): one generated answer per row, graded by an LLM judge.

The data is a local CSV or JSON Lines file (`data:`, relative to the task YAML, else to `--data-dir`, else
to the working directory) with a question column and, optionally, a reference-answer column. Each row's
prompt is the YAML's `prompt` template filled with the row's columns (``{question}`` and any other column);
the answer is generated greedily with `max_tokens` (``--task-args max_tokens=N`` overrides it) and its
thinking trace is stripped (`evalkit.tasks._thinking`). A row whose question is empty is skipped and counted
with its file:row.

Judge-free metrics (always): `answer_chars` (mean answer length), `empty_rate` (answers empty after
stripping the thought) and, where a reference exists, `exact_match` (equal after lowercasing and removing
punctuation and whitespace, `normalize_zh`), `qa_f1` and `rouge_l` on jieba words (`qa_f1_zh`, `rouge_l_zh`,
which read English words as words too), averaged over the rows that have one.

Judge: when the run asks for judging (`--judge-model M`) or the YAML's `judge:` names a definition with a
default model, every answer goes through the task judge step (`evalkit.tasks._task_judge`): the judge reads
the question, the answer and the reference (when the row has one); the default definition is `rubric-qa`.

Repeats (`--repeats K`, K > 1): every row is answered K times, sample k with seed `seed + k` at
`evalkit.tasks._repeats.sampling_temperature` (0.7 for the greedy default). Each sample gets the reference
metrics (`samples: [{seed, prediction, exact_match, qa_f1, rouge_l}]` on the record); the headline metrics stay
sample 0's, and `exact_match_mean@K`, `exact_match_pass@K`, `exact_match_pass@1`, `exact_match_maj@K` (the
majority of the normalised answers) and `exact_match_sd@K` (`score_sampling_metrics`, prefixed with the metric
they come from) join them for the rows with a reference. The judge grades sample 0 only
(`info["judged_samples"] = 1`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from evalkit.backends._protocol import Backend
from evalkit.errors import ConfigError, DataError
from evalkit.metrics import mean_stderr
from evalkit.metrics._sampling import score_sampling_metrics
from evalkit.records import JudgedSample, register_sample_type
from evalkit.tasks._data import read_file_rows
from evalkit.tasks._kind import RunContext, SampleSink, TaskOutcome
from evalkit.tasks._repeats import generate_repeats, repeat_count, repeats_info, sample_entries
from evalkit.tasks._spec import TaskSpecBase
from evalkit.tasks._task_judge import JudgeInput, start_judging
from evalkit.tasks._thinking import split_thinking
from evalkit.types import Completion, GenConfig, Message

__all__ = ["DEFAULT_JUDGE", "OpenQaSpec", "load_rows", "run"]

DEFAULT_JUDGE = "rubric-qa"  # the judge when neither --judge nor the YAML names one
_TASK_ARGS = {"max_tokens"}
register_sample_type("open_qa", JudgedSample)


class OpenQaSpec(TaskSpecBase):
    """Open questions from a local CSV/JSONL file, answered by the model and graded by a judge."""

    kind: Literal["open_qa"]
    data: str
    question_column: str = "question"
    reference_column: str | None = None
    id_column: str | None = None
    prompt: str = "{question}"
    system_prompt: str | None = None
    max_tokens: int = Field(default=512, ge=1)


def _data_path(spec: OpenQaSpec, ctx: RunContext) -> Path:
    path = Path(spec.data).expanduser()
    candidates = [path] if path.is_absolute() else [
        *([Path(spec.source_file).parent / path] if spec.source_file else []),
        *([Path(ctx.data_dir) / path] if ctx.data_dir is not None else []), path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DataError(f"{spec.name}: data file {spec.data} not found (looked in {', '.join(map(str, candidates))}); "
                    f"fix `data:` in {spec.source_file or 'the task YAML'}")


def load_rows(spec: OpenQaSpec, ctx: RunContext) -> tuple[list[dict[str, Any]], str, list[str]]:
    """The usable rows (each with `_where`, `_index`), the file read, and the rows skipped ("file:row: why")."""
    path = _data_path(spec, ctx)
    rows, lines = read_file_rows(path, warn=ctx.warn, record_file=ctx.record_file)
    for column in (spec.question_column, spec.reference_column, spec.id_column):
        if column is not None and column not in rows[0]:
            raise DataError(f"{path}: no column '{column}' (has {', '.join(map(str, rows[0]))}); fix the file "
                            f"or the task's column names")
    kept, skipped = [], []
    for index, row in enumerate(rows):
        where = f"{path}:{lines[index] if index < len(lines) else index + 1}"
        if not str(row.get(spec.question_column) or "").strip():
            skipped.append(f"{where}: field '{spec.question_column}' is empty")
            ctx.warn(f"{where}: field '{spec.question_column}' is empty; row skipped (fill it to include it)")
            continue
        kept.append({**row, "_where": where, "_index": index})
    if not kept:
        raise DataError(f"{spec.name}: every row of {path} was skipped; fill the '{spec.question_column}' column")
    return kept, str(path), skipped


def _prompt(spec: OpenQaSpec, row: dict[str, Any]) -> tuple[Message, ...]:
    fields = {k: "" if v is None else str(v) for k, v in row.items() if not k.startswith("_")}
    try:
        text = spec.prompt.format_map(fields)
    except (KeyError, IndexError, ValueError) as err:
        raise ConfigError(f"{spec.source_file or spec.name}: field 'prompt' cannot be filled from {row['_where']} "
                          f"({err!r}); use only {{column}} names of the data file") from None
    system = (Message("system", spec.system_prompt),) if spec.system_prompt else ()
    return (*system, Message("user", text))


def _reference_scores(answer: str, reference: str) -> dict[str, float]:
    from evalkit.metrics import qa_f1_zh, rouge_l_zh
    from evalkit.metrics._longbench import normalize_zh

    return {"exact_match": float(bool(answer) and normalize_zh(answer) == normalize_zh(reference)),
            "qa_f1": qa_f1_zh(answer, reference) if answer else 0.0,
            "rouge_l": rouge_l_zh(answer, reference) if answer else 0.0}


def _sample(spec: OpenQaSpec, row: dict[str, Any], conv: tuple[Message, ...], text: str) -> dict[str, Any]:
    split = split_thinking(text)
    reference = str(row.get(spec.reference_column) or "").strip() if spec.reference_column else ""
    sample: dict[str, Any] = {
        "id": str(row[spec.id_column]) if spec.id_column else str(row["_index"]), "subset": None,
        "doc_index": row["_index"], "prompt": [{"role": m.role, "content": m.content} for m in conv],
        "target": reference or None, "prediction": split.answer, "raw_output": text,
        "thinking": split.thinking or None, "question": str(row[spec.question_column]),
        "reference": reference or None}
    if reference:
        sample.update(_reference_scores(split.answer, reference))
    return sample


def _add_repeats(samples: list[dict[str, Any]], answers: Sequence[Sequence[Completion]], seed: int) -> None:
    """Give each record its K samples: seed, answer (thinking stripped) and its reference metrics."""
    for i, sample in enumerate(samples):
        reference = sample["reference"]
        score = partial(_reference_scores, reference=reference) if reference else _no_scores
        sample["samples"] = sample_entries(answers, i, seed, score)


def _no_scores(answer: str) -> dict[str, Any]:
    return {}


def _exact_match_sampling(referenced: Sequence[dict[str, Any]]) -> dict[str, float]:
    """`exact_match_<metric>@K` over the samples of the rows with a reference; a sample votes for its
    normalised answer (an empty one does not vote)."""
    from evalkit.metrics._longbench import normalize_zh

    if not referenced or not all(r.get("samples") for r in referenced):
        return {}
    return score_sampling_metrics([[s["exact_match"] for s in r["samples"]] for r in referenced],
                                  [[normalize_zh(s["prediction"]) or None for s in r["samples"]] for r in referenced],
                                  prefix="exact_match")


def _outcome(spec: OpenQaSpec, samples: list[dict[str, Any]], location: str, skipped: list[str]) -> TaskOutcome:
    metrics: dict[str, float | None] = {
        "answer_chars": sum(len(s["prediction"]) for s in samples) / len(samples),
        "empty_rate": sum(not s["prediction"].strip() for s in samples) / len(samples)}
    referenced = [s for s in samples if s["reference"]]
    for name in ("exact_match", "qa_f1", "rouge_l") if referenced else ():
        metrics[name], metrics[f"{name}_stderr"] = mean_stderr([s[name] for s in referenced])
    metrics.update(_exact_match_sampling(referenced))
    info = {"data_origin": "local", "location": location, "skipped_rows": len(skipped), "skipped": skipped[:20],
            "with_reference": len(referenced),
            "judge": f"not run: pass --judge-model M to grade with '{spec.judge.definition if spec.judge else DEFAULT_JUDGE}'"}
    return TaskOutcome(metrics={k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))},
                       n=len(samples), info=info)


def _max_tokens(spec: OpenQaSpec, ctx: RunContext) -> int:
    unknown = sorted(set(ctx.task_args) - _TASK_ARGS)
    if unknown:
        raise ConfigError(f"--task-args {unknown[0]}: not an option of {spec.name}; known: max_tokens")
    value = ctx.task_args.get("max_tokens", str(spec.max_tokens))
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"--task-args max_tokens={value}: give a positive whole number")
    return int(value)


def run(spec: OpenQaSpec, backend: Backend, ctx: RunContext, sink: SampleSink) -> TaskOutcome:
    """Answer every row (greedily, or K samples with --repeats K), score against the reference where present,
    and judge sample 0 when asked."""
    max_tokens = _max_tokens(spec, ctx)
    repeats = repeat_count(ctx)
    rows, location, skipped = load_rows(spec, ctx)
    if ctx.limit is not None:
        rows = rows[:ctx.limit]
    judging = start_judging(spec, ctx, backend.identity.model, fallback=DEFAULT_JUDGE)
    ctx.set_total(len(rows) * (repeats + (1 if judging is not None and judging.counts_progress else 0)))
    conversations = [_prompt(spec, row) for row in rows]
    config = GenConfig(temperature=0.0, max_tokens=max_tokens, seed=ctx.seed)
    answers = generate_repeats(backend, conversations, config, repeats=repeats, seed=ctx.seed)
    samples = [_sample(spec, row, conv, c.texts[0]) for row, conv, c in zip(rows, conversations, answers[0])]
    if repeats > 1:
        _add_repeats(samples, answers, ctx.seed)
    ctx.advance(len(samples) * repeats)
    if judging is not None:  # sample 0 only: K answers would multiply the judge calls
        judging.judge([JudgeInput(s["id"], spec.name, s["question"], s["prediction"], s["reference"])
                       for s in samples], samples)
    sink.write(samples)
    outcome = _outcome(spec, samples, location, skipped)
    if repeats > 1:
        info = {**outcome.info, **repeats_info(ctx, config.temperature)}
        outcome = replace(outcome, info={**info, "judged_samples": 1} if judging is not None else info)
    if judging is None:
        return outcome
    metrics, summary = judging.outcome()
    return replace(outcome, metrics={**outcome.metrics, **metrics}, info={**outcome.info, "judge": summary})
