"""CMB-Exam (`cmb`): Chinese medical exam questions, single- and multi-answer, scored officially or as letter sets.

Structure: 6 exam types × 28 exam classes (the task YAML's `structure`); subsets are addressed by type or by
class (`cmb:医师考试`, `cmb:执业医师,护理学`). Data: see `evalkit.tasks._cmb_data` (the data-dir layout, the hub
dataset FreedomIntelligence/CMB config "exam", the demo set). The test split is scored; `--task-args split=val`
scores the 280 val questions instead (its few-shot exemplars then never include the question itself).

Prompts are CMB's own (the YAML's `prompts`, Python `str.format` fields as in CMB's code):
``以下是中国{exam_type}中{exam_class}考试的一道{question_type}，不需要做任何分析和解释，直接输出答案选项。`` (answer-only) and
``…，请分析每个选项，并最后给出答案。`` (CoT), then the question and one ``A. text`` line per option. Few-shot
exemplars are chat turns (user: the exemplar's query; assistant: ``答案是{answer}。`` or, for CoT,
``{explanation}所以答案是{answer}。``), as CMB's `format_fewshot_user_and_gpt` builds them.

Few-shot sampler (CMB's script has no seed; evalkit documents its own): the exemplars of a question come from
the val split, same exam type AND exam class. The pool of that class, in file order, is shuffled once with
`random.Random(f"{seed}|{exam_type}|{exam_class}")` (`--seed`, default 0); a question takes the first
`num_fewshot` items of that order whose id differs from its own. Same seed, same exemplars, on any machine.

The official prompt keeps only options whose text is longer than one character (`len(v) > 1` in CMB's
`PromptWrapper.wrap`): a question with options "A"/"B"/"O"/"AB" shows only "D. AB". evalkit reproduces that quirk
with `scoring=official` only; `scoring=set` shows every non-empty option.

Modes (`--task-args mode=...`):

- ``generate`` (default): the answer-only prompt, greedy, a short answer; letters extracted from the reply after
  its thinking is stripped (`_thinking.split_thinking`).
- ``cot``: the CoT prompt and exemplars with explanations, a longer answer.
- ``loglikelihood``: single-answer questions score each shown letter after the rendered prompt ending in
  ``答案是``; multi-answer questions cannot be scored letter by letter, so they are GENERATED with the
  answer-only prompt (counted in info `multi_answer_generated`). The mode is recorded per sample.

Scoring (`--task-args scoring=...`, see `evalkit.tasks._cmb_score`): ``set`` (default) compares sorted letter
sets and reports per-option F1 apart (`option_f1`); ``official`` reproduces `match_choice` / `extract_ans` /
`score.py`. In both, `acc` is the unweighted mean of the exam types, each the unweighted mean of its classes;
the official script stops at the exam types, so that overall number is evalkit's (also `acc_micro`: by question).
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from evalkit.backends._protocol import Backend
from evalkit.errors import ConfigError, UnsupportedRequest
from evalkit.metrics import mean_stderr
from evalkit.records import MultipleChoiceSample, register_sample_type
from evalkit.tasks._answer_extraction import extract_answer, extract_multi
from evalkit.tasks._cmb_data import CmbDataSource, CmbQuestion, CmbSplit, load_split
from evalkit.tasks._cmb_score import official_prediction, official_report, option_f1, set_correct
from evalkit.tasks._data import DecodeNotes, check_data_dir
from evalkit.tasks._kind import RunContext, SampleSink, TaskOutcome
from evalkit.tasks._spec import TaskSpecBase
from evalkit.tasks._thinking import split_thinking
from evalkit.types import GenConfig, LoglikelihoodRequest, Message

__all__ = ["CmbExamSpec", "CmbPrompts", "build_conversation", "fewshot_exemplars", "run", "shown_options"]

Mode = Literal["generate", "cot", "loglikelihood"]
Scoring = Literal["set", "official"]
_TASK_ARGS = {"mode", "scoring", "split"}
register_sample_type("cmb_exam", MultipleChoiceSample)  # a CMB sample is a multiple-choice sample plus facts
_CHOICES: dict[str, tuple[str, ...]] = {"mode": ("generate", "cot", "loglikelihood"),
                                        "scoring": ("set", "official"), "split": ("test", "val")}


class CmbPrompts(BaseModel):
    """CMB's prompt text. Fields in braces are filled with `str.format_map`, as in CMB's code."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    answer_only: str
    cot: str
    shot_answer_only: str = "答案是{answer}。"
    shot_cot: str = "{explanation}所以答案是{answer}。"
    option_line: str = "{letter}. {text}"
    loglikelihood_cue: str = "答案是"


class CmbExamSpec(TaskSpecBase):
    """CMB-Exam: generated answers (or letter loglikelihoods) scored as letter sets or by the official script."""

    kind: Literal["cmb_exam"]
    data: CmbDataSource
    eval_split: Literal["test", "val"] = "test"
    fewshot_split: Literal["val"] = "val"
    num_fewshot: int = Field(default=0, ge=0)
    structure: dict[str, list[str]]
    prompts: CmbPrompts
    default_mode: Mode = "generate"
    default_scoring: Scoring = "set"
    max_tokens: int = Field(default=32, ge=1)
    cot_max_tokens: int = Field(default=512, ge=1)

    @model_validator(mode="after")
    def _classes_unique(self) -> CmbExamSpec:
        classes = [c for cs in self.structure.values() for c in cs]
        repeated = sorted({c for c in classes if classes.count(c) > 1} | (set(classes) & set(self.structure)))
        if repeated:
            raise ValueError(f"exam class {repeated[0]!r} appears twice (or is also an exam type) in structure")
        return self

    def subset_names(self) -> list[str]:
        return [*self.structure, *(c for cs in self.structure.values() for c in cs)]


@dataclasses.dataclass(frozen=True)
class _Options:
    mode: Mode
    scoring: Scoring
    split: Literal["test", "val"]
    num_fewshot: int


def _options(spec: CmbExamSpec, ctx: RunContext) -> _Options:
    unknown = sorted(set(ctx.task_args) - _TASK_ARGS)
    if unknown:
        raise ConfigError(f"--task-args {unknown[0]}: not an option of {spec.name}; known: "
                          f"{', '.join(sorted(_TASK_ARGS))}")
    values = {"mode": spec.default_mode, "scoring": spec.default_scoring, "split": spec.eval_split,
              **ctx.task_args}
    for key, allowed in _CHOICES.items():
        if values[key] not in allowed:
            raise ConfigError(f"--task-args {key}={values[key]}: use one of {', '.join(allowed)}")
    shots = spec.num_fewshot if ctx.num_fewshot is None else ctx.num_fewshot
    return _Options(values["mode"], values["scoring"], values["split"], shots)  # type: ignore[arg-type]


def shown_options(q: CmbQuestion, scoring: Scoring) -> tuple[tuple[str, str], ...]:
    """The options the prompt shows: all non-empty ones, or (official) only those longer than one character."""
    if scoring == "official":
        return tuple((k, v) for k, v in q.options if len(v) > 1)
    return q.options


def _query(spec: CmbExamSpec, q: CmbQuestion, cot: bool, scoring: Scoring) -> str:
    lines = "\n".join(spec.prompts.option_line.format(letter=k, text=v) for k, v in shown_options(q, scoring))
    template = spec.prompts.cot if cot else spec.prompts.answer_only
    return template.format_map({"exam_type": q.exam_type, "exam_class": q.exam_class,
                                "question_type": q.question_type, "question": q.question, "option_str": lines})


def build_conversation(spec: CmbExamSpec, q: CmbQuestion, shots: Sequence[CmbQuestion], cot: bool,
                       scoring: Scoring) -> tuple[Message, ...]:
    """The chat of one question: each exemplar as a user/assistant pair, then the question."""
    messages: list[Message] = []
    for shot in shots:
        reply = spec.prompts.shot_cot if cot else spec.prompts.shot_answer_only
        messages += [Message("user", _query(spec, shot, cot, scoring)),
                     Message("assistant", reply.format(answer=shot.answer, explanation=shot.explanation))]
    messages.append(Message("user", _query(spec, q, cot, scoring)))
    return tuple(messages)


def fewshot_exemplars(pool: Sequence[CmbQuestion], q: CmbQuestion, k: int, seed: int) -> list[CmbQuestion]:
    """The documented sampler: the class's val pool shuffled once per (seed, type, class); first k not `q`.

    Examples:
        >>> from evalkit.tasks._cmb_data import CmbQuestion
        >>> mk = lambda i: CmbQuestion(i, str(i), "t", "c", "", "单项选择题", "q", (("A", "x"),), "A", "", "")
        >>> pool = [mk(i) for i in range(5)]
        >>> [s.qid for s in fewshot_exemplars(pool, mk(9), 3, 0)] == [s.qid for s in fewshot_exemplars(pool, mk(8), 3, 0)]
        True
    """
    if k <= 0:
        return []
    same = [p for p in pool if p.exam_type == q.exam_type and p.exam_class == q.exam_class]
    random.Random(f"{seed}|{q.exam_type}|{q.exam_class}").shuffle(same)
    return [p for p in same if p.qid != q.qid][:k]


def _select(spec: CmbExamSpec, ctx: RunContext, questions: list[CmbQuestion]) -> list[CmbQuestion]:
    names = spec.subset_names()
    unknown = [s for s in ctx.subsets if s not in names]
    if unknown:
        raise ConfigError(f"{spec.name}: unknown subset(s) {', '.join(unknown)}; use an exam type or class: "
                          f"{', '.join(names[:8])}, ... (evalkit tasks lists them)")
    wanted = {c for s in ctx.subsets for c in spec.structure.get(s, [s])}
    chosen = [q for q in questions if not wanted or q.exam_class in wanted]
    if ctx.limit is None:
        return chosen
    taken: Counter[str] = Counter()
    out = []
    for q in chosen:  # --limit applies per exam class, like per subject in the other knowledge tasks
        if taken[q.exam_class] < ctx.limit:
            taken[q.exam_class] += 1
            out.append(q)
    return out


def _extract(q: CmbQuestion, texts: Sequence[str], scoring: Scoring, letters: str) -> tuple[str | None, str]:
    """(prediction, stage): official `extract_ans`, or evalkit's cascade voted over the replies."""
    answers = [split_thinking(t).answer for t in texts]
    if scoring == "official":
        found = official_prediction(answers, q.question_type)
        return found, "official" if found else "none"
    votes: Counter[str] = Counter()
    stage = "none"
    for answer in answers:
        if q.multi:
            multi = extract_multi(answer, letters)
            value, found_stage = multi.letters, multi.stage
        else:
            single = extract_answer(answer, letters)
            value, found_stage = single.letter, single.stage
        if value:
            votes[value] += 1
            stage = found_stage if stage == "none" else stage
    return (votes.most_common(1)[0][0], stage) if votes else (None, "none")


def _sample(q: CmbQuestion, conversation: Sequence[Message], prediction: str | None, scoring: Scoring,
            mode: str, **extra: Any) -> dict[str, Any]:
    correct = (prediction == q.answer) if scoring == "official" else set_correct(q.answer, prediction)
    return {"id": f"{q.exam_type}/{q.exam_class}/{q.qid}", "subset": q.exam_class, "doc_index": q.doc_index,
            "prompt": [{"role": m.role, "content": m.content} for m in conversation], "target": q.answer,
            "prediction": prediction, "correct": bool(correct), "option_f1": option_f1(q.answer, prediction),
            "exam_type": q.exam_type, "exam_class": q.exam_class, "question_type": q.question_type,
            "mode": mode, **extra}


def _generate(spec: CmbExamSpec, backend: Backend, ctx: RunContext, items: list[tuple[CmbQuestion, tuple[Message, ...]]],
              opts: _Options, cot: bool) -> list[dict[str, Any]]:
    if not items:
        return []
    config = GenConfig(temperature=0.0 if (ctx.repeats or 1) == 1 else 0.7, n=ctx.repeats or 1, seed=ctx.seed,
                       max_tokens=spec.cot_max_tokens if cot else spec.max_tokens)
    completions = backend.generate([conv for _, conv in items], config)
    samples = []
    for (q, conv), completion in zip(items, completions):
        letters = "".join(k for k, _ in shown_options(q, opts.scoring)) or "ABCDEFG"
        prediction, stage = _extract(q, completion.texts, opts.scoring, letters)
        split = split_thinking(completion.texts[0])
        samples.append(_sample(q, conv, prediction, opts.scoring, "cot" if cot else "generate",
                               extracted=prediction or None, extraction_stage=stage,
                               raw_output=completion.texts[0], thinking=split.thinking or None,
                               responses=list(completion.texts) if len(completion.texts) > 1 else None))
    return samples


def _render_text(conversation: Sequence[Message], cue: str) -> str:
    """A chat as plain text for loglikelihood scoring: turns separated by blank lines, then the answer cue."""
    return "\n\n".join(m.content for m in conversation) + "\n" + cue


def _loglikelihood(spec: CmbExamSpec, backend: Backend, items: list[tuple[CmbQuestion, tuple[Message, ...]]],
                   opts: _Options) -> list[dict[str, Any]]:
    requests: list[LoglikelihoodRequest] = []
    spans: list[tuple[int, list[str]]] = []
    for q, conv in items:
        letters = [k for k, _ in shown_options(q, opts.scoring)]
        text = _render_text(conv, spec.prompts.loglikelihood_cue)
        spans.append((len(requests), letters))
        requests += [LoglikelihoodRequest(text, letter) for letter in letters]
    results = backend.loglikelihood(requests)
    samples = []
    for (q, conv), (start, letters) in zip(items, spans):
        lls = [r.logprob for r in results[start:start + len(letters)]]
        best = letters[max(range(len(lls)), key=lambda i: (lls[i], -i))] if lls else None
        samples.append(_sample(q, conv, best, opts.scoring, "loglikelihood",
                               choice_logprobs=dict(zip(letters, lls))))
    return samples


def _score(spec: CmbExamSpec, backend: Backend, ctx: RunContext, questions: list[CmbQuestion],
           pool: list[CmbQuestion], opts: _Options) -> tuple[list[dict[str, Any]], dict[str, int]]:
    cot = opts.mode == "cot"
    counts = {"multi_answer_generated": 0, "loglikelihood_unsupported": 0}
    items = [(q, build_conversation(spec, q, fewshot_exemplars(pool, q, opts.num_fewshot, ctx.seed),
                                    cot, opts.scoring)) for q in questions]
    if opts.mode != "loglikelihood":
        return _generate(spec, backend, ctx, items, opts, cot), counts
    single = [it for it in items if not it[0].multi]
    multi = [it for it in items if it[0].multi]
    try:
        samples = _loglikelihood(spec, backend, single, opts)
    except UnsupportedRequest:  # a chat-only backend: every question is generated
        counts["loglikelihood_unsupported"] = 1
        return _generate(spec, backend, ctx, items, opts, False), counts
    counts["multi_answer_generated"] = len(multi)
    return samples + _generate(spec, backend, ctx, multi, opts, False), counts


def _load(spec: CmbExamSpec, ctx: RunContext, opts: _Options) -> tuple[CmbSplit, list[CmbQuestion], list[str]]:
    notes = DecodeNotes(ctx.warn)
    try:
        data = load_split(spec.data, opts.split, data_dir=ctx.data_dir, warn=notes.warn,
                          record_file=ctx.record_file, task=spec.name)
        pool: list[CmbQuestion] = []
        skipped = list(data.skipped)
        if opts.num_fewshot and opts.split == spec.fewshot_split:
            pool = data.questions  # val scored: exemplars from val too, never the question itself
        elif opts.num_fewshot:  # from the same place as the scored split (no data dir: the hub, else the demo)
            shots = load_split(spec.data, spec.fewshot_split, warn=notes.warn, record_file=ctx.record_file,
                               data_dir=ctx.data_dir if data.origin == "local" else None, task=spec.name)
            pool, skipped = shots.questions, skipped + shots.skipped
    finally:
        notes.flush()
    if data.origin == "demo":
        ctx.warn(f"{spec.name}: using evalkit's small DEMO set ({len(data.questions)} original questions, not "
                 f"CMB); pass --data-dir for real numbers")
    return data, pool, skipped


def run(spec: CmbExamSpec, backend: Backend, ctx: RunContext, sink: SampleSink) -> TaskOutcome:
    """Score the selected CMB-Exam questions and aggregate by exam class and exam type."""
    if ctx.data_dir is not None:
        check_data_dir(ctx.data_dir)
    opts = _options(spec, ctx)
    data, pool, skipped = _load(spec, ctx, opts)
    questions = _select(spec, ctx, data.questions)
    if not questions:
        raise ConfigError(f"{spec.name}: no question of the selected subsets in {data.location}; "
                          f"pick subsets that the data has (evalkit tasks lists them)")
    ctx.set_total(len(questions))
    samples, counts = _score(spec, backend, ctx, questions, pool, opts)
    if opts.scoring == "official":  # the official prompt's quirk, counted so a reader can see its reach
        counts["dropped_single_char_options"] = sum(len(q.options) - len(shown_options(q, "official"))
                                                    for q in questions)
    sink.write(samples)
    ctx.advance(len(samples))
    return _outcome(spec, samples, data, skipped, opts, counts)


def _outcome(spec: CmbExamSpec, samples: list[dict[str, Any]], data: CmbSplit, skipped: list[str], opts: _Options,
             counts: dict[str, int]) -> TaskOutcome:
    report = official_report((s["exam_type"], s["exam_class"], s["correct"]) for s in samples)
    correct = [1.0 if s["correct"] else 0.0 for s in samples]
    _, stderr = mean_stderr(correct)
    f1, f1_se = mean_stderr([s["option_f1"] for s in samples])
    metrics: dict[str, float | None] = {"acc": report.overall, "acc_stderr": stderr, "acc_micro": report.acc_micro,
                                        "option_f1": f1, "option_f1_stderr": f1_se}
    for label, multi in (("acc_single", False), ("acc_multi", True)):
        part = [c for c, s in zip(correct, samples) if (s["question_type"] == "多项选择题") is multi]
        if part:
            metrics[label] = sum(part) / len(part)
    generated = [s for s in samples if s["mode"] != "loglikelihood"]
    if generated:
        metrics["unextractable_rate"] = sum(1 for s in generated if not s["prediction"]) / len(generated)
    by_class: dict[str, list[dict[str, Any]]] = {}
    for s in samples:
        by_class.setdefault(s["exam_class"], []).append(s)
    subtasks = {c: _cell(rows) for c, rows in by_class.items()}
    groups = {t: {"acc": acc, "n": sum(total for _, total in report.counts[t].values()),
                  "subjects": len(report.counts[t])} for t, acc in report.per_type.items()}
    info = {"data_origin": data.origin, "split": opts.split, "mode": opts.mode, "scoring": opts.scoring,
            "num_fewshot": opts.num_fewshot, "skipped_rows": len(skipped), "skipped": skipped[:20],
            "exam_types": len(report.per_type), "exam_classes": len(subtasks), **counts,
            "overall_note": "acc is the unweighted mean of the exam types (each the unweighted mean of its classes); "
                            "CMB's score.py reports only the per-type and per-class numbers"}
    return TaskOutcome(metrics={k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))},
                       n=len(samples), groups=groups, subtasks=subtasks, info=info)


def _cell(rows: list[dict[str, Any]]) -> dict[str, float]:
    acc, se = mean_stderr([1.0 if r["correct"] else 0.0 for r in rows])
    out = {"acc": acc, "n": len(rows), "option_f1": sum(r["option_f1"] for r in rows) / len(rows)}
    if not math.isnan(se):
        out["acc_stderr"] = se
    return out
