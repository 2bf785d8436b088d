"""CMB-Exam data: where the questions are found, and the checks every row passes before it is scored.

Places, searched in order (the first that has the split wins):

1. ``--data-dir DIR`` (or EVALKIT_DATA_DIR), in the layout of the official CMB zip (`data/CMB.zip` unpacked
   under ``DIR/cmb/``)::

       DIR/cmb/CMB-Exam/CMB-test/CMB-test-choice-question-merge.json   test questions (JSON list)
       DIR/cmb/CMB-test-choice-answer.json                            test answers: [{id, answer, ...}]
       DIR/cmb/CMB-Exam/CMB-val/CMB-val-merge.json                    val questions with answers + explanations

   Each item is ``{"id", "exam_type", "exam_class", "exam_subject", "question", "question_type",
   "option": {"A": ..., ...}, "answer", "explanation"?}``. Test items without an ``answer`` get it from the
   answer file, by ``id``. The paths are the task YAML's ``data.local`` and can be changed there.
2. The HF hub: ``load_dataset("FreedomIntelligence/CMB", "exam", split=...)`` (same fields).
3. evalkit's demo set ``tasks/demo/cmb/`` (original questions written for evalkit, NOT CMB).

Bad rows are skipped and counted, each with one warning naming file:row and the fix: a gold answer naming a
letter with no option, a letter given twice, an empty option list, a missing gold answer, a single-answer
question with several gold letters, an option list that is not a mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from evalkit.errors import DataError
from evalkit.tasks._cmb_score import MULTI_ANSWER_TYPE, OFFICIAL_LETTERS
from evalkit.tasks._data import (
    HubSource,
    RecordFile,
    Warn,
    check_data_dir,
    load_hub,
    read_file_rows,
    tasks_root,
)

__all__ = ["CmbDataSource", "CmbQuestion", "CmbSplit", "check_local_files", "load_split"]

Split = Literal["test", "val"]
_WARN_ROWS = 10  # rows warned about one by one; the rest are counted in one line


class CmbDataSource(BaseModel):
    """Where CMB-Exam lives: files under the data dir, the hub dataset, the bundled demo files."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    local: dict[str, str] = {}  # split -> path under the data dir; "test_answers" -> the answer file
    hub: HubSource | None = None
    demo: dict[str, str] = {}  # split -> path under the bundled tasks/ folder


@dataclass(frozen=True)
class CmbQuestion:
    """One checked CMB-Exam item. `options` holds the non-empty options in letter order."""

    doc_index: int
    qid: str
    exam_type: str
    exam_class: str
    exam_subject: str
    question_type: str
    question: str
    options: tuple[tuple[str, str], ...]
    answer: str
    explanation: str
    where: str

    @property
    def multi(self) -> bool:
        """Whether this is a multi-answer question (多项选择题)."""
        return self.question_type == MULTI_ANSWER_TYPE


@dataclass
class CmbSplit:
    """The checked questions of one split, where they came from, and the rows skipped (as "file:row: why")."""

    questions: list[CmbQuestion]
    origin: str
    location: str
    skipped: list[str]


def _options(raw: Any) -> tuple[tuple[str, str], ...] | str:
    """The (letter, text) pairs of a row's `option` field, or the problem with it."""
    if not isinstance(raw, dict):
        return f"field 'option' is {type(raw).__name__}, not a mapping of letters to texts"
    pairs = [(str(k).strip(), "" if v is None else str(v)) for k, v in raw.items()]
    pairs = [(k, v) for k, v in pairs if v.strip()]  # the hub pads absent options with empty values
    if not pairs:
        return "empty option list"
    bad = [k for k, _ in pairs if k not in OFFICIAL_LETTERS]
    if bad:
        return f"option key {bad[0]!r} is not one of A-G"
    return tuple(sorted(pairs))


def _answer_problem(answer: str, letters: set[str], question_type: str) -> str:
    if not answer:
        return "no gold answer (test answers come from the answer file, or use --task-args split=val)"
    unknown = [c for c in answer if c not in OFFICIAL_LETTERS]
    if unknown:
        return f"answer {answer!r} has {unknown[0]!r}, not a letter A-G"
    repeated = sorted({c for c in answer if answer.count(c) > 1})
    if repeated:
        return f"answer {answer!r} names {repeated[0]} twice"
    missing = [c for c in answer if c not in letters]
    if missing:
        return f"answer {answer!r} names {missing[0]}, which has no option (options {''.join(sorted(letters))})"
    if len(answer) > 1 and question_type != MULTI_ANSWER_TYPE:
        return f"answer {answer!r} has {len(answer)} letters but question_type is {question_type!r}"
    return ""


def _check_row(row: dict[str, Any], index: int, where: str) -> CmbQuestion | str:
    for name in ("exam_type", "exam_class", "question", "question_type"):
        if not str(row.get(name) or "").strip():
            return f"field '{name}' is missing or empty"
    options = _options(row.get("option"))
    if isinstance(options, str):
        return options
    answer = str(row.get("answer") or "").strip()
    problem = _answer_problem(answer, {k for k, _ in options}, str(row["question_type"]).strip())
    if problem:
        return problem
    return CmbQuestion(index, str(row.get("id", index)), str(row["exam_type"]).strip(),
                       str(row["exam_class"]).strip(), str(row.get("exam_subject") or ""),
                       str(row["question_type"]).strip(), str(row["question"]), options, answer,
                       str(row.get("explanation") or ""), where)


def _merge_answers(rows: list[dict[str, Any]], answers_path: Path | None, warn: Warn,
                   record_file: RecordFile) -> None:
    """Fill test items that have no answer from the official answer file (matched by id)."""
    if answers_path is None or not answers_path.is_file() or all(r.get("answer") for r in rows):
        return
    answer_rows, _ = read_file_rows(answers_path, warn=warn, record_file=record_file)
    by_id = {str(a.get("id")): a.get("answer") for a in answer_rows}
    for row in rows:
        if not row.get("answer") and str(row.get("id")) in by_id:
            row["answer"] = by_id[str(row.get("id"))]


def _raw_rows(source: CmbDataSource, split: Split, data_dir: Path | None, warn: Warn,
              record_file: RecordFile) -> tuple[list[dict[str, Any]], list[int], str, str] | None:
    if data_dir is not None and split in source.local:
        path = check_data_dir(data_dir) / source.local[split]
        if path.is_file():
            rows, lines = read_file_rows(path, warn=warn, record_file=record_file)
            if split == "test" and "test_answers" in source.local:
                _merge_answers(rows, data_dir / source.local["test_answers"], warn, record_file)
            return rows, lines, "local", str(path)
    if source.hub is not None:
        hub_rows = load_hub(source.hub, "", split)
        if hub_rows is not None:
            return hub_rows, list(range(1, len(hub_rows) + 1)), "hub", f"hf://{source.hub.path}/{split}"
    if split in source.demo:
        path = tasks_root() / source.demo[split]
        if path.is_file():
            rows, lines = read_file_rows(path, warn=warn, record_file=record_file)
            return rows, lines, "demo", str(path)
    return None


def load_split(source: CmbDataSource, split: Split, *, data_dir: Path | None, warn: Warn,
               record_file: RecordFile, task: str = "cmb") -> CmbSplit:
    """The checked questions of `split` from the first place that has it; bad rows warned about and skipped.

    Raises:
        DataError: the split is nowhere (the paths tried are named), or every row of it was skipped.
    """
    found = _raw_rows(source, split, data_dir, warn, record_file)
    if found is None:
        tried = [str(data_dir / source.local[split])] if data_dir is not None and split in source.local else []
        tried += [f"hf://{source.hub.path}"] if source.hub else []
        raise DataError(f"{task}: no '{split}' split found (tried {', '.join(tried) or 'nothing'}, and the demo "
                        f"set); pass --data-dir DIR with {source.local.get(split, 'the CMB files')} under it")
    rows, lines, origin, location = found
    questions, skipped = [], []
    for index, row in enumerate(rows):
        where = f"{location}:{lines[index] if index < len(lines) else index + 1}"
        checked = _check_row(row, index, where)
        if isinstance(checked, str):
            skipped.append(f"{where}: {checked}")
            if len(skipped) <= _WARN_ROWS:
                warn(f"{where}: {checked}; row skipped (fix the row to include it)")
        else:
            questions.append(checked)
    if len(skipped) > _WARN_ROWS:
        warn(f"{location}: {len(skipped) - _WARN_ROWS} more rows skipped ({len(skipped)} in all; results.json "
             f"info.skipped lists the first ones)")
    if not questions:
        raise DataError(f"{task}: every row of {location} was skipped ({skipped[0].split(': ', 1)[1]}, ...); "
                        f"fix the data or pick another split with --task-args split=val")
    return CmbSplit(questions, origin, location, skipped)


def check_local_files(source: CmbDataSource, root: Path) -> tuple[list[str], list[str], list[str]]:
    """For `evalkit data check`: (found lines, missing paths, problems) of the CMB-Exam files under `root`.

    Every row is checked as a run checks it; each bad row is a problem naming file:row and why.
    """
    found: list[str] = []
    missing: list[str] = []
    problems: list[str] = []
    for split in ("test", "val"):
        if split not in source.local:
            continue
        path = root / source.local[split]
        if not path.is_file():
            missing.append(str(path))
            continue
        try:
            rows, lines = read_file_rows(path)
        except DataError as exc:
            problems.append(str(exc))
            continue
        if split == "test" and "test_answers" in source.local:
            _merge_answers(rows, root / source.local["test_answers"], lambda _: None, lambda _: None)
        bad = [f"{path}:{lines[i]}: {checked}" for i, row in enumerate(rows)
               if isinstance(checked := _check_row(row, i, ""), str)]
        problems.extend(bad[:_WARN_ROWS])
        if len(bad) > _WARN_ROWS:
            problems.append(f"{path}: {len(bad) - _WARN_ROWS} more bad rows")
        found.append(f"{split}: {len(rows) - len(bad):,} questions" + (f" ({len(bad)} bad)" if bad else ""))
    return found, missing, problems
