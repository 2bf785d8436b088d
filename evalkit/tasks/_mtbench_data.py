"""MT-Bench data in FastChat's layout: questions, reference answers, model answers; and answering the
questions turn by turn with a backend (what the multiturn_judge kind generates, and what a judge's reference
model answers).

Questions are looked up in `<data_dir>/mt_bench/question.jsonl`, then on the HF hub
(`HuggingFaceH4/mt_bench_prompts`), then in the small demo set evalkit ships (original questions written
for evalkit, labelled demo; tasks/demo/mt_bench/question.jsonl). Model answers are FastChat `model_answer`
JSONL files, one per model; the file stem is the model name (three official files carry a different
`model_id` inside).

Every loader takes `record_file`, called with each data file it reads (a task passes `ctx.record_file`, so
the run manifest lists the file with its hash). A value of the wrong type (e.g. `"turns"` given as a string
instead of a list) is a `DataError` that names file:line, the field and the fix.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from evalkit.errors import DataError

__all__ = ["CATEGORY_TEMPERATURE", "HUB_DATASET", "Question", "answer_questions", "answer_repeats", "demo_dir",
           "load_model_answers", "load_questions", "load_references", "read_jsonl", "sampled_temperatures",
           "write_model_answers"]

HUB_DATASET = "HuggingFaceH4/mt_bench_prompts"

RecordFile = Callable[[Path], None]


def _no_record(path: Path) -> None:
    """The default `record_file`: keep no provenance."""


@dataclass(frozen=True)
class Question:
    """One MT-Bench question: its user turns and, where the data has one, inline reference answers."""

    question_id: str
    category: str
    turns: tuple[str, ...]
    reference: tuple[str, ...] = ()
    source: str = ""


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a JSONL file.

    Raises:
        DataError: a line is not valid JSON or not a JSON object (the message names file:line).
    """
    rows = []
    for lineno, line in enumerate(path.read_bytes().splitlines(), 1):
        if line.strip():
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise DataError(f"{path}:{lineno}: not valid JSON; the file may be truncated") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object per line")
            rows.append((lineno, row))
    return rows


def _hub_allowed() -> bool:
    if any(os.environ.get(v, "").lower() in ("1", "true", "yes")
           for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "EVALKIT_OFFLINE")):
        return False
    if importlib.util.find_spec("datasets") is None:
        return False
    from evalkit._offline import hub_reachable

    return hub_reachable()  # one short probe per process instead of datasets' retries


def demo_dir() -> Path:
    """The folder of the shipped demo set (bundled in the wheel, or the repository's tasks/demo/mt_bench)."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_bundled" / "tasks" / "demo" / "mt_bench", here.parent / "tasks" / "demo" / "mt_bench"):
        if candidate.is_dir():
            return candidate
    raise DataError("the MT-Bench demo set is missing from this installation (tasks/demo/mt_bench); reinstall evalkit")


def _text(value: Any, where: str, name: str) -> str:
    """An id or category: a string or a number (FastChat writes numeric question ids)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"{where}: field '{name}' is {type(value).__name__}; write it as a string or a number")
    return str(value)


def _strings(value: Any, where: str, name: str) -> tuple[str, ...]:
    """A list of strings (turns, reference answers). A bare string would become one turn per character."""
    if isinstance(value, str):
        raise DataError(f"{where}: field '{name}' is a string; write it as a list of strings, "
                        f'e.g. "{name}": ["first turn", "second turn"]')
    if not isinstance(value, (list, tuple)) or not all(isinstance(t, str) for t in value):
        got = type(value).__name__ if not isinstance(value, (list, tuple)) else "a list with non-string items"
        raise DataError(f"{where}: field '{name}' must be a list of strings (got {got}); "
                        f'e.g. "{name}": ["first turn", "second turn"]')
    return tuple(value)


def _question(row: dict[str, Any], where: str, source: str, *, id_key: str = "question_id",
              turns_key: str = "turns") -> Question:
    missing = [k for k in (id_key, "category", turns_key) if k not in row]
    if missing:
        raise DataError(f"{where}: a question needs {id_key}, category and {turns_key} (a list); "
                        f"'{missing[0]}' is missing")
    reference = row.get("reference")
    return Question(_text(row[id_key], where, id_key), _text(row["category"], where, "category"),
                    _strings(row[turns_key], where, turns_key),
                    _strings(reference, where, "reference") if reference else (), source)


def _questions_from_file(path: Path) -> list[Question]:
    return [_question(row, f"{path}:{lineno}", str(path)) for lineno, row in read_jsonl(path)]


def _questions_from_hub() -> list[Question]:
    import datasets

    from evalkit._quiet import quiet_libraries

    with quiet_libraries(capture_stderr=True):  # datasets' progress bars go to the run's log
        ds = datasets.load_dataset(HUB_DATASET, split="train")
    return [_question(dict(r), f"hf:{HUB_DATASET} row {i}", f"hf:{HUB_DATASET}", id_key="prompt_id",
                      turns_key="prompt") for i, r in enumerate(ds)]


def load_questions(data_dir: Path | None, *, hub: bool = True, warn: Callable[[str], None] = lambda msg: None,
                   record_file: RecordFile = _no_record) -> list[Question]:
    """MT-Bench questions: data dir, then the HF hub (when `hub`), then the demo set (with a warning).

    Raises:
        DataError: a question file has a bad line (the message names file:line, the field and the fix).
    """
    if data_dir is not None:
        path = data_dir / "mt_bench" / "question.jsonl"
        if path.is_file():
            record_file(path)
            return _questions_from_file(path)
        warn(f"{path} not found; trying the HF hub")
    if hub and _hub_allowed():
        try:
            return _questions_from_hub()
        except Exception as exc:  # noqa: BLE001 - offline, missing package, moved dataset: fall back, loudly
            warn(f"MT-Bench from the hub ({HUB_DATASET}) failed: {type(exc).__name__}; using the demo set")
    warn("using evalkit's small DEMO MT-Bench set (original questions; scores are not comparable to MT-Bench)")
    return _questions_from_file(demo_dir() / "question.jsonl")


def _turns_of(path: Path, lineno: int, row: dict[str, Any]) -> tuple[str, ...]:
    try:
        turns = row["choices"][0]["turns"]
    except (KeyError, IndexError, TypeError):
        raise DataError(f"{path}:{lineno}: expected FastChat's answer layout "
                        '{"question_id", "choices": [{"turns": [...]}]}') from None
    return _strings(turns, f"{path}:{lineno}", "turns")


def load_references(data_dir: Path | None, questions: list[Question], file: str = "gpt-4.jsonl", *,
                    record_file: RecordFile = _no_record) -> dict[str, tuple[str, ...]]:
    """Reference answers per question id: `<data_dir>/mt_bench/reference_answer/<file>`, else inline ones."""
    refs = {q.question_id: q.reference for q in questions if q.reference}
    candidates = [data_dir / "mt_bench" / "reference_answer" / file] if data_dir is not None else []
    if questions and questions[0].source and not questions[0].source.startswith("hf:"):
        candidates.append(Path(questions[0].source).parent / "reference_answer" / file)
    for path in candidates:
        if path.is_file():
            record_file(path)
            for lineno, row in read_jsonl(path):
                refs[str(row.get("question_id"))] = _turns_of(path, lineno, row)
            break
    return refs


def load_model_answers(folder: Path, models: list[str] | None = None, *,
                       record_file: RecordFile = _no_record) -> dict[str, dict[str, tuple[str, ...]]]:
    """FastChat model_answer files in `folder` (or one file): model (file stem) → question id → turns."""
    if folder.is_file():
        files = [folder]
    elif folder.is_dir():
        files = sorted(folder.glob("*.jsonl"))
    else:
        raise DataError(f"{folder}: no such answers folder; pass a folder of FastChat model_answer/*.jsonl files")
    if models:
        wanted = set(models)
        missing = wanted - {f.stem for f in files}
        if missing:
            raise DataError(f"{folder}: no answer file for {', '.join(sorted(missing))}")
        files = [f for f in files if f.stem in wanted]
    if not files:
        raise DataError(f"{folder}: no *.jsonl answer files found")
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for path in files:
        record_file(path)
        out[path.stem] = {str(row.get("question_id")): _turns_of(path, lineno, row) for lineno, row in read_jsonl(path)}
    return out


def write_model_answers(path: Path, model: str, *samples: Mapping[str, tuple[str, ...]]) -> None:
    """Write answers in FastChat's model_answer layout (so `evalkit judge --answers` can re-judge them).

    Each of `samples` (question id → turns) is one sample of every question: sample k is `choices[k]` (index k),
    so `--repeats K` answers keep FastChat's layout and `load_model_answers` reads sample 0.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        for qid in samples[0] if samples else {}:
            choices = [{"index": k, "turns": list(sample[qid])} for k, sample in enumerate(samples) if qid in sample]
            row = {"question_id": int(qid) if qid.isdigit() else qid, "answer_id": f"{model}-{qid}",
                   "model_id": model, "choices": choices}
            fh.write(orjson.dumps(row) + b"\n")


# FastChat's llm_judge sampling temperatures per MT-Bench category (gen_model_answer.py's temperature_config)
CATEGORY_TEMPERATURE: dict[str, float] = {
    "writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0, "coding": 0.0, "reasoning": 0.0,
    "stem": 0.1, "humanities": 0.1,
}
DEFAULT_TEMPERATURE = 0.7  # FastChat's default for categories not in its table


def answer_questions(backend: Any, questions: list[Question], *, temperatures: dict[str, float] | None = None,
                     max_tokens: int = 1024, seed: int = 0, system: str | None = None,
                     default_temperature: float = DEFAULT_TEMPERATURE,
                     on_turn: Callable[[int], None] = lambda n: None) -> dict[str, tuple[str, ...]]:
    """Answer every turn of every question: turn t sees the model's own earlier answers in the history.

    Questions are batched per (turn, temperature) through `backend.generate` (the backend applies its chat
    template). Returns question id → answer turns, in FastChat's model_answer shape.
    """
    from evalkit.types import GenConfig, Message

    table = {**CATEGORY_TEMPERATURE, **(temperatures or {})}
    history: dict[str, list[Message]] = {q.question_id: [Message("system", system)] if system else [] for q in questions}
    answers: dict[str, list[str]] = {q.question_id: [] for q in questions}
    for turn in range(max((len(q.turns) for q in questions), default=0)):
        groups: dict[float, list[Question]] = {}
        for q in questions:
            if turn < len(q.turns):
                groups.setdefault(table.get(q.category, default_temperature), []).append(q)
        for temperature, group in sorted(groups.items()):
            for q in group:
                history[q.question_id].append(Message("user", q.turns[turn]))
            config = GenConfig(temperature=temperature, max_tokens=max_tokens, seed=seed)
            completions = backend.generate([tuple(history[q.question_id]) for q in group], config)
            for q, completion in zip(group, completions):
                text = completion.text.strip()
                answers[q.question_id].append(text)
                history[q.question_id].append(Message("assistant", text))
            on_turn(len(group))
    return {qid: tuple(turns) for qid, turns in answers.items()}


def sampled_temperatures(questions: list[Question], temperatures: Mapping[str, float] | None = None, *,
                         repeats: int = 1, default_temperature: float = DEFAULT_TEMPERATURE) -> dict[str, float]:
    """The sampling temperature of each category among `questions`: FastChat's table with `temperatures` over
    it, `default_temperature` for the others; a greedy category samples (`sampling_temperature`) when K > 1.

    Examples:
        >>> qs = [Question("1", "math", ("q",)), Question("2", "writing", ("q",)), Question("3", "new", ("q",))]
        >>> sampled_temperatures(qs, {"writing": 0.5}), sampled_temperatures(qs, repeats=3)
        ({'math': 0.0, 'new': 0.7, 'writing': 0.5}, {'math': 0.7, 'new': 0.7, 'writing': 0.7})
    """
    from evalkit.tasks._repeats import sampling_temperature

    table = {**CATEGORY_TEMPERATURE, **(temperatures or {})}
    return {cat: sampling_temperature(table.get(cat, default_temperature), repeats)
            for cat in sorted({q.category for q in questions})}


def answer_repeats(backend: Any, questions: list[Question], *, repeats: int = 1, seed: int = 0,
                   temperatures: Mapping[str, float] | None = None, default_temperature: float = DEFAULT_TEMPERATURE,
                   max_tokens: int = 1024, system: str | None = None,
                   on_turn: Callable[[int], None] = lambda n: None) -> list[dict[str, tuple[str, ...]]]:
    """K samples of every question's answers (`--repeats K`): sample k is a whole conversation with seed
    `seed + k`, its turn 2 seeing its own turn-1 answer, at `sampled_temperatures`.

    With K = 1 this is exactly `answer_questions` (same calls, same seeds and temperatures).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    table = sampled_temperatures(questions, temperatures, repeats=repeats, default_temperature=default_temperature)
    return [answer_questions(backend, questions, temperatures=table, max_tokens=max_tokens, seed=seed + k,
                             system=system, default_temperature=default_temperature, on_turn=on_turn)
            for k in range(repeats)]
