"""Text classification with verbalised labels (GLUE/CLUE-style): each label is a word or phrase.

In loglikelihood mode (the default) every label word is scored after the prompt and the likeliest wins; in
generative mode (`--task-args mode=generate`) the model answers and the label word found earliest in its answer
is the prediction (none found: unextractable, scored wrong). Metrics: accuracy (with stderr), macro-F1 and MCC.

Repeats (`--repeats K`, K > 1, generative mode only: loglikelihood scoring is deterministic and refuses it): every
row is answered K times, sample k with seed `seed + k` at `evalkit.tasks._repeats.sampling_temperature` (0.7 for
the greedy default), each sample matched and scored (`samples: [{seed, prediction, predicted_label, correct,
response}]` on the record). The headline metrics stay sample 0's; `acc_mean@K`, `acc_pass@K`, `acc_pass@1`,
`acc_maj@K` (the majority label's correctness; unextractable answers do not vote) and `acc_sd@K`
(`score_sampling_metrics` over 0/1 correctness, prefixed with the metric they come from) join them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from evalkit.backends._adapt import as_base_backend
from evalkit.backends._protocol import Backend, BackendBase
from evalkit.errors import ConfigError, DataError, UnsupportedRequest
from evalkit.metrics import mean_stderr
from evalkit.metrics._sampling import score_sampling_metrics
from evalkit.tasks._data import DataSource, Rows, check_data_dir, missing_data_message, read_rows
from evalkit.tasks._kind import RunContext, SampleSink, TaskOutcome
from evalkit.tasks._prompt import render, template_variables
from evalkit.tasks._repeats import generate_repeats, repeat_count, repeats_info
from evalkit.tasks._spec import TaskSpecBase
from evalkit.types import GenConfig, LoglikelihoodRequest, Message

__all__ = ["ClassificationSpec", "macro_f1", "matthews_corrcoef", "run"]

ClassMetric = Literal["acc", "macro_f1", "mcc"]
_TASK_ARGS = {"mode", "max_tokens"}
_SHOWN_SKIPS = 5


class ClassificationSpec(TaskSpecBase):
    """A classification task: one or two text columns, a label column and a verbaliser word per label."""

    kind: Literal["classification"]
    data: DataSource
    eval_split: str = "test"
    text_fields: list[str] = Field(min_length=1, max_length=2)
    label_column: str = "label"
    labels: dict[str, str] = Field(min_length=2)  # raw label value -> verbaliser word
    label_names: list[str] = Field(default_factory=list)  # an integer label i (hub ClassLabel) reads as names[i]
    prompt: str
    target_delimiter: str = ""
    metrics: list[ClassMetric] = Field(default_factory=lambda: list[ClassMetric](["acc", "macro_f1", "mcc"]))

    @field_validator("labels", mode="before")
    @classmethod
    def _string_keys(cls, value: Any) -> Any:
        """YAML reads `0: 不同` with an integer key; labels are compared as text."""
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("labels")
    @classmethod
    def _distinct_words(cls, value: dict[str, str]) -> dict[str, str]:
        words = [w.strip() for w in value.values()]
        duplicated = sorted({w for w in words if words.count(w) > 1})
        if duplicated:
            raise ValueError(f"verbaliser word(s) {', '.join(duplicated)} used for more than one label; "
                             f"give each label its own word")
        if any(not w for w in words):
            raise ValueError("a label has an empty verbaliser word; give it a word")
        return value

    @field_validator("prompt")
    @classmethod
    def _prompt_variables(cls, value: str, info: ValidationInfo) -> str:
        fields = info.data.get("text_fields") or []
        unknown = sorted(template_variables(value) - set(fields))
        if unknown:
            raise ValueError(f"prompt uses unknown variable(s) {', '.join(unknown)}; available: "
                             f"{', '.join(fields)} (the text_fields)")
        return value


@dataclass(frozen=True)
class _Row:
    doc_index: int
    texts: dict[str, str]
    label: str


def _raw_label(spec: ClassificationSpec, value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(spec.label_names):
        return spec.label_names[value]
    return str(value).strip()


def _validate(spec: ClassificationSpec, rows: Rows, warn: Any) -> tuple[list[_Row], int]:
    """The usable rows and how many were skipped (each named with file:line, the first few in full)."""
    out: list[_Row] = []
    skipped = 0
    for index, row in enumerate(rows.rows):
        line = rows.line_numbers[index] if index < len(rows.line_numbers) else index + 1
        missing = [c for c in (*spec.text_fields, spec.label_column) if row.get(c) is None]
        label = "" if missing else _raw_label(spec, row[spec.label_column])
        problem = ""
        if missing:
            problem = f"missing column(s) {', '.join(missing)}"
        elif label not in spec.labels:
            problem = f"label {label!r} is not one of the declared labels ({', '.join(spec.labels)})"
        if problem:
            skipped += 1
            if skipped <= _SHOWN_SKIPS:
                warn(f"{rows.location}:{line}: {problem}; row skipped (fix the row or add the label to labels)")
            continue
        out.append(_Row(index, {c: str(row[c]) for c in spec.text_fields}, label))
    if skipped > _SHOWN_SKIPS:
        warn(f"{rows.location}: {skipped} rows skipped in all ({skipped - _SHOWN_SKIPS} not shown above)")
    return out, skipped


def _mode(spec: ClassificationSpec, ctx: RunContext) -> tuple[str | None, int]:
    unknown = set(ctx.task_args) - _TASK_ARGS
    if unknown:
        raise ConfigError(f"--task-args {', '.join(sorted(unknown))}: not an option of {spec.name}; "
                          f"known: {', '.join(sorted(_TASK_ARGS))}")
    mode = ctx.task_args.get("mode")
    if mode not in (None, "loglikelihood", "generate"):
        raise ConfigError(f"--task-args mode={mode}: {spec.name} has mode=loglikelihood or mode=generate")
    try:
        max_tokens = int(ctx.task_args.get("max_tokens", "32"))
    except ValueError:
        raise ConfigError(f"--task-args max_tokens={ctx.task_args['max_tokens']}: not a whole number") from None
    repeats = repeat_count(ctx)
    if repeats > 1 and mode != "generate":
        raise ConfigError(f"--repeats {repeats}: {spec.name} scores labels by loglikelihood"
                          f"{' (its default mode)' if mode is None else ''}, which is deterministic; add "
                          f"--task-args mode=generate to sample {repeats} answers")
    return mode, max_tokens


def match_label(text: str, words: dict[str, str]) -> str | None:
    """The label whose verbaliser occurs earliest in `text` (the longer word on a tie), or None."""
    found = [(text.find(w.strip()), -len(w.strip()), label) for label, w in words.items() if w.strip() in text]
    return min(found)[2] if found else None


def _score_loglikelihood(spec: ClassificationSpec, prompts: list[str], backend: BackendBase) -> list[dict[str, Any]]:
    labels = list(spec.labels)
    requests = [LoglikelihoodRequest(p, spec.target_delimiter + spec.labels[lab]) for p in prompts for lab in labels]
    results = backend.loglikelihood(requests)
    n = len(labels)
    out = []
    for j in range(len(prompts)):
        lls = [r.logprob for r in results[j * n:(j + 1) * n]]
        best = max(range(n), key=lambda i: (lls[i], -i))
        out.append({"predicted_label": labels[best],
                    "choice_logprobs": {spec.labels[lab]: ll for lab, ll in zip(labels, lls)}})
    return out


def _score_generate(spec: ClassificationSpec, prompts: list[str], backend: BackendBase, max_tokens: int,
                    repeats: int, seed: int) -> list[dict[str, Any]]:
    conversations = [(Message("user", p),) for p in prompts]
    if repeats == 1:  # one greedy answer, unseeded: the requests (and cache keys) of runs without --repeats
        completions = backend.generate(conversations, GenConfig(max_tokens=max_tokens))
        return [{"predicted_label": match_label(c.texts[0], spec.labels), "response": c.texts[0]}
                for c in completions]
    answers = generate_repeats(backend, conversations, GenConfig(max_tokens=max_tokens), repeats=repeats, seed=seed)
    out = []
    for i in range(len(prompts)):
        drawn = [{"seed": seed + k, "predicted_label": match_label(c[i].texts[0], spec.labels),
                  "response": c[i].texts[0]} for k, c in enumerate(answers)]
        out.append({**{k: v for k, v in drawn[0].items() if k != "seed"}, "samples": drawn})
    return out


def _scored_samples(spec: ClassificationSpec, drawn: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    """The K samples of one row as its record lists them: seed, label word, label, correctness, answer."""
    return [{"seed": d["seed"],
             "prediction": None if d["predicted_label"] is None else spec.labels[d["predicted_label"]],
             "predicted_label": d["predicted_label"], "correct": d["predicted_label"] == label,
             "response": d["response"]} for d in drawn]


def _samples(spec: ClassificationSpec, rows: list[_Row], backend: BackendBase, mode: str | None,
             max_tokens: int, ctx: RunContext) -> tuple[list[dict[str, Any]], str]:
    where = f"{spec.source_file or spec.name}: prompt"
    prompts = [render(spec.prompt, row.texts, where=where) for row in rows]
    scored: list[dict[str, Any]] | None = None
    if mode in (None, "loglikelihood"):
        try:
            scored, mode = _score_loglikelihood(spec, prompts, backend), "loglikelihood"
        except UnsupportedRequest:
            if mode == "loglikelihood":
                raise ConfigError(f"--task-args mode=loglikelihood: {backend.identity.model} cannot score text; "
                                  f"use mode=generate") from None
    if scored is None:
        scored, mode = _score_generate(spec, prompts, backend, max_tokens, repeat_count(ctx), ctx.seed), "generate"
    samples = []
    for row, prompt, result in zip(rows, prompts, scored):
        predicted = result.pop("predicted_label")
        if "samples" in result:
            result["samples"] = _scored_samples(spec, result["samples"], row.label)
        samples.append({"id": str(row.doc_index), "doc_index": row.doc_index, "prompt": prompt,
                        "target": spec.labels[row.label], "target_label": row.label,
                        "prediction": spec.labels[predicted] if predicted is not None else None,
                        "predicted_label": predicted, "correct": predicted == row.label,
                        "extracted": predicted is not None, **result})
    return samples, str(mode)


def _classes(gold: Sequence[str], pred: Sequence[str | None]) -> list[str]:
    return sorted({*gold, *(p for p in pred if p is not None)})


def macro_f1(gold: Sequence[str], pred: Sequence[str | None]) -> float:
    """Unweighted mean of per-class F1 over the classes in gold or predicted (scikit-learn's default set).

    An unextractable prediction (None) is a miss for its gold class and is not a class of its own.
    """
    scores = []
    for c in _classes(gold, pred):
        tp = sum(g == c and p == c for g, p in zip(gold, pred))
        fp = sum(g != c and p == c for g, p in zip(gold, pred))
        fn = sum(g == c and p != c for g, p in zip(gold, pred))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(scores) / len(scores) if scores else float("nan")


def matthews_corrcoef(gold: Sequence[str], pred: Sequence[str | None]) -> float:
    """Multi-class MCC (Gorodkin's R_K, as scikit-learn): 0.0 when a marginal is constant.

    An unextractable prediction counts as a predicted class of its own (never equal to a gold label).
    """
    s = len(gold)
    correct = sum(g == p for g, p in zip(gold, pred))
    keys = {*gold, *pred}
    t = {k: sum(g == k for g in gold) for k in keys}
    p = {k: sum(q == k for q in pred) for k in keys}
    cov = correct * s - sum(t[k] * p[k] for k in keys)
    denom = (s * s - sum(v * v for v in p.values())) * (s * s - sum(v * v for v in t.values()))
    return cov / math.sqrt(denom) if denom > 0 else 0.0


def _metrics(spec: ClassificationSpec, samples: list[dict[str, Any]]) -> dict[str, float | None]:
    gold = [s["target_label"] for s in samples]
    pred = [s["predicted_label"] for s in samples]
    acc, se = mean_stderr([1.0 if s["correct"] else 0.0 for s in samples])
    metrics: dict[str, float | None] = {"acc": acc, "acc_stderr": se}
    if "macro_f1" in spec.metrics:
        metrics["macro_f1"] = macro_f1(gold, pred)
    if "mcc" in spec.metrics:
        metrics["mcc"] = matthews_corrcoef(gold, pred)
    if all(s.get("samples") for s in samples):
        sampled = score_sampling_metrics([[float(d["correct"]) for d in s["samples"]] for s in samples],
                                         [[d["predicted_label"] for d in s["samples"]] for s in samples],
                                         prefix="acc")
        metrics.update(sampled)
    return {k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))}


def run(spec: ClassificationSpec, backend: Backend, ctx: RunContext, sink: SampleSink) -> TaskOutcome:
    """Classify every row of the eval split and report accuracy, macro-F1 and MCC."""
    if ctx.data_dir is not None:
        check_data_dir(ctx.data_dir)
    mode, max_tokens = _mode(spec, ctx)
    rows = read_rows(spec.data, subject=spec.name, split=spec.eval_split, data_dir=ctx.data_dir,
                     warn=ctx.warn, record_file=ctx.record_file)
    if rows is None:
        raise DataError(missing_data_message(spec.name, spec.data, ctx.data_dir, [spec.name], spec.eval_split))
    usable, skipped = _validate(spec, rows, ctx.warn)
    if not usable:
        raise DataError(f"{rows.location}: every row was skipped, nothing to score; fix the rows or the task's "
                        f"text_fields/label_column/labels ({spec.source_file or 'the task YAML'})")
    if rows.origin == "demo":
        ctx.warn(f"{spec.name}: using evalkit's small DEMO set ({rows.location}, original sentences, not the real "
                 f"benchmark); pass --data-dir for real numbers")
    if ctx.limit is not None:
        usable = usable[:ctx.limit]
    ctx.set_total(len(usable))
    samples, mode_ran = _samples(spec, usable, as_base_backend(backend), mode, max_tokens, ctx)
    sink.write(samples)
    ctx.advance(len(samples))
    info: dict[str, Any] = {"data_origin": rows.origin, "mode": mode_ran, "skipped_rows": skipped,
                            "labels": dict(spec.labels)}
    repeats = repeat_count(ctx)
    if repeats > 1:
        info.update(repeats_info(ctx, GenConfig().temperature))
    metrics = _metrics(spec, samples)
    if mode_ran == "generate":
        info["unextractable"] = sum(1 for s in samples if not s["extracted"])
        metrics["unextractable_rate"] = info["unextractable"] / len(samples)
    return TaskOutcome(metrics=metrics, n=len(samples), info=info)
