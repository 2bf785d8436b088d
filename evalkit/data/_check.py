"""`evalkit data check DIR`: what each task finds in a data folder, and what is missing or malformed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from evalkit.data._catalog import DATASETS, dataset_info
from evalkit.data._files import MAX_PER_FILE, check_jsonl, check_mc_csv, check_text, needs_keys

__all__ = ["TaskCheck", "check_data_dir", "check_task"]

Status = Literal["ok", "partial", "absent", "problems"]
LONGBENCH_V2_KEYS = ("_id", "question", "choice_A", "choice_B", "choice_C", "choice_D", "answer", "context")


@dataclass
class TaskCheck:
    """What one task found under the data dir."""

    task: str
    found: list[str] = field(default_factory=list)      # summary lines of what is there
    missing: list[str] = field(default_factory=list)    # files the layout has and the folder lacks
    problems: list[str] = field(default_factory=list)   # malformed files, rows and missing required parts
    present: bool = False

    @property
    def status(self) -> Status:
        """ok, partial (optional parts missing), absent (nothing of this task) or problems."""
        if self.problems:
            return "problems"
        if not self.present:
            return "absent"
        return "partial" if self.missing else "ok"


def check_data_dir(root: Path, tasks: Sequence[str] = ()) -> list[TaskCheck]:
    """Check `root` for the named tasks (default: every built-in task with a local layout).

    A named task that is absent is a problem; an unnamed absent one is only listed.
    """
    names = list(tasks) or [d.task for d in DATASETS if d.task != "ppl"]
    results = []
    for name in names:
        result = check_task(root, name)
        if tasks and not result.present and not result.problems:
            result.problems.append(_absent(name, root, result.missing))
        results.append(result)
    return results


def _absent(task: str, root: Path, missing: Sequence[str]) -> str:
    """One line for a named task with nothing under `root`: the exact files expected, and how to get them."""
    from evalkit.data._pull import PULLABLE

    expected = f"expected {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}; " if missing else ""
    get = (f"get it with `evalkit data pull {task} --to {root}`" if task in PULLABLE
           else "`evalkit data list` says where to get it")
    return f"{task}: nothing found under {root} (layout: {_layout(task)}); {expected}{get}"


def _layout(task: str) -> str:
    info = dataset_info(task)
    return info.local if info else "see the task YAML's data.local"


def check_task(root: Path, task: str) -> TaskCheck:
    """Check one task's files under `root` (its kind decides the layout)."""
    info = dataset_info(task)
    layout = info.layout if info else "mc_csv"
    checker = {"mc_csv": _check_mc, "mt_bench": _check_mt_bench, "longbench": _check_longbench,
               "longbench_v2": _check_longbench_v2, "text": _check_text_file, "text_glob": _check_text_glob,
               "cmb_exam": _check_cmb_exam, "cmb_clin": _check_cmb_clin, "classification": _check_classification}[layout]
    return checker(root, task)


def _check_mc(root: Path, task: str) -> TaskCheck:
    from evalkit.tasks._registry import load_task

    spec: Any = load_task(task)
    result = TaskCheck(task)
    local = getattr(getattr(spec, "data", None), "local", None)
    if spec.kind != "multiple_choice" or not local:
        result.problems.append(f"{task}: not a multiple-choice task with a local data layout (data.local); "
                               "evalkit data check knows multiple-choice, MT-Bench, LongBench and text tasks")
        return result
    subjects = _mc_subjects(spec, root, result)
    if subjects is None:
        return result
    splits = [s for s in (spec.fewshot_split, spec.eval_split) if s]
    cols = spec.columns
    for split in splits:
        files = rows = 0
        for subject in subjects:
            path = root / local.format(subject=subject, split=split)
            if not path.is_file():
                result.missing.append(str(path))
                continue
            files += 1
            n, problems = check_mc_csv(path, encoding=spec.data.encoding, question=cols.question,
                                       choices=cols.choices, answer=cols.answer, letters=spec.letters)
            rows += n
            result.problems.extend(problems)
        if files:
            result.present = True
        result.found.append(f"{split}: {files}/{len(subjects)} subject files, {rows:,} rows")
    if result.present and result.missing:  # a benchmark copy without some subjects is a broken copy
        result.problems.extend(f"{path}: missing (the {task} layout has it)" for path in result.missing)
        result.missing.clear()
    return result


def _mc_subjects(spec: Any, root: Path, result: TaskCheck) -> list[str] | None:
    """The task's subjects: listed in its YAML, else the keys of its `subjects_file` under the data dir."""
    if spec.subset_names() or not spec.subjects_file:
        return spec.subset_names() or [spec.name]
    path = root / spec.subjects_file
    if not path.is_file():
        result.missing.append(str(path))
        return None
    try:
        mapping = json.loads(path.read_text(encoding="utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        result.present = True
        result.problems.append(f"{path}: not a valid UTF-8 JSON subject mapping ({exc}); fix or download it again")
        return None
    if not isinstance(mapping, dict) or not mapping:
        result.present = True
        result.problems.append(f"{path}: expected a JSON object subject -> names; it holds no subjects")
        return None
    return [str(k) for k in mapping]


def _check_mt_bench(root: Path, task: str) -> TaskCheck:
    result = TaskCheck(task)
    questions = root / "mt_bench" / "question.jsonl"
    if not questions.is_file():
        result.missing.append(str(questions))
        return result
    result.present = True
    n, problems = check_jsonl(questions, needs_keys("question_id", "category", "turns", lists=("turns",)))
    result.found.append(f"question.jsonl: {n} questions")
    result.problems.extend(problems)
    references = root / "mt_bench" / "reference_answer" / "gpt-4.jsonl"
    answer_keys = needs_keys("question_id", "choices", lists=("choices",))
    if references.is_file():
        n, problems = check_jsonl(references, answer_keys)
        result.found.append(f"reference_answer/gpt-4.jsonl: {n} answers")
        result.problems.extend(problems)
    answers = sorted((root / "mt_bench" / "model_answer").glob("*.jsonl"))
    for path in answers:
        result.problems.extend(check_jsonl(path, answer_keys)[1])
    if answers:
        result.found.append(f"model_answer/: {len(answers)} models")
    return result


def _check_longbench(root: Path, task: str) -> TaskCheck:
    from evalkit.tasks._registry import load_task

    spec: Any = load_task(task)
    suffix = "_e" if task == "longbench_e" else ""
    result = TaskCheck(task)
    found = []
    for name in spec.subset_names():
        path = root / "longbench" / "data" / f"{name}{suffix}.jsonl"
        if not path.is_file():
            result.missing.append(str(path))
            continue
        n, problems = check_jsonl(path, needs_keys("input", "context", "answers", lists=("answers",)))
        found.append(f"{name} ({n})")
        result.problems.extend(problems)
    result.present = bool(found)
    if found:  # the datasets are independent: absent ones are listed, not counted as problems
        result.found.append(f"{len(found)} of {len(spec.subset_names())} datasets: {', '.join(found)}")
    return result


def _check_longbench_v2(root: Path, task: str) -> TaskCheck:
    result = TaskCheck(task)
    path = root / "longbench" / "v2" / "data.json"
    if not path.is_file():
        result.missing.append(str(path))
        return result
    result.present = True
    n, problems = check_jsonl(path, needs_keys(*LONGBENCH_V2_KEYS), allow_array=True)
    result.found.append(f"v2/data.json: {n} questions")
    result.problems.extend(problems)
    return result


def _check_text_file(root: Path, task: str) -> TaskCheck:
    info = dataset_info(task)
    result = TaskCheck(task)
    path = root / (info.local if info else "")
    if not path.is_file():
        result.missing.append(str(path))
        return result
    result.present = True
    chars, problems = check_text(path)
    result.found.append(f"{path.name}: {chars:,} characters")
    result.problems.extend(problems)
    return result


def _check_text_glob(root: Path, task: str) -> TaskCheck:
    info = dataset_info(task)
    result = TaskCheck(task)
    pattern = info.local if info else "*.txt"
    paths = sorted(root.glob(pattern))
    if not paths:
        result.missing.append(str(root / pattern))
        return result
    result.present = True
    total = 0
    for path in paths:
        chars, problems = check_text(path)
        total += chars
        result.problems.extend(problems)
    result.found.append(f"{len(paths)} text files, {total:,} characters")
    return result


def _check_cmb_exam(root: Path, task: str) -> TaskCheck:
    """CMB-Exam's test and val files, every row checked by the loader's own rule."""
    from evalkit.tasks._cmb_data import check_local_files
    from evalkit.tasks._registry import load_task

    spec: Any = load_task(task)
    source = spec.data
    result = TaskCheck(task)
    result.found, result.missing, result.problems = check_local_files(source, root)
    result.present = bool(result.found) or bool(result.problems)
    answers = source.local.get("test_answers")
    if result.present and answers and not (root / answers).is_file():
        result.missing.append(str(root / answers))  # needed only when the test questions carry no answers
    return result


def _rows(path: Path, result: TaskCheck, encoding: str = "auto") -> tuple[list[dict[str, Any]], list[int]] | None:
    """The rows of a CSV/JSON/JSON Lines data file as the task loaders read them; None (and a problem) if unreadable."""
    from evalkit.errors import DataError
    from evalkit.tasks._data import read_file_rows

    if not path.is_file():
        result.missing.append(str(path))
        return None
    result.present = True
    try:
        return read_file_rows(path, encoding)
    except DataError as exc:
        result.problems.append(str(exc))
        return None


def _check_cmb_clin(root: Path, task: str) -> TaskCheck:
    """CMB-Clin's case file: every case checked by the loader's own rule (description, questions, references)."""
    from evalkit.tasks._cmb_clin import _check_case
    from evalkit.tasks._registry import load_task

    spec: Any = load_task(task)
    result = TaskCheck(task)
    path = root / spec.data.local
    read = _rows(path, result)
    if read is None:
        return result
    rows, lines = read
    bad = [f"{path}:{lines[i]}: {checked}" for i, row in enumerate(rows)
           if isinstance(checked := _check_case(row, i, ""), str)]
    result.problems.extend(bad[:MAX_PER_FILE])
    if len(bad) > MAX_PER_FILE:
        result.problems.append(f"{path}: ... and {len(bad) - MAX_PER_FILE} more bad case(s); fix them or "
                               "download the file again")
    questions = sum(len(r.get("QA_pairs") or []) for r in rows if isinstance(r.get("QA_pairs"), list))
    result.found.append(f"{path.name}: {len(rows)} cases, {questions} questions")
    return result


def _check_classification(root: Path, task: str) -> TaskCheck:
    """A classification task's eval split: its text and label columns, and every label one the task declares."""
    from evalkit.tasks._registry import load_task

    spec: Any = load_task(task)
    result = TaskCheck(task)
    path = root / spec.data.local.format(subject=spec.name, split=spec.eval_split)
    read = _rows(path, result, spec.data.encoding)
    if read is None:
        return result
    rows, lines = read
    wanted = [*spec.text_fields, spec.label_column]
    absent = [c for c in wanted if all(row.get(c) is None for row in rows)]
    if absent:
        result.problems.append(f"{path}: no row has the field(s) {', '.join(repr(c) for c in absent)} (the first "
                               f"has {', '.join(repr(str(k)) for k in rows[0])}); {task} reads {', '.join(wanted)} "
                               f"({spec.source_file or 'the task YAML'})")
        return result
    bad = []
    for row, line in zip(rows, lines):
        lacking = [c for c in wanted if row.get(c) is None]
        label = "" if lacking else _label(spec, row[spec.label_column])
        if lacking:
            bad.append(f"{path}:{line}: missing field(s) {', '.join(lacking)}")
        elif label not in spec.labels:
            bad.append(f"{path}:{line}: label {label!r} is not one of {', '.join(spec.labels)}")
    result.problems.extend(bad[:MAX_PER_FILE])
    if len(bad) > MAX_PER_FILE:
        result.problems.append(f"{path}: ... and {len(bad) - MAX_PER_FILE} more bad row(s)")
    result.found.append(f"{spec.eval_split}: {len(rows) - len(bad):,} rows, {len(spec.labels)} labels")
    return result


def _label(spec: Any, value: Any) -> str:
    """A row's label as the classification loader reads it: an integer i from the hub is label_names[i]."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(spec.label_names):
        return str(spec.label_names[value])
    return str(value).strip()
