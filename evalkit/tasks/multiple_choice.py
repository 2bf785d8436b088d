"""Multiple-choice tasks (C-Eval, CMMLU, user CSV/JSONL): few-shot prompts, letter loglikelihoods, accuracy.

Logic only; the benchmark's subjects, prompt text and data locations live in the task YAML.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from evalkit.backends._adapt import as_base_backend
from evalkit.backends._protocol import Backend
from evalkit.errors import ConfigError, DataError
from evalkit.metrics import aggregate_groups, macro_mean_stderr, mean_stderr
from evalkit.tasks._data import (
    DataSource,
    DecodeNotes,
    Rows,
    check_data_dir,
    local_paths,
    missing_data_message,
    read_rows,
    read_text_file,
)
from evalkit.tasks._kind import RunContext, SampleSink, TaskOutcome
from evalkit.tasks._mc_chat import CHAT_TASK_ARGS, chat_turns, parse_chat_options, render_for_scoring
from evalkit.tasks._mc_generative import MC_TASK_ARGS, parse_mc_options
from evalkit.tasks._mc_judge import McJudging
from evalkit.tasks._mc_modes import ModeState, mode_info, mode_metrics, open_extractor, score_subject
from evalkit.tasks._prompt import render, template_variables
from evalkit.tasks._spec import TaskSpecBase

__all__ = ["MultipleChoiceSpec", "PromptStyle", "build_prompt", "run"]

_TASK_ARGS = {"prompt_style", "fewshot_sampler"} | MC_TASK_ARGS | CHAT_TASK_ARGS
MetricName = Literal["acc", "acc_norm"]
_SUBJECT_VARIABLES = frozenset({"subject", "subject_zh", "subject_name"})
_QUESTION_VARIABLES = _SUBJECT_VARIABLES | {"question", "choices", "answer"}  # + one variable per option letter


class PromptStyle(BaseModel):
    """How one question is shown. `description` and `doc_to_text` are jinja2 templates."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    description: str = ""
    doc_to_text: str
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"

    @field_validator("description", "doc_to_text")
    @classmethod
    def _template_ok(cls, value: str, info: ValidationInfo) -> str:
        """Catch a template's syntax error or misspelt variable when the task file loads, not mid-run."""
        known = _SUBJECT_VARIABLES if info.field_name == "description" else _QUESTION_VARIABLES
        unknown = sorted(v for v in template_variables(value)
                         if v not in known and not (len(v) == 1 and v.isupper()))
        if unknown:
            raise ValueError(f"unknown template variable(s) {', '.join(unknown)}; available: "
                             f"{', '.join(sorted(known))}" + ("" if info.field_name == "description" else
                                                              " and the option letters (A, B, ...)"))
        return value


class Columns(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    question: str = "question"
    choices: list[str] = ["A", "B", "C", "D"]
    answer: str = "answer"


class SubjectInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name_zh: str = ""
    groups: list[str] = []


class MultipleChoiceSpec(TaskSpecBase):
    """A multiple-choice task answered by the loglikelihood of each option letter."""

    kind: Literal["multiple_choice"]
    data: DataSource
    eval_split: str = "test"
    fewshot_split: str | None = None
    columns: Columns = Columns()
    letters: list[str] = Field(default_factory=lambda: ["A", "B", "C", "D"])
    num_fewshot: int = Field(default=0, ge=0)
    fewshot_sampler: Literal["first_n", "random"] = "first_n"
    default_prompt_style: str = "default"
    prompt_styles: dict[str, PromptStyle]
    metrics: list[MetricName] = Field(default_factory=lambda: list[MetricName](["acc", "acc_norm"]))
    subjects: dict[str, SubjectInfo] = Field(default_factory=dict)
    subjects_file: str | None = None  # a subject mapping JSON under the data dir (C-Eval or CMMLU layout)
    group_order: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> MultipleChoiceSpec:
        if self.default_prompt_style not in self.prompt_styles:
            raise ValueError(f"default_prompt_style '{self.default_prompt_style}' is not one of prompt_styles "
                             f"({', '.join(self.prompt_styles)})")
        if len(self.letters) != len(self.columns.choices):
            raise ValueError("letters and columns.choices must have the same length")
        if self.num_fewshot and not self.fewshot_split:
            raise ValueError("num_fewshot > 0 needs a fewshot_split")
        return self

    def subset_names(self) -> list[str]:
        return list(self.subjects)


@dataclass(frozen=True)
class Question:
    """One validated row."""

    doc_index: int
    question: str
    options: tuple[str, ...]
    answer: str
    raw: dict[str, Any]


def _validate_rows(spec: MultipleChoiceSpec, rows: Rows, warn: Any) -> tuple[list[Question], int]:
    out, skipped = [], 0
    cols = spec.columns
    for index, row in enumerate(rows.rows):
        line = rows.line_numbers[index] if index < len(rows.line_numbers) else index + 1
        missing = [c for c in (cols.question, *cols.choices, cols.answer) if row.get(c) is None]
        problem = ""
        if missing:
            problem = f"missing column(s) {', '.join(missing)}"
        elif not str(row[cols.question]).strip():
            problem = "empty question"
        elif str(row[cols.answer]).strip() not in spec.letters:
            problem = f"answer {str(row[cols.answer])!r} is not one of {'/'.join(spec.letters)}"
        if problem:
            skipped += 1
            warn(f"{rows.location}:{line}: {problem}; row skipped (fix the row to include it)")
            continue
        out.append(Question(index, str(row[cols.question]), tuple(str(row[c]) for c in cols.choices),
                            str(row[cols.answer]).strip(), row))
    return out, skipped


def _variables(spec: MultipleChoiceSpec, subject: str, q: Question | None) -> dict[str, Any]:
    info = spec.subjects.get(subject, SubjectInfo())
    variables: dict[str, Any] = {"subject": subject, "subject_zh": info.name_zh or subject,
                                 "subject_name": subject.replace("_", " ")}
    if q is not None:
        variables.update(question=q.question, choices=list(q.options), answer=q.answer)
        variables.update(dict(zip(spec.letters, q.options)))
    return variables


def build_prompt(spec: MultipleChoiceSpec, style: PromptStyle, subject: str, shots: Sequence[Question],
                 q: Question) -> str:
    """description + Σ(example + delimiter + answer + fewshot delimiter) + question (lm-eval's layout)."""
    where = f"{spec.source_file or spec.name}: prompt"
    parts = [render(style.description, _variables(spec, subject, None), where=where)]
    for shot in shots:
        parts.append(render(style.doc_to_text, _variables(spec, subject, shot), where=where)
                     + style.target_delimiter + shot.answer + style.fewshot_delimiter)
    parts.append(render(style.doc_to_text, _variables(spec, subject, q), where=where))
    return "".join(parts)


def _options(spec: MultipleChoiceSpec, ctx: RunContext) -> tuple[PromptStyle, str, int, str]:
    unknown = set(ctx.task_args) - _TASK_ARGS
    if unknown:
        raise ConfigError(f"--task-args {', '.join(sorted(unknown))}: not an option of {spec.name}; "
                          f"known: {', '.join(sorted(_TASK_ARGS))}")
    style_name = ctx.task_args.get("prompt_style", spec.default_prompt_style)
    if style_name not in spec.prompt_styles:
        raise ConfigError(f"--task-args prompt_style={style_name}: {spec.name} has "
                          f"{', '.join(spec.prompt_styles)}")
    sampler = ctx.task_args.get("fewshot_sampler", spec.fewshot_sampler)
    if sampler not in ("first_n", "random"):
        raise ConfigError(f"--task-args fewshot_sampler={sampler}: use first_n or random")
    shots = spec.num_fewshot if ctx.num_fewshot is None else ctx.num_fewshot
    return spec.prompt_styles[style_name], style_name, shots, sampler


def _subjects_from_file(spec: MultipleChoiceSpec, ctx: RunContext) -> dict[str, SubjectInfo]:
    """Read subjects from a mapping file: {subject: [en, zh, category]} (C-Eval, FinEval) or
    {subject: {"name_zh": ..., "categories": [...]}} (CMMLU)."""
    if not spec.subjects_file:
        return {}
    path = Path(spec.subjects_file) if ctx.data_dir is None else ctx.data_dir / spec.subjects_file
    if not path.is_file():
        fix = "pass --data-dir DIR holding it" if ctx.data_dir is None else "put it there"
        raise DataError(f"{spec.name}: subjects_file not found: looked for {path.absolute()}; {fix}, or list "
                        f"subjects in {spec.source_file or 'the task YAML'}")
    try:
        mapping = json.loads(read_text_file(path, warn=ctx.warn, record_file=ctx.record_file))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    table: dict[str, SubjectInfo] = {}
    for subject, value in mapping.items():
        if isinstance(value, list) and len(value) >= 3:
            table[subject] = SubjectInfo(name_zh=str(value[1]), groups=[str(value[2])])
        elif isinstance(value, dict):
            table[subject] = SubjectInfo(name_zh=str(value.get("name_zh", "")),
                                         groups=[str(g) for g in value.get("categories", [])])
        else:
            raise DataError(f"{path}: entry '{subject}' is neither [en, zh, category] nor "
                            f"{{name_zh, categories}}")
    return table


def _select_subjects(spec: MultipleChoiceSpec, ctx: RunContext) -> list[str]:
    names = spec.subset_names() or [spec.name]
    if not ctx.subsets:
        return names
    unknown = [s for s in ctx.subsets if s not in names]
    if unknown:
        sample = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise ConfigError(f"{spec.name}: unknown subset(s) {', '.join(unknown)}; available: {sample} "
                          f"(evalkit tasks lists them)")
    return list(ctx.subsets)


class _SubjectData:
    def __init__(self, questions: list[Question], shots: list[Question], origin: str, skipped: int,
                 location: str) -> None:
        self.questions, self.shots, self.origin, self.skipped = questions, shots, origin, skipped
        self.location = location


def _few_shots(spec: MultipleChoiceSpec, ctx: RunContext, subject: str, rows: Rows, num_shots: int,
               sampler: str) -> tuple[list[Question], int]:
    """The few-shot examples of one subject, and how many rows of its few-shot file were skipped."""
    if not (num_shots and spec.fewshot_split):
        return [], 0
    shot_rows = read_rows(spec.data, subject=subject, split=spec.fewshot_split, data_dir=ctx.data_dir,
                          prefer=rows.origin, warn=ctx.warn, record_file=ctx.record_file)
    if shot_rows is None:
        looked = local_paths(spec.data, ctx.data_dir, [subject], spec.fewshot_split) if rows.origin == "local" else []
        where = f"looked for {looked[0]}" if looked else f"none next to {rows.location}"
        raise DataError(f"{spec.name}:{subject}: no '{spec.fewshot_split}' split for few-shot examples ({where}); "
                        f"add it or pass --num-fewshot 0")
    pool, bad = _validate_rows(spec, shot_rows, ctx.warn)
    if sampler == "random":
        pool = random.Random(ctx.seed).sample(pool, len(pool))
    if len(pool) < num_shots:
        ctx.warn(f"{spec.name}:{subject}: only {len(pool)} few-shot examples available (asked for {num_shots})")
    return pool[:num_shots], bad


def _load_subjects(spec: MultipleChoiceSpec, ctx: RunContext, subjects: list[str], num_shots: int,
                   sampler: str) -> tuple[dict[str, _SubjectData], str, list[str]]:
    """Data of each subject found (all from one origin), the origin, and the subjects not found.

    A subject whose rows were all skipped is left out with a warning; when that leaves nothing, the task
    fails with a DataError naming the files, instead of finishing with n = 0.
    """
    loaded: dict[str, _SubjectData] = {}
    origin: Any = None
    missing: list[str] = []
    unusable: list[str] = []
    for subject in subjects:
        rows = read_rows(spec.data, subject=subject, split=spec.eval_split, data_dir=ctx.data_dir,
                         prefer=origin, warn=ctx.warn, record_file=ctx.record_file)
        if rows is None:
            missing.append(subject)
            continue
        origin = rows.origin
        questions, skipped = _validate_rows(spec, rows, ctx.warn)
        if not questions:
            unusable.append(rows.location)
            ctx.warn(f"{rows.location}: all {len(rows.rows)} rows were skipped (see the warnings above); "
                     f"subject {subject} left out")
            continue
        shots, bad_shots = _few_shots(spec, ctx, subject, rows, num_shots, sampler)
        if ctx.limit is not None:
            questions = questions[:ctx.limit]
        loaded[subject] = _SubjectData(questions, shots, rows.origin, skipped + bad_shots, rows.location)
    if unusable and not loaded:
        extra = len(unusable) - 1
        more = f" (and {extra} more file{'s' if extra > 1 else ''})" if extra else ""
        raise DataError(f"{spec.name}: every row of {unusable[0]}{more} was skipped, nothing to score; fix the "
                        f"rows or the task's columns/letters ({spec.source_file or 'the task YAML'})")
    return loaded, str(origin), missing


def _data_warnings(spec: MultipleChoiceSpec, ctx: RunContext, loaded: dict[str, _SubjectData], origin: str,
                   missing: list[str]) -> None:
    """Say when the run is on the demo set, or when subjects were not found, with the paths looked for."""
    looked = local_paths(spec.data, ctx.data_dir, missing or list(loaded), spec.eval_split)
    if origin == "demo":
        searched = f" (looked for {looked[0]}{' and others' if len(looked) > 1 else ''})" if looked else ""
        subjects = f"{len(loaded)} subject{'' if len(loaded) == 1 else 's'}"
        ctx.warn(f"{spec.name}: using evalkit's small DEMO set ({subjects} of original questions, "
                 f"not the real benchmark){searched}; pass --data-dir for real numbers")
    elif missing and origin == "local":
        shown = ", ".join(str(p) for p in looked[:3]) + (", ..." if len(looked) > 3 else "")
        ctx.warn(f"{spec.name}: {len(missing)} subject(s) not found in the data dir, skipped (looked for "
                 f"{shown}); add the files or select subsets with {spec.name}:SUBJECT")


def run(spec: MultipleChoiceSpec, backend: Backend, ctx: RunContext, sink: SampleSink) -> TaskOutcome:
    """Score every question of the selected subjects and aggregate by subject and group."""
    if ctx.data_dir is not None:
        check_data_dir(ctx.data_dir)
    style, style_name, num_shots, sampler = _options(spec, ctx)
    notes = DecodeNotes(ctx.warn)  # one line for many GB18030 files; shares ctx's record of files read
    data_ctx = dataclasses.replace(ctx, warn=notes.warn)
    try:
        if spec.subjects_file:
            spec = spec.model_copy(update={"subjects": {**_subjects_from_file(spec, data_ctx), **spec.subjects}})
        subjects = _select_subjects(spec, ctx)
        loaded, origin, missing = _load_subjects(spec, data_ctx, subjects, num_shots, sampler)
    finally:
        notes.flush()
    if not loaded:
        raise DataError(missing_data_message(spec.name, spec.data, ctx.data_dir, subjects, spec.eval_split))
    _data_warnings(spec, ctx, loaded, origin, missing)
    ctx.set_total(sum(len(d.questions) for d in loaded.values()))
    state = ModeState(parse_mc_options(ctx.task_args, repeats=ctx.repeats, seed=ctx.seed),
                      chat=parse_chat_options(ctx.task_args))
    state.extractor = open_extractor(state.options.extractor, ctx.cache_path)
    kept: dict[str, list[dict[str, Any]]] = {}
    judge = McJudging(spec, ctx, backend.identity.model, sum(len(d.questions) for d in loaded.values()))
    for subject, data in loaded.items():
        samples = _score_subject(spec, style, subject, data, backend, state)
        judge.subject(state.options.mode, data.questions, samples, spec.letters)
        kept[subject] = [{k: v for k, v in s.items() if k not in ("prompt", "messages")} for s in samples]
        sink.write(samples)
        ctx.advance(len(samples))
    outcome = _outcome(spec, kept, loaded, origin, style_name, num_shots, state)
    outcome.info.update(_missing_info(ctx, missing))
    return judge.finish(outcome)


def _missing_info(ctx: RunContext, missing: list[str]) -> dict[str, Any]:
    """A count of subjects not found; names only for those the user asked for by name (`task:subset`), so a
    demo run's results.json is not mostly a list of absent subjects."""
    info: dict[str, Any] = {"missing_subjects_count": len(missing)}
    asked = [s for s in missing if s in ctx.subsets]
    if asked:
        info["missing_subjects"] = asked
    return info


def _score_subject(spec: MultipleChoiceSpec, style: PromptStyle, subject: str, data: _SubjectData,
                   backend: Backend, state: ModeState) -> list[dict[str, Any]]:
    where = f"{spec.source_file or spec.name}: prompt"
    header = render(style.description, _variables(spec, subject, None), where=where)
    build: Any = lambda q: build_prompt(spec, style, subject, data.shots, q)
    delimiter = style.target_delimiter
    if state.chat.apply_chat_template:
        shots = [(render(style.doc_to_text, _variables(spec, subject, s), where=where), s.answer) for s in data.shots]
        build = lambda q: render_for_scoring(backend, chat_turns(
            header, shots, render(style.doc_to_text, _variables(spec, subject, q), where=where),
            multiturn=state.chat.fewshot_as_multiturn, target_delimiter=style.target_delimiter,
            fewshot_delimiter=style.fewshot_delimiter))
        delimiter = ""  # lm-eval scores the letter right after the generation prompt (no gen_prefix)
    return score_subject(data.questions, build,
                         letters="".join(spec.letters), delimiter=delimiter, subject=subject,
                         header=header, shots=data.shots, backend=as_base_backend(backend), state=state,
                         task=spec.name)


def _outcome(spec: MultipleChoiceSpec, kept: dict[str, list[dict[str, Any]]], loaded: dict[str, _SubjectData],
             origin: str, style_name: str, num_shots: int, state: ModeState) -> TaskOutcome:
    per_subject = {subject: [1.0 if s["correct"] else 0.0 for s in samples] for subject, samples in kept.items()}
    pooled = [v for vals in per_subject.values() for v in vals]
    everything = [s for samples in kept.values() for s in samples]
    acc, acc_se = mean_stderr(pooled)
    macro, macro_se = macro_mean_stderr(list(per_subject.values()))
    metrics: dict[str, float | None] = {"acc": acc, "acc_stderr": acc_se, "acc_macro": macro,
                                        "acc_macro_stderr": macro_se}
    if "acc_norm" in spec.metrics and state.options.mode not in ("generate", "cot"):
        norm, norm_se = mean_stderr([1.0 if s.get("correct_norm", s["correct"]) else 0.0 for s in everything])
        metrics.update(acc_norm=norm, acc_norm_stderr=norm_se)
    metrics.update(mode_metrics(everything, state))
    subtasks: dict[str, dict[str, float | None]] = {}
    for subject, vals in per_subject.items():
        m, se = mean_stderr(vals)
        subtasks[subject] = {"acc": m, "acc_stderr": se, "n": len(vals), **mode_metrics(kept[subject], state)}
    members: dict[str, list[str]] = {}
    for subject in per_subject:
        for group in spec.subjects.get(subject, SubjectInfo()).groups:
            members.setdefault(group, []).append(subject)
    order = spec.group_order or sorted(members)
    groups = aggregate_groups(per_subject, {g: members[g] for g in order if g in members})
    for group, table in groups.items():
        table.update(mode_metrics([s for subject in members.get(group, []) for s in kept[subject]], state))
    info: dict[str, Any] = {
        "data_origin": origin, "prompt_style": style_name, "num_fewshot": num_shots,
        "skipped_rows": sum(d.skipped for d in loaded.values()), "subjects": len(per_subject),
        **mode_info(everything, state)}
    return TaskOutcome(metrics={k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))},
                       n=len(pooled), groups=groups, subtasks=subtasks, info=info)
