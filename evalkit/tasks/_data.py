"""Finding and reading task data: --data-dir / EVALKIT_DATA_DIR first, then the HF hub, then the demo set.

Rows are read as strings (never type-inferred: an option "01" stays "01"). Bad rows are reported with
file and row and skipped; the caller counts them into results.json.

Every data file of every loader is read here, by one mechanism: `read_text_file` decodes UTF-8 (with or
without BOM), UTF-16 with a BOM, or GB18030/GBK Chinese text (with one warning), and records the file through
the `record_file` callback (`RunContext.record_file`) for the run manifest. An empty, header-only or
undecodable file, or a CSV header naming a column twice, is one DataError line naming the file.
"""

from __future__ import annotations

import codecs
import csv
import importlib.util
import io
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from evalkit.errors import ConfigError, DataError

__all__ = ["DataSource", "DecodeNotes", "HubSource", "RecordFile", "Rows", "Warn", "bundled_root",
           "check_data_dir", "decode_text", "local_paths", "missing_data_message", "read_file_rows", "read_rows",
           "read_text_file", "read_text_source", "tasks_root"]

Warn = Callable[[str], None]
RecordFile = Callable[[Path], None]  # RunContext.record_file: provenance of every data file read
_CSV_DEFAULT_LIMIT = 131072
_GB_NOTE = ": not UTF-8; read as GB18030 (GBK) Chinese text."


def _ignore(_: Any) -> None:
    """The default warn / record_file callback: do nothing."""


Origin = Literal["local", "hub", "demo", "file"]
_hub_failed: list[str] = []  # once the hub is unreachable, stop trying for the rest of the process


class HubSource(BaseModel):
    """A dataset on the HF hub: `load_dataset(path, name, split=...)`; `{subject}` is filled in."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str
    name: str | None = None
    split_names: dict[str, str] = {}
    text_field: str | None = None


class DataSource(BaseModel):
    """Where a task's data lives. Patterns may use `{subject}` and `{split}`.

    `local` is relative to the data dir, `demo` to the bundled tasks/ folder.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    local: str | None = None
    hub: HubSource | None = None
    demo: str | None = None
    encoding: str = "auto"  # "auto": UTF-8 (with or without BOM), else GB18030/GBK detected; or a codec name

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        if value != "auto":
            try:
                codecs.lookup(value)
            except LookupError:
                raise ValueError(f"unknown encoding '{value}'; use auto, utf-8, gb18030, ...") from None
        return value


@dataclass
class Rows:
    """Rows of one file (or hub split), with where they came from."""

    rows: list[dict[str, str]]
    origin: Origin
    location: str
    line_numbers: list[int] = field(default_factory=list)  # file line of each row, for error messages


def bundled_root() -> Path:
    """The folder holding tasks/, judges/, reports/: inside the wheel, or the source checkout."""
    here = Path(__file__).resolve().parent.parent
    inside = here / "_bundled"
    return inside if inside.is_dir() else here.parent


def tasks_root() -> Path:
    return bundled_root() / "tasks"


def check_data_dir(path: str | Path) -> Path:
    """The --data-dir / EVALKIT_DATA_DIR folder, checked: a missing folder or a file is a ConfigError.

    Without this check a typo in the folder name silently ran on the demo set.
    """
    folder = Path(path).expanduser().absolute()  # messages name exact paths
    if folder.is_file():
        raise ConfigError(f"--data-dir {folder}: is a file, not a folder; give the folder that holds "
                          f"cmmlu/, ceval/, ... (the layout of ../shared/data) or unset EVALKIT_DATA_DIR")
    if not folder.is_dir():
        raise ConfigError(f"--data-dir {folder}: no such folder; check the path, get data with "
                          f"`evalkit data pull TASK --to DIR`, or unset EVALKIT_DATA_DIR")
    return folder


def _raise_csv_field_limit() -> None:
    """Long-context CSVs have cells over csv's default 128 KB limit; allow the largest the platform takes."""
    limit = sys.maxsize
    while limit > _CSV_DEFAULT_LIMIT:
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:  # a C long is 32 bits on some platforms
            limit //= 2


_raise_csv_field_limit()  # at import, so that every CSV reader of the process (evalkit data check too) has it


def _looks_like_chinese(text: str) -> bool:
    """Whether text decoded as GB18030 is plausibly Chinese rather than another encoding misread."""
    wide = [c for c in text if ord(c) > 127]
    if any(0xE000 <= ord(c) <= 0xF8FF for c in wide):  # private-use code points: not GB text
        return False
    common = 0
    for char in wide:
        try:
            char.encode("gb2312")
            common += 1
        except UnicodeEncodeError:
            pass
    return common >= 0.5 * len(wide)


def decode_text(data: bytes, path: Path, encoding: str = "auto", warn: Warn = _ignore) -> str:
    """Decode a data file: UTF-8 (BOM or not), else UTF-16 with a BOM, else GB18030/GBK Chinese (with one
    warning naming the file and the encoding); anything else is one DataError naming file, line and byte.

    `encoding` other than "auto" is used as given (a task YAML's `data.encoding`).

    Examples:
        >>> decode_text("答案".encode("gb18030"), Path("x.csv"), warn=print)
        x.csv: not UTF-8; read as GB18030 (GBK) Chinese text. Convert it once to silence this: iconv -f GB18030 -t UTF-8 x.csv > x.utf8.csv
        '答案'
    """
    if encoding != "auto":
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise DataError(f"{path}:{line}: byte {exc.start} is not "
                            f"{encoding} (data.encoding in the task YAML); fix the encoding setting or "
                            f"convert the file") from None
    body = data.removeprefix(codecs.BOM_UTF8)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.start + len(data) - len(body)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        warn(f"{path}: read as UTF-16 (byte-order mark found); convert it to UTF-8 to silence this")
        return data.decode("utf-16")
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        text = ""
    if text and _looks_like_chinese(text):
        warn(f"{path}{_GB_NOTE} Convert it once to silence this: "
             f"iconv -f GB18030 -t UTF-8 {path} > {path.with_suffix('.utf8' + path.suffix).name}")
        return text.removeprefix("\ufeff")
    line = data.count(b"\n", 0, bad) + 1
    raise DataError(f"{path}:{line}: byte {bad} (0x{data[bad]:02x}) is neither UTF-8 nor GB18030/GBK; "
                    f"convert the file to UTF-8 (iconv -f <its encoding> -t UTF-8)")


class DecodeNotes:
    """Collects the "read as GB18030" notes of many files into one warning line (a GBK copy of CMMLU would
    otherwise print 134 of them). Use `notes.warn` as the loaders' warn callback, then `notes.flush()`.

    Examples:
        >>> notes = DecodeNotes(print)
        >>> for name in ("a.csv", "b.csv"):
        ...     _ = decode_text("答".encode("gb18030"), Path(name), warn=notes.warn)
        >>> notes.flush()
        a.csv and 1 more file: not UTF-8; read as GB18030 (GBK) Chinese text. Convert them once to silence this: iconv -f GB18030 -t UTF-8
    """

    def __init__(self, warn: Warn) -> None:
        self._warn = warn
        self._held: list[str] = []

    def warn(self, message: str) -> None:
        """Hold back a GB18030 note; pass any other warning on at once."""
        if _GB_NOTE in message:
            self._held.append(message)
        else:
            self._warn(message)

    def flush(self) -> None:
        """Emit the held notes: one as it is, several as one line naming the first file and the count."""
        if len(self._held) == 1:
            self._warn(self._held[0])
        elif self._held:
            first = self._held[0].split(_GB_NOTE)[0]
            more = len(self._held) - 1
            self._warn(f"{first} and {more} more file{'s' if more > 1 else ''}{_GB_NOTE} Convert them once to "
                       f"silence this: iconv -f GB18030 -t UTF-8")
        self._held.clear()


def read_text_file(path: Path, *, encoding: str = "auto", warn: Warn = _ignore,
                   record_file: RecordFile = _ignore) -> str:
    """The decoded text of one data file (see `decode_text`), recorded for the run manifest."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror}); check the path and its permissions") from None
    record_file(path)
    return decode_text(data, path, encoding, warn)


def _read_csv(path: Path, text: str) -> tuple[list[dict[str, str]], list[int]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows, lines = [], []
    try:
        header = [(name or "").strip() for name in (reader.fieldnames or [])]
        seen: dict[str, int] = {}
        for number, name in enumerate(header, 1):
            if name and name in seen:
                raise DataError(f"{path}:1: column '{name}' appears twice in the header (columns {seen[name]} "
                                f"and {number}); rename or delete one of them")
            seen.setdefault(name, number)
        for row in reader:
            rows.append({(k or "").strip(): v for k, v in row.items()})  # None = the row lacks that column
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: not valid CSV ({exc}); fix that row") from None
    return rows, lines


def _read_json_rows(path: Path, text: str) -> tuple[list[dict[str, Any]], list[int]]:
    """JSON Lines, or a `.json` file holding one list of objects (LongBench v2's data.json)."""
    import orjson

    if path.suffix == ".json" and text.lstrip().startswith("["):
        try:
            items = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON ({exc}); fix or re-download the file") from None
        numbered = list(enumerate(items, 1))
    else:
        numbered = []
        for number, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                numbered.append((number, orjson.loads(line)))
            except orjson.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not valid JSON ({exc}); fix or delete that line") from None
    for number, item in numbered:
        if not isinstance(item, dict):
            raise DataError(f"{path}:{number}: expected a JSON object per record, got {type(item).__name__}; "
                            f"fix that record")
    return [item for _, item in numbered], [number for number, _ in numbered]


def read_file_rows(path: Path, encoding: str = "auto", *, warn: Warn = _ignore,
                   record_file: RecordFile = _ignore) -> tuple[list[dict[str, Any]], list[int]]:
    """Read a CSV or JSON (Lines) file into rows of strings (CSV) or objects (JSON), with each row's line.

    An empty or header-only file is a DataError: a task must never score n = 0 silently.
    """
    text = read_text_file(path, encoding=encoding, warn=warn, record_file=record_file)
    if path.suffix in (".jsonl", ".json"):
        rows, lines = _read_json_rows(path, text)
    else:
        rows, lines = _read_csv(path, text)
    if not rows:
        what = "is empty" if not text.strip() else "has no data rows (only a header?)"
        raise DataError(f"{path}: {what}; add rows, or restore the file (evalkit data pull / data check)")
    return rows, lines


def hub_allowed() -> bool:
    offline = any(os.environ.get(v, "").lower() in ("1", "true", "yes")
                  for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "EVALKIT_OFFLINE"))
    return not offline and not _hub_failed


def load_hub(hub: HubSource, subject: str, split: str) -> list[dict[str, Any]] | None:
    """Rows from the hub, or None when the hub (or `datasets`) is not available here."""
    if not hub_allowed() or importlib.util.find_spec("datasets") is None:
        return None
    from evalkit._offline import hub_reachable
    from evalkit._quiet import quiet_libraries

    if not hub_reachable():  # one short probe per process (then offline mode) instead of datasets' retries
        return None
    import datasets  # ~2 s to import: only once the hub is known to be there
    name = hub.name.format(subject=subject) if hub.name else None
    try:
        with quiet_libraries(capture_stderr=True):  # datasets' progress bars go to the run's log
            ds = datasets.load_dataset(hub.path, name, split=hub.split_names.get(split, split))
    except Exception as exc:  # noqa: BLE001 - any hub failure means: fall back to the demo set
        _hub_failed.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return None
    return [dict(row) for row in ds]


def read_rows(source: DataSource, *, subject: str, split: str, data_dir: Path | None,
              prefer: Origin | None = None, warn: Warn = _ignore, record_file: RecordFile = _ignore) -> Rows | None:
    """Rows for one subject and split, from the first place that has them (None if nowhere).

    `warn` receives data warnings (a GB18030 file); `record_file` every file read (RunContext.record_file).
    """
    if data_dir is not None:
        data_dir = check_data_dir(data_dir)
    fill = {"subject": subject, "split": split}
    if source.local and data_dir is not None and prefer in (None, "local"):
        path = data_dir / source.local.format(**fill)
        if path.is_file():
            rows, lines = read_file_rows(path, source.encoding, warn=warn, record_file=record_file)
            return Rows(rows, "local", str(path), lines)
        if prefer == "local":
            return None
    if source.hub and prefer in (None, "hub"):
        hub_rows = load_hub(source.hub, subject, split)
        if hub_rows is not None:
            return Rows([{k: "" if v is None else v for k, v in r.items()} for r in hub_rows], "hub",
                        f"hf://{source.hub.path}/{subject}/{split}", list(range(1, len(hub_rows) + 1)))
        if prefer == "hub":
            return None
    if source.demo:
        path = tasks_root() / source.demo.format(**fill)
        if path.is_file():
            rows, lines = read_file_rows(path, source.encoding, warn=warn, record_file=record_file)
            return Rows(rows, "demo", str(path), lines)
    return None


def local_paths(source: DataSource, data_dir: Path | None, subjects: list[str], split: str) -> list[Path]:
    """The files the data dir is searched for, one per subject (empty without a data dir or `local`)."""
    if data_dir is None or not source.local:
        return []
    return [data_dir / source.local.format(subject=s, split=split) for s in subjects]


def missing_data_message(task: str, source: DataSource, data_dir: Path | None, subjects: list[str],
                         split: str) -> str:
    """One line for "no data anywhere": the exact paths tried, then how to get the data."""
    tried: list[str] = []
    paths = local_paths(source, data_dir, subjects, split)
    if paths:
        more = f" (and {len(paths) - 1} more)" if len(paths) > 1 else ""
        tried.append(f"looked for {paths[0]}{more}")
    elif source.local:
        tried.append(f"no --data-dir given (it is searched for {source.local})")
    if source.hub:
        state = "offline" if not hub_allowed() else "unreachable"
        tried.append(f"the HF hub {source.hub.path} ({state})")
    if source.demo:
        first = subjects[0] if subjects else ""
        tried.append(f"the demo set {tasks_root() / source.demo.format(subject=first, split=split)}")
    from evalkit.data._pull import PULLABLE  # lazily: evalkit.data reads files through this module

    layout = f" (with {source.local} under it)" if source.local else ""
    get = (f"get the data with `evalkit data pull {task} --to DIR`" if task in PULLABLE
           else "`evalkit data list` says where each benchmark's data comes from")
    return (f"{task}: no data found: {'; '.join(tried) or 'no data source in the task file'}; pass --data-dir "
            f"DIR{layout}, or {get}")


def read_text_source(source: DataSource, data_dir: Path | None, path_arg: str | None, *, task: str = "this task",
                     warn: Warn = _ignore, record_file: RecordFile = _ignore) -> tuple[str, Origin, str]:
    """Whole text of a perplexity corpus: an explicit file, the data dir, the hub, or the demo text."""
    if data_dir is not None:
        data_dir = check_data_dir(data_dir)

    def read(path: Path) -> str:
        return read_text_file(path, encoding=source.encoding, warn=warn, record_file=record_file)

    if path_arg:
        path = Path(path_arg).expanduser()
        if not path.is_file():
            raise DataError(f"--task-args path={path_arg}: no such file (looked for {path.resolve()}); "
                            f"give a text file (UTF-8 or GB18030)")
        return read(path), "file", str(path)
    if source.local and data_dir is not None:
        path = data_dir / source.local
        if path.is_file():
            return read(path), "local", str(path)
    if source.hub:
        rows = load_hub(source.hub, "", "test")
        if rows is not None:
            field_name = source.hub.text_field or "text"
            return "\n".join(str(r.get(field_name, "")) for r in rows), "hub", f"hf://{source.hub.path}"
    if source.demo:
        path = tasks_root() / source.demo
        if path.is_file():
            return read(path), "demo", str(path)
    raise DataError(missing_data_message(task, source, data_dir, [""], ""))
