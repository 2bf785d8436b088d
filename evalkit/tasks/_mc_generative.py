"""Generative multiple choice: the `generate` and `cot` modes of every multiple-choice task.

The multiple-choice kind parses its --task-args with `parse_mc_options`, and for a generative mode calls
`run_generative` once per subject and `generative_metrics` / `generative_info` on the pooled samples.

One question makes one generation per repeat (`--repeats K`, seeds `seed + k` for sample index k, recorded)
and, with `circular=true`, one more per extra rotation of its options (sample 0's seed). Every output is
split into thinking and answer (`_thinking`), the answer read by the extraction cascade (`_answer_extraction`),
and the unreadable ones optionally sent to an extractor model. Sample 0 under the original order is what
`correct` (and so `acc`) scores; maj@K / pass@K / mean@K read the K samples, `acc_circular` the rotations.

Examples:
    >>> parse_mc_options({"mode": "cot", "repeats": "4"}).generation_tokens
    1024
    >>> parse_mc_options({"mode": "cot"}, repeats=4).temperature
    0.7
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from evalkit.errors import ConfigError
from evalkit.metrics._aggregate import mean_stderr
from evalkit.metrics._sampling import majority_letter, sampling_metrics
from evalkit.tasks._answer_extraction import Extraction, extract_answer, extract_with_model
from evalkit.tasks._circular import acc_circular, check_letters, rotations
from evalkit.tasks._mc_prompts import Exemplar, Language, build_conversation, detect_language, format_question
from evalkit.tasks._repeats import SAMPLING_TEMPERATURE
from evalkit.tasks._thinking import DEFAULT_CLOSE, DEFAULT_OPEN, ThinkingSplit, count_tokens, split_thinking
from evalkit.types import Completion, Conversation, GenConfig

if TYPE_CHECKING:
    from evalkit.backends._protocol import Backend

__all__ = ["DEFAULT_MAX_TOKENS", "MC_TASK_ARGS", "MCQuestion", "McOptions", "generative_info",
           "generative_metrics", "parse_mc_options", "run_generative"]

Mode = Literal["loglikelihood", "generate", "cot"]
MODES: tuple[Mode, ...] = ("loglikelihood", "generate", "cot")
# generate: a letter and a short line; cot: a few hundred tokens of reasoning (reasoning models: set
# max_tokens=8192 or more, their thought alone often takes thousands).
DEFAULT_MAX_TOKENS: dict[str, int] = {"generate": 32, "cot": 1024}
MC_TASK_ARGS = frozenset({"mode", "max_tokens", "temperature", "top_p", "circular", "extractor", "think_open",
                          "think_close", "language", "repeats"})


class MCQuestion(Protocol):
    """What the generative mode reads of a question (multiple_choice.Question has these attributes)."""

    @property
    def doc_index(self) -> int: ...
    @property
    def question(self) -> str: ...
    @property
    def options(self) -> tuple[str, ...]: ...
    @property
    def answer(self) -> str: ...
    @property
    def raw(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class McOptions:
    """The mode options of a multiple-choice run. `mode=None`: loglikelihood where the backend can score,
    else generate (the caller decides and calls `resolved`)."""

    mode: Mode | None = None
    max_tokens: int | None = None
    repeats: int = 1
    temperature: float = 0.0
    top_p: float | None = None
    circular: bool = False
    extractor: str | None = None
    think_open: str = DEFAULT_OPEN
    think_close: str = DEFAULT_CLOSE
    language: Language | None = None
    seed: int = 0

    @property
    def generation_tokens(self) -> int:
        return self.max_tokens or DEFAULT_MAX_TOKENS.get(self.mode or "generate", 32)

    def resolved(self, mode: Mode) -> McOptions:
        """These options with the automatic mode settled."""
        return self if self.mode is not None else replace(self, mode=mode)


def _flag_int(args: Mapping[str, str], key: str, minimum: int) -> int | None:
    if key not in args:
        return None
    try:
        value = int(args[key])
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ConfigError(f"--task-args {key}={args[key]}: must be an integer >= {minimum}")
    return value


def _flag_float(args: Mapping[str, str], key: str, low: float, high: float) -> float | None:
    if key not in args:
        return None
    try:
        value = float(args[key])
    except ValueError:
        value = low - 1.0
    if not low <= value <= high:
        raise ConfigError(f"--task-args {key}={args[key]}: must be a number in [{low:g}, {high:g}]")
    return value


def _flag_bool(args: Mapping[str, str], key: str) -> bool:
    value = args.get(key, "false").strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"--task-args {key}={args[key]}: use true or false")
    return value in ("true", "1", "yes")


def parse_mc_options(task_args: Mapping[str, str], *, repeats: int | None = None, seed: int = 0) -> McOptions:
    """Validate the mode options among `task_args` (other keys are the caller's) and `--repeats`.

    Raises:
        ConfigError: one line naming the flag and the fix (unknown mode, repeats < 1, repeats with
            loglikelihood, a bad number, an extractor or thinking markers outside a generative mode).
    """
    mode = task_args.get("mode")
    if mode is not None and mode not in MODES:
        raise ConfigError(f"--task-args mode={mode}: unknown mode; use loglikelihood, generate or cot")
    count = repeats if repeats is not None else _flag_int(task_args, "repeats", 1) or 1
    if count < 1:
        raise ConfigError(f"--repeats {count}: samples per question must be at least 1; use --repeats 1 or more")
    if count > 1 and mode == "loglikelihood":
        raise ConfigError(f"--repeats {count}: loglikelihood mode is deterministic; add --task-args mode=generate "
                          f"or mode=cot to sample {count} answers")
    generative_only = [k for k in ("extractor", "max_tokens", "temperature", "top_p", "think_open", "think_close")
                       if k in task_args]
    if mode == "loglikelihood" and generative_only:
        raise ConfigError(f"--task-args {generative_only[0]}: only applies to mode=generate or mode=cot; "
                          f"drop it or change the mode")
    language = task_args.get("language")
    if language is not None and language not in ("zh", "en"):
        raise ConfigError(f"--task-args language={language}: use zh or en (default: from the question text)")
    temperature = _flag_float(task_args, "temperature", 0.0, 2.0)
    extractor = task_args.get("extractor") or None
    return McOptions(
        mode=mode,  # narrowed to Mode by the MODES check above
        max_tokens=_flag_int(task_args, "max_tokens", 1), repeats=count,
        temperature=temperature if temperature is not None else (SAMPLING_TEMPERATURE if count > 1 else 0.0),
        top_p=_flag_float(task_args, "top_p", 0.0, 1.0), circular=_flag_bool(task_args, "circular"),
        extractor=extractor, think_open=task_args.get("think_open", DEFAULT_OPEN),
        think_close=task_args.get("think_close", DEFAULT_CLOSE),
        language=language,  # type: ignore[arg-type]  # checked above
        seed=seed)


@dataclass(frozen=True)
class _Job:
    question: int  # index into the subject's questions
    rotation: int
    target: str
    shown: tuple[str, ...]  # the options in the order this job shows them
    conversation: Conversation


@dataclass(frozen=True)
class _Reading:
    completion_text: str
    split: ThinkingSplit
    extraction: Extraction
    finish_reason: str
    thinking_tokens: int


def _jobs(questions: Sequence[MCQuestion], letters: str, options: McOptions, mode: str, header: str,
          shots: Sequence[Exemplar], language: Language, task: str) -> list[_Job]:
    jobs = []
    for i, q in enumerate(questions):
        variants = (rotations(q.options, q.answer, letters, task) if options.circular
                    else [(tuple(q.options), q.answer)])
        for r, (shown, target) in enumerate(variants):
            conv = build_conversation(mode, q.question, shown, letters, header=header, shots=shots,
                                      language=language)
            jobs.append(_Job(i, r, target, tuple(shown), conv))
    return jobs


def _read(completion: Completion, letters: str, options: McOptions, tokenizer: Any) -> _Reading:
    text = completion.text
    reasoning = completion.reasoning[0] if completion.reasoning else None
    split = split_thinking(text, options.think_open, options.think_close, reasoning)
    reason = completion.finish_reasons[0] if completion.finish_reasons else ""
    found = (extract_answer(split.answer, letters, truncated=reason == "length") if split.answer
             else Extraction(None, "none", None))
    return _Reading(text, split, found, reason, count_tokens(split.thinking, tokenizer))


def _generate(backend: Backend, jobs: Sequence[_Job], options: McOptions, k: int) -> list[Completion]:
    config = GenConfig(temperature=options.temperature, top_p=options.top_p, max_tokens=options.generation_tokens,
                       seed=options.seed + k)
    return backend.generate([job.conversation for job in jobs], config)


def _with_extractor(readings: list[_Reading], questions: Sequence[str], letters: str,
                    extractor: Backend | None) -> list[_Reading]:
    """Send the answers stages 1-2 could not read (and that are not empty) to the extractor model."""
    todo = [i for i, r in enumerate(readings) if r.extraction.letter is None and r.split.answer]
    if extractor is None or not todo:
        return readings
    found = extract_with_model([readings[i].split.answer for i in todo], letters, extractor,
                               [questions[i] for i in todo])
    out = list(readings)
    for i, extraction in zip(todo, found):
        out[i] = _Reading(out[i].completion_text, out[i].split, extraction, out[i].finish_reason,
                          out[i].thinking_tokens)
    return out


def _answer_fields(reading: _Reading, target: str) -> dict[str, Any]:
    letter = reading.extraction.letter
    return {"response": reading.completion_text, "thinking": reading.split.thinking, "answer": reading.split.answer,
            "prediction": letter, "correct": letter is not None and letter == target, "extracted": letter,
            "extraction_stage": reading.extraction.stage, "extraction_pattern": reading.extraction.pattern,
            "thinking_tokens": reading.thinking_tokens, "truncated_in_thought": reading.split.truncated_in_thought,
            "finish_reason": reading.finish_reason}


def run_generative(questions: Sequence[MCQuestion], backend: Backend, options: McOptions, *, subject: str,
                   letters: Sequence[str], header: str = "", shots: Sequence[MCQuestion] = (),
                   extractor: Backend | None = None, tokenizer: Any = None, task: str = "task",
                   explanation_column: str = "explanation") -> list[dict[str, Any]]:
    """Ask, read and score one subject's questions; one sample record per question.

    Args:
        questions: the subject's questions (multiple_choice.Question or anything with its attributes).
        backend: the model under evaluation (the runner's cached wrapper).
        options: settled options (`McOptions.resolved`); mode "generate" or "cot".
        subject: the subject name (record ids are "<subject>/<doc_index>").
        letters: the option labels.
        header: the benchmark's rendered description (its answer-only instruction).
        shots: few-shot questions; in cot mode those with an `explanation_column` value are exemplars.
        extractor: the extractor model's backend (stage 3), or None.
        tokenizer: counts thinking tokens exactly when given (a callable or an object with `encode`).
        task: the task name, for error messages.
        explanation_column: the column of a shot's worked reasoning.

    Returns:
        Records with the fields of `_answer_fields` for sample 0 in the original order, plus `samples`
        (every repeat, when K > 1) and `circular` / `correct_circular` (when circular).
    """
    if options.mode not in ("generate", "cot"):
        raise ConfigError(f"--task-args mode={options.mode}: run_generative serves generate or cot only")
    labels = check_letters(letters, task) if options.circular else "".join(letters)
    language = options.language or detect_language(header, *(q.question for q in questions[:3]))
    exemplars = [Exemplar(s.question, tuple(s.options), s.answer, str(s.raw.get(explanation_column) or ""))
                 for s in shots]
    jobs = _jobs(questions, labels, options, options.mode, header, exemplars, language, task)
    first_order = [j for j in jobs if j.rotation == 0]
    shown = [format_question(questions[j.question].question, j.shown, labels) for j in jobs]
    readings = {0: [_read(c, labels, options, tokenizer) for c in _generate(backend, jobs, options, 0)]}
    readings[0] = _with_extractor(readings[0], shown, labels, extractor)
    shown_first = [s for s, j in zip(shown, jobs) if j.rotation == 0]
    for k in range(1, options.repeats):
        got = [_read(c, labels, options, tokenizer) for c in _generate(backend, first_order, options, k)]
        readings[k] = _with_extractor(got, shown_first, labels, extractor)
    return _records(questions, jobs, readings, options, subject)


def _records(questions: Sequence[MCQuestion], jobs: Sequence[_Job], readings: dict[int, list[_Reading]],
             options: McOptions, subject: str) -> list[dict[str, Any]]:
    by_question: dict[int, list[int]] = {}
    for index, job in enumerate(jobs):
        by_question.setdefault(job.question, []).append(index)
    records = []
    for i, q in enumerate(questions):
        rows = by_question[i]
        first = jobs[rows[0]]
        record: dict[str, Any] = {
            "id": f"{subject}/{q.doc_index}", "subset": subject, "doc_index": q.doc_index,
            "prompt": first.conversation[-1].content,
            "messages": [{"role": m.role, "content": m.content} for m in first.conversation],
            "target": q.answer, "mode": options.mode, "seed": options.seed,
            **_answer_fields(readings[0][rows[0]], q.answer)}
        if options.repeats > 1:
            samples = [{"seed": options.seed + k,
                        **_answer_fields(readings[k][rows[0] if k == 0 else i], q.answer)}
                       for k in range(options.repeats)]
            vote = majority_letter([s["prediction"] for s in samples])
            record.update(samples=samples, maj_prediction=vote, maj_correct=vote == q.answer,
                          correct_count=sum(bool(s["correct"]) for s in samples))
        if options.circular:
            turns = [{"rotation": jobs[r].rotation, "target": jobs[r].target,
                      **_answer_fields(readings[0][r], jobs[r].target)} for r in rows]
            record.update(circular=turns, correct_circular=all(t["correct"] for t in turns))
        records.append(record)
    return records


def _answers(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Every generated answer of the records: each repeat and each extra rotation."""
    out: list[Mapping[str, Any]] = []
    for r in records:
        out.extend(r.get("samples") or [r])
        out.extend(t for t in r.get("circular") or [] if t["rotation"] != 0)
    return out


def generative_metrics(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The mode's metrics over `records` (one subject, a group or the whole task).

    `unextractable_rate` is over the answers `acc` scores (sample 0, original order); maj@K / pass@K /
    pass@1 / mean@K (with `_stderr`) appear when records carry K > 1 samples, `acc_circular` when they carry
    rotations. `acc` itself is the mean of `correct`, as in loglikelihood mode (the caller computes it).
    """
    if not records:
        return {}
    metrics = {"unextractable_rate": sum(1 for r in records if r["prediction"] is None) / len(records)}
    if all(r.get("samples") for r in records):
        metrics.update(sampling_metrics([[s["prediction"] for s in r["samples"]] for r in records],
                                        [r["target"] for r in records]))
    if all(r.get("circular") for r in records):
        value, se = acc_circular([[t["correct"] for t in r["circular"]] for r in records])
        metrics.update(acc_circular=value, acc_circular_stderr=se)
    return metrics


def generative_info(records: Sequence[Mapping[str, Any]], options: McOptions) -> dict[str, Any]:
    """Facts for results.json `info`: the mode and its settings, extraction stage counts, thinking statistics.

    `extraction_stages` counts the answers `acc` scores; `extraction_stages_all` every generated answer
    (repeats and rotations), present when there are more. `thinking` appears when any answer had a thought:
    answers with one, mean and total thinking tokens, answers cut off inside the thought and their share.
    """
    first = Counter(str(r["extraction_stage"]) for r in records)
    info: dict[str, Any] = {
        "mode": options.mode, "max_tokens": options.generation_tokens, "temperature": options.temperature,
        "repeats": options.repeats, "seeds": [options.seed + k for k in range(options.repeats)],
        "circular": options.circular, "extractor": options.extractor,
        "extraction_stages": {s: first.get(s, 0) for s in ("strict", "lenient", "model", "none")},
        "unextractable": first.get("none", 0)}
    answers = _answers(records)
    if len(answers) > len(records):
        every = Counter(str(a["extraction_stage"]) for a in answers)
        info["extraction_stages_all"] = {s: every.get(s, 0) for s in ("strict", "lenient", "model", "none")}
    thought = [a for a in answers if a["thinking"] or a["truncated_in_thought"]]
    if thought:
        tokens = [int(a["thinking_tokens"]) for a in thought]
        truncated = sum(1 for a in answers if a["truncated_in_thought"])
        info["thinking"] = {"answers_with_thinking": len(thought), "thinking_tokens_total": sum(tokens),
                            "thinking_tokens_mean": mean_stderr(tokens)[0], "truncated_in_thought": truncated,
                            "truncated_in_thought_rate": truncated / len(answers),
                            "markers": [options.think_open, options.think_close]}
    return info
