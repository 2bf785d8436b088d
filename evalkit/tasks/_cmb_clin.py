"""CMB-Clin (`cmb_clin`): 74 clinical cases, 208 questions, answered as a multi-turn consultation.

Each case is one conversation: its first user turn is the case description followed by the first question
(the YAML's `first_turn`, from CMB's README: ``以下是一位病人的病例：\\n{description}\\n{question}``); every later
question is its own user turn. As in CMB's `collate_conv`, the assistant turns before question i are the GOLD
answers of the earlier questions, not the model's own, so every question is generated independently (one
batch) and a poor early answer does not contaminate the later ones.

Data (first place that has it): ``--data-dir DIR`` with ``DIR/cmb/CMB-Clin-qa.json`` (a JSON list of
``{"id", "title", "description", "QA_pairs": [{"question", "answer" | "solution"}]}``); the hub dataset
``FreedomIntelligence/CMB`` config ``clin`` (split ``test``); evalkit's demo cases ``tasks/demo/cmb/CMB-Clin-demo.json``
(original, NOT CMB). A case without questions, or a question without a reference answer, is skipped and counted
with its file:row.

Judge-free companions (always computed): ROUGE-L F on jieba words (`evalkit.metrics.rouge_l_zh`, LongBench's
implementation) per answer, averaged; BLEU-4 on jieba words, corpus level (`corpus_bleu`: clipped n-gram
precisions pooled over all answers, brevity penalty, no smoothing) and per answer (`sentence_bleu`, add-one
smoothing for n > 1, Lin & Och 2004) for the per-case rows.

Judge: the four-aspect rubric judge of the CMB paper (fluency, relevance, completeness, proficiency in
medicine, 1–5 each) is `judges/cmb_clin.yaml`, named by `judge:` in tasks/cmb_clin.yaml; it runs when the run
asks for judging (`--judge-model M`, optionally `--judge-mode probability`) through the task judge step
(`evalkit.tasks._task_judge`): it reads the case description with the question, the reference and the answer
(thinking stripped), and adds `judge_score`, `judge_<aspect>` and `judge_valid_rate` to the metrics and a
`judge` entry (score, aspects, votes) to each sample. `judge_items(samples)` returns what it reads.

Repeats (`--repeats K`, K > 1): every question is answered K times, sample k with seed `seed + k` at
`evalkit.tasks._repeats.sampling_temperature` (0.7 for the greedy default). Each sample gets its ROUGE-L and
sentence BLEU (`samples: [{seed, prediction, rouge_l, bleu}]` on the record); the headline metrics stay sample
0's, so a K-sample run is comparable with a one-sample one, and `rouge_l_mean@K`, `rouge_l_best@K`,
`rouge_l_sd@K` (`score_sampling_metrics` over each sample's ROUGE-L, prefixed with the metric they come from)
join the task's and every case's metrics. The judge grades sample 0 only (`info["judged_samples"] = 1`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from evalkit.backends._protocol import Backend
from evalkit.errors import ConfigError, DataError
from evalkit.metrics import mean_stderr
from evalkit.metrics._sampling import score_sampling_metrics
from evalkit.records import JudgedSample, register_sample_type
from evalkit.tasks._data import HubSource, check_data_dir, load_hub, read_file_rows, tasks_root
from evalkit.tasks._kind import RunContext, SampleSink, TaskOutcome
from evalkit.tasks._repeats import generate_repeats, repeat_count, repeats_info, sample_entries
from evalkit.tasks._spec import TaskSpecBase
from evalkit.tasks._task_judge import JudgeInput, start_judging
from evalkit.tasks._thinking import split_thinking
from evalkit.types import Completion, GenConfig, Message

__all__ = [
    "ClinCase",
    "CmbClinSpec",
    "corpus_bleu",
    "judge_inputs",
    "judge_items",
    "load_cases",
    "run",
    "sentence_bleu",
    "turn_conversation",
]

_TASK_ARGS = {"max_tokens"}
register_sample_type("cmb_clin", JudgedSample)  # rubric-judge votes attach to these samples


class ClinData(BaseModel):
    """Where CMB-Clin lives: a file under the data dir, the hub dataset, the bundled demo cases."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    local: str | None = None
    hub: HubSource | None = None
    demo: str | None = None


class CmbClinSpec(TaskSpecBase):
    """CMB-Clin: clinical cases as multi-turn consultations, scored by ROUGE-L / BLEU (and a rubric judge)."""

    kind: Literal["cmb_clin"]
    data: ClinData
    first_turn: str = "以下是一位病人的病例：\n{description}\n{question}"
    later_turn: str = "{question}"
    max_tokens: int = Field(default=512, ge=1)


@dataclass(frozen=True)
class ClinCase:
    """One checked case: its questions and reference answers in order."""

    doc_index: int
    case_id: str
    title: str
    description: str
    qa: tuple[tuple[str, str], ...]
    where: str


def _check_case(row: dict[str, Any], index: int, where: str) -> ClinCase | str:
    if not str(row.get("description") or "").strip():
        return "field 'description' is missing or empty"
    pairs = row.get("QA_pairs")
    if not isinstance(pairs, list) or not pairs:
        return "case has no questions (QA_pairs is missing or empty)"
    qa = []
    for number, pair in enumerate(pairs, 1):
        if not isinstance(pair, dict):
            return f"QA_pairs[{number}] is not an object"
        question = str(pair.get("question") or "").strip()
        reference = str(pair.get("answer") or pair.get("solution") or "").strip()
        if not question or not reference:
            return f"QA_pairs[{number}] has no {'question' if not question else 'reference answer'}"
        qa.append((question, reference))
    return ClinCase(index, str(row.get("id", index)), str(row.get("title") or ""), str(row["description"]),
                    tuple(qa), where)


def _raw_cases(spec: CmbClinSpec, ctx: RunContext) -> tuple[list[dict[str, Any]], list[int], str, str]:
    if spec.data.local and ctx.data_dir is not None:
        path = check_data_dir(ctx.data_dir) / spec.data.local
        if path.is_file():
            rows, lines = read_file_rows(path, warn=ctx.warn, record_file=ctx.record_file)
            return rows, lines, "local", str(path)
    if spec.data.hub is not None:
        hub_rows = load_hub(spec.data.hub, "", "test")
        if hub_rows is not None:
            return hub_rows, list(range(1, len(hub_rows) + 1)), "hub", f"hf://{spec.data.hub.path}"
    if spec.data.demo and (tasks_root() / spec.data.demo).is_file():
        path = tasks_root() / spec.data.demo
        rows, lines = read_file_rows(path, warn=ctx.warn, record_file=ctx.record_file)
        return rows, lines, "demo", str(path)
    looked = Path(ctx.data_dir or "DIR") / (spec.data.local or "")
    raise DataError(f"{spec.name}: no data found (looked for {looked}, the hub, the demo set); pass --data-dir DIR "
                    f"with {spec.data.local} under it")


def load_cases(spec: CmbClinSpec, ctx: RunContext) -> tuple[list[ClinCase], str, str, list[str]]:
    """The checked cases, their origin and location, and the rows skipped ("file:row: why")."""
    rows, lines, origin, location = _raw_cases(spec, ctx)
    cases, skipped = [], []
    for index, row in enumerate(rows):
        where = f"{location}:{lines[index] if index < len(lines) else index + 1}"
        checked = _check_case(row, index, where)
        if isinstance(checked, str):
            skipped.append(f"{where}: {checked}")
            ctx.warn(f"{where}: {checked}; case skipped (fix it to include it)")
        else:
            cases.append(checked)
    if not cases:
        raise DataError(f"{spec.name}: every case of {location} was skipped; fix the file")
    return cases, origin, location, skipped


def turn_conversation(spec: CmbClinSpec, case: ClinCase, turn: int) -> tuple[Message, ...]:
    """The chat for question `turn` (0-based): earlier questions each followed by its GOLD answer."""
    messages: list[Message] = []
    for i, (question, reference) in enumerate(case.qa[:turn + 1]):
        template = spec.first_turn if i == 0 else spec.later_turn
        messages.append(Message("user", template.format_map({"description": case.description, "question": question})))
        if i < turn:
            messages.append(Message("assistant", reference))
    return tuple(messages)


def _words(text: str) -> list[str]:
    from evalkit.metrics._longbench import _segment

    return [w for w in _segment(text) if w.strip()]


def _ngram_stats(candidate: Sequence[str], reference: Sequence[str], n: int) -> tuple[int, int]:
    cand = Counter(tuple(candidate[i:i + n]) for i in range(len(candidate) - n + 1))
    ref = Counter(tuple(reference[i:i + n]) for i in range(len(reference) - n + 1))
    return sum(min(c, ref[g]) for g, c in cand.items()), max(0, len(candidate) - n + 1)


def corpus_bleu(pairs: Sequence[tuple[Sequence[str], Sequence[str]]], max_n: int = 4) -> float:
    """Corpus BLEU (Papineni et al. 2002) of tokenised (candidate, reference) pairs, in [0, 1], no smoothing.

    Examples:
        >>> corpus_bleu([("a b c d".split(), "a b c d".split())])
        1.0
        >>> round(corpus_bleu([("a b c d e".split(), "a b c d f".split())]), 4)
        0.6687
    """
    matches, totals = [0] * max_n, [0] * max_n
    cand_len = ref_len = 0
    for candidate, reference in pairs:
        cand_len, ref_len = cand_len + len(candidate), ref_len + len(reference)
        for n in range(1, max_n + 1):
            hit, total = _ngram_stats(candidate, reference, n)
            matches[n - 1] += hit
            totals[n - 1] += total
    if cand_len == 0 or any(m == 0 for m in matches):
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / max_n
    brevity = 1.0 if cand_len > ref_len else math.exp(1 - ref_len / cand_len)
    return brevity * math.exp(log_precision)


def sentence_bleu(candidate: Sequence[str], reference: Sequence[str], max_n: int = 4) -> float:
    """BLEU of one answer with add-one smoothing of the n > 1 precisions (Lin & Och 2004); 0 for an empty one."""
    if not candidate:
        return 0.0
    logs = []
    for n in range(1, max_n + 1):
        hit, total = _ngram_stats(candidate, reference, n)
        if n == 1 and hit == 0:
            return 0.0
        logs.append(math.log(hit / total) if n == 1 else math.log((hit + 1) / (total + 1)))
    brevity = 1.0 if len(candidate) > len(reference) else math.exp(1 - len(reference) / len(candidate))
    return brevity * math.exp(sum(logs) / max_n)


def judge_items(samples: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a four-aspect rubric judge reads for each answer: case description, question, reference, answer."""
    keys = ("id", "description", "question", "reference", "prediction", "prompt")
    return [{k: s[k] for k in keys} for s in samples]


def judge_inputs(samples: Sequence[dict[str, Any]]) -> list[JudgeInput]:
    """The judge's view of each answer: the case and question together, the answer, the reference."""
    return [JudgeInput(s["id"], s["subset"] or "cmb_clin", f"病例：{s['description']}\n问题：{s['question']}",
                       s["prediction"], s["reference"]) for s in samples]


def _max_tokens(spec: CmbClinSpec, ctx: RunContext) -> int:
    unknown = sorted(set(ctx.task_args) - _TASK_ARGS)
    if unknown:
        raise ConfigError(f"--task-args {unknown[0]}: not an option of {spec.name}; known: max_tokens")
    max_tokens = ctx.task_args.get("max_tokens", str(spec.max_tokens))
    if not max_tokens.isdigit() or int(max_tokens) < 1:
        raise ConfigError(f"--task-args max_tokens={max_tokens}: give a positive whole number")
    return int(max_tokens)


def run(spec: CmbClinSpec, backend: Backend, ctx: RunContext, sink: SampleSink) -> TaskOutcome:
    """Generate every question's answer (gold history; K answers with --repeats K) and score it by ROUGE-L and BLEU."""
    max_tokens = _max_tokens(spec, ctx)
    repeats = repeat_count(ctx)
    cases, origin, location, skipped = load_cases(spec, ctx)
    if ctx.limit is not None:
        cases = cases[:ctx.limit]
    if origin == "demo":
        ctx.warn(f"{spec.name}: using evalkit's small DEMO set ({len(cases)} original cases, not CMB-Clin); "
                 f"pass --data-dir for real numbers")
    judging = start_judging(spec, ctx, backend.identity.model)
    turns = [(case, i) for case in cases for i in range(len(case.qa))]
    ctx.set_total(len(turns) * (repeats + (1 if judging is not None and judging.counts_progress else 0)))
    conversations = [turn_conversation(spec, case, i) for case, i in turns]
    config = GenConfig(temperature=0.0, max_tokens=max_tokens, seed=ctx.seed)
    answers = generate_repeats(backend, conversations, config, repeats=repeats, seed=ctx.seed)
    samples = [_sample(case, i, conv, completion.texts[0])
               for (case, i), conv, completion in zip(turns, conversations, answers[0])]
    if repeats > 1:
        _add_repeats(samples, turns, answers, ctx.seed)
    if judging is not None:
        judging.judge(judge_inputs(samples), samples)  # sample 0 only: K answers would multiply judge calls
    sink.write(samples)
    ctx.advance(len(samples) * repeats)
    outcome = _outcome(spec, samples, origin, location, skipped)
    if repeats > 1:
        info = {**outcome.info, **repeats_info(ctx, config.temperature)}
        outcome = replace(outcome, info={**info, "judged_samples": 1} if judging is not None else info)
    if judging is None:
        return outcome
    metrics, summary = judging.outcome()
    return replace(outcome, metrics={**outcome.metrics, **metrics}, info={**outcome.info, "judge": summary})


def _answer_scores(answer: str, reference: str) -> dict[str, Any]:
    from evalkit.metrics import rouge_l_zh

    answer_words, reference_words = _words(answer), _words(reference)
    return {"rouge_l": rouge_l_zh(answer, reference) if answer else 0.0,
            "bleu": sentence_bleu(answer_words, reference_words), "tokens": (answer_words, reference_words)}


def _sample(case: ClinCase, turn: int, conv: Sequence[Message], text: str) -> dict[str, Any]:
    split = split_thinking(text)
    question, reference = case.qa[turn]
    return {"id": f"{case.case_id}/{turn + 1}", "subset": case.title, "doc_index": case.doc_index,
            "prompt": [{"role": m.role, "content": m.content} for m in conv], "target": reference,
            "prediction": split.answer, "raw_output": text, "thinking": split.thinking or None,
            "description": case.description, "question": question, "reference": reference, "turn": turn + 1,
            **_answer_scores(split.answer, reference)}


def _add_repeats(samples: list[dict[str, Any]], turns: Sequence[tuple[ClinCase, int]],
                 answers: Sequence[Sequence[Completion]], seed: int) -> None:
    """Give each record its K samples: seed, answer (thinking stripped), ROUGE-L and sentence BLEU."""
    for i, (sample, (case, turn)) in enumerate(zip(samples, turns)):
        sample["samples"] = sample_entries(answers, i, seed, partial(_sample_scores, case.qa[turn][1]))


def _sample_scores(reference: str, answer: str) -> dict[str, Any]:
    """ROUGE-L and sentence BLEU of one of K samples (the record's corpus-BLEU tokens are not kept)."""
    return {key: value for key, value in _answer_scores(answer, reference).items() if key != "tokens"}


def _rouge_sampling(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """`rouge_l_<metric>@K` over the records' samples (nothing when the run drew one answer each)."""
    if not rows or not all(r.get("samples") for r in rows):
        return {}
    metrics = score_sampling_metrics([[s["rouge_l"] for s in r["samples"]] for r in rows], prefix="rouge_l")
    return {name: value for name, value in metrics.items() if not math.isnan(value)}


def _outcome(spec: CmbClinSpec, samples: list[dict[str, Any]], origin: str, location: str,
             skipped: list[str]) -> TaskOutcome:
    rouge, rouge_se = mean_stderr([s["rouge_l"] for s in samples])
    bleu = corpus_bleu([s.pop("tokens") for s in samples])
    sentence, sentence_se = mean_stderr([s["bleu"] for s in samples])
    by_case: dict[str, list[dict[str, Any]]] = {}
    for s in samples:
        by_case.setdefault(s["id"].rsplit("/", 1)[0], []).append(s)
    subtasks = {f"{case_id} {rows[0]['subset']}".strip(): {
        "rouge_l": sum(r["rouge_l"] for r in rows) / len(rows), "bleu": sum(r["bleu"] for r in rows) / len(rows),
        "n": len(rows), **_rouge_sampling(rows)} for case_id, rows in by_case.items()}
    metrics: dict[str, float | None] = {"rouge_l": rouge, "rouge_l_stderr": rouge_se, "bleu": bleu,
                                        "sentence_bleu": sentence, "sentence_bleu_stderr": sentence_se,
                                        **_rouge_sampling(samples)}
    info = {"data_origin": origin, "location": location, "cases": len(by_case), "skipped_rows": len(skipped),
            "skipped": skipped[:20], "history": "gold answers (as CMB's collate_conv)",
            "judge": f"not run: pass --judge-model M to grade with the rubric judge '{spec.judge.definition}'"
            if spec.judge else "none named"}
    return TaskOutcome(metrics={k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))},
                       n=len(samples), subtasks=subtasks, info=info)
