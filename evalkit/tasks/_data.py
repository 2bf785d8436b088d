"""Finding and reading task data: --data-dir / EVALKIT_DATA_DIR first, then the HF hub, then the demo set.

Rows are read as strings (never type-inferred: an option "01" stays "01"). Bad rows are reported with
file and row and skipped; the caller counts them into results.json.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from evalkit.errors import DataError

__all__ = ["DataSource", "HubSource", "Rows", "bundled_root", "read_rows", "read_text_source", "tasks_root"]

Origin = Literal["local", "hub", "demo", "file"]
_hub_failed: list[str] = []  # once the hub is unreachable, stop trying for the rest of the process
FILES_READ: set[str] = set()  # every data file read, for the run manifest



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
    encoding: str = "utf-8-sig"


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


def _read_csv(path: Path, encoding: str) -> tuple[list[dict[str, str]], list[int]]:
    text = path.read_text(encoding=encoding)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows, lines = [], []
    for row in reader:
        rows.append({(k or "").strip(): v for k, v in row.items()})  # None = the row lacks that column
        lines.append(reader.line_num)
    return rows, lines


def _read_jsonl(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    import orjson

    rows, lines = [], []
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise DataError(f"{path}:{n}: not valid JSON ({exc}); fix or delete that line") from None
            lines.append(n)
    return rows, lines


def read_file_rows(path: Path, encoding: str = "utf-8-sig") -> tuple[list[dict[str, Any]], list[int]]:
    """Read a CSV or JSON Lines file into rows of strings (CSV) or objects (JSONL)."""
    FILES_READ.add(str(path))
    if path.suffix in (".jsonl", ".json"):
        return _read_jsonl(path)
    return _read_csv(path, encoding)


def hub_allowed() -> bool:
    offline = any(os.environ.get(v, "").lower() in ("1", "true", "yes")
                  for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "EVALKIT_OFFLINE"))
    return not offline and not _hub_failed


def load_hub(hub: HubSource, subject: str, split: str) -> list[dict[str, Any]] | None:
    """Rows from the hub, or None when the hub (or `datasets`) is not available here."""
    if not hub_allowed():
        return None
    try:
        import datasets
    except ImportError:
        return None
    name = hub.name.format(subject=subject) if hub.name else None
    try:
        ds = datasets.load_dataset(hub.path, name, split=hub.split_names.get(split, split))
    except Exception as exc:  # noqa: BLE001 - any hub failure means: fall back to the demo set
        _hub_failed.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return None
    return [dict(row) for row in ds]


def read_rows(source: DataSource, *, subject: str, split: str, data_dir: Path | None,
              prefer: Origin | None = None, warn: Callable[[str], None] = lambda m: None) -> Rows | None:
    """Rows for one subject and split, from the first place that has them (None if nowhere)."""
    fill = {"subject": subject, "split": split}
    if source.local and data_dir is not None and prefer in (None, "local"):
        path = data_dir / source.local.format(**fill)
        if path.is_file():
            rows, lines = read_file_rows(path, source.encoding)
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
            rows, lines = read_file_rows(path, source.encoding)
            return Rows(rows, "demo", str(path), lines)
    return None


def read_text_source(source: DataSource, data_dir: Path | None, path_arg: str | None
                     ) -> tuple[str, Origin, str]:
    """Whole text of a perplexity corpus: an explicit file, the data dir, the hub, or the demo text."""
    if path_arg:
        path = Path(path_arg).expanduser()
        if not path.is_file():
            raise DataError(f"--task-args path={path_arg}: no such file; give a UTF-8 text file")
        return _read_text(path), "file", str(path)
    if source.local and data_dir is not None:
        path = data_dir / source.local
        if path.is_file():
            return _read_text(path), "local", str(path)
    if source.hub:
        rows = load_hub(source.hub, "", "test")
        if rows is not None:
            field_name = source.hub.text_field or "text"
            return "\n".join(str(r.get(field_name, "")) for r in rows), "hub", f"hf://{source.hub.path}"
    if source.demo:
        path = tasks_root() / source.demo
        if path.is_file():
            return _read_text(path), "demo", str(path)
    where = f"{data_dir}/{source.local}" if source.local and data_dir else (source.local or "the hub")
    raise DataError(f"no data found at {where}; pass --data-dir DIR (layout of ../shared/data) or set EVALKIT_DATA_DIR")


def _read_text(path: Path) -> str:
    FILES_READ.add(str(path))
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); convert it with iconv -t UTF-8") from None
