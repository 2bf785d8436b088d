"""Checks of single data files: each returns the problems it finds, one line each, naming file, row and fix."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["MAX_PER_FILE", "check_jsonl", "check_mc_csv", "check_text", "decode"]

MAX_PER_FILE = 5  # problems listed per file; the rest are counted


def decode(path: Path, encoding: str = "auto") -> tuple[str | None, str | None]:
    """(text, None), or (None, problem) for a file that is not UTF-8 text (or not the task's `data.encoding`).

    The task loaders read GB18030 files with a warning; a data check reports them, with the iconv line that
    converts them once.
    """
    from evalkit.errors import DataError
    from evalkit.tasks._data import decode_text

    notes: list[str] = []
    try:
        text = decode_text(path.read_bytes(), path, encoding, warn=notes.append)
    except DataError as exc:
        return None, str(exc)
    if notes:
        return None, notes[0]
    return text, None


def _capped(path: Path, problems: list[str]) -> list[str]:
    if len(problems) <= MAX_PER_FILE:
        return problems
    return [*problems[:MAX_PER_FILE], f"{path}: ... and {len(problems) - MAX_PER_FILE} more problem(s) in this file"]


def _header_problems(path: Path, header: Sequence[str], required: Sequence[str]) -> list[str]:
    names = [h.strip() for h in header]
    problems = []
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            problems.append(f"{path}:1: duplicate column '{name}' in the header; rename or delete one")
        seen.add(name)
    lacking = [c for c in required if c not in seen]
    if lacking:
        problems.append(f"{path}:1: the header lacks column(s) {', '.join(repr(c) for c in lacking)} "
                        f"(it has {', '.join(repr(n) for n in names)}); the first row must name the columns "
                        f"{', '.join(required)}")
    return problems


def check_mc_csv(path: Path, *, encoding: str, question: str, choices: Sequence[str], answer: str,
                 letters: Sequence[str]) -> tuple[int, list[str]]:
    """(rows, problems) of a multiple-choice CSV: encoding, header, field counts, empty questions, answers."""
    text, problem = decode(path, encoding)
    if text is None:
        return 0, [problem or f"{path}: unreadable"]
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        wanted = ", ".join([question, *choices, answer])
        return 0, [f"{path}:1: empty file or empty header row; the first row must name the columns {wanted}"]
    problems = _header_problems(path, header, [question, *choices, answer])
    if problems:
        return 0, problems
    index = {name.strip(): i for i, name in enumerate(header)}
    rows, start = 0, reader.line_num + 1
    for row in reader:
        rows += 1
        problems.extend(_row_problems(f"{path}:{start}", row, len(header), index, question, answer, letters))
        start = reader.line_num + 1
    if rows == 0:
        problems.append(f"{path}: a header but no rows; the file holds no questions")
    return rows, _capped(path, problems)


def _row_problems(where: str, row: list[str], width: int, index: dict[str, int], question: str, answer: str,
                  letters: Sequence[str]) -> list[str]:
    if len(row) != width:
        return [f"{where}: {len(row)} fields where the header has {width}; quote fields that hold commas"]
    problems = []
    if not row[index[question]].strip():
        problems.append(f"{where}: empty question (column '{question}')")
    gold = row[index[answer]].strip()
    if gold not in letters:
        problems.append(f"{where}: answer {gold!r} (column '{answer}') is not one of {'/'.join(letters)}")
    return problems


def check_jsonl(path: Path, validate: Callable[[Any], str | None], *, allow_array: bool = False
                ) -> tuple[int, list[str]]:
    """(records, problems) of a JSON Lines file (or a JSON array when `allow_array`); `validate` names a bad record."""
    text, problem = decode(path)
    if text is None:
        return 0, [problem or f"{path}: unreadable"]
    if allow_array and text.lstrip().startswith("["):
        try:
            records = [(i + 1, r) for i, r in enumerate(json.loads(text))]
        except ValueError as exc:
            return 0, [f"{path}: not valid JSON ({exc}); fix the file or download it again"]
        label = "record"
    else:
        records, label, problems = [], "line", []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append((n, json.loads(line)))
            except ValueError as exc:
                problems.append(f"{path}:{n}: not valid JSON ({exc.args[0] if exc.args else exc}); fix or delete that line")
        if problems:
            return len(records), _capped(path, problems)
    problems = []
    for n, record in records:
        bad = validate(record)
        if bad:
            problems.append(f"{path}:{n}: {bad}" if label == "line" else f"{path} {label} {n}: {bad}")
    if not records:
        problems.append(f"{path}: no records")
    return len(records), _capped(path, problems)


def check_text(path: Path) -> tuple[int, list[str]]:
    """(characters, problems) of a plain-text corpus: UTF-8 and not empty."""
    text, problem = decode(path)
    if text is None:
        return 0, [problem or f"{path}: unreadable"]
    if not text.strip():
        return 0, [f"{path}: empty file"]
    return len(text), []


def needs_keys(*keys: str, lists: Sequence[str] = ()) -> Callable[[Any], str | None]:
    """A record validator: a JSON object with these keys (those in `lists` holding lists)."""

    def validate(record: Any) -> str | None:
        if not isinstance(record, dict):
            return f"expected a JSON object, got {type(record).__name__}"
        lacking = [k for k in keys if k not in record]
        if lacking:
            return f"missing field(s) {', '.join(lacking)}"
        wrong = [k for k in lists if not isinstance(record[k], list)]
        return f"field(s) {', '.join(wrong)} must be a list" if wrong else None

    return validate
