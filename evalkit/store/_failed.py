"""A failed run's marker: `runs/<run_id>/failed.json`, so readers (the report, `evalkit gate`) can skip it.

A run that stops with an error keeps its directory (the samples written so far are evidence, and the response
cache beside it already holds every finished batch), but without a results.json it is not a result. The
marker says so and why, in one line, with secrets taken out of the message.

Examples:
    >>> import tempfile, pathlib
    >>> run = pathlib.Path(tempfile.mkdtemp())
    >>> _ = mark_failed(run, ValueError("server https://me:sk-123@host/v1 said 401"))
    >>> read_failure(run)["error"]
    'ValueError: server https://***@host/v1 said 401'
    >>> is_failed(run), is_failed(pathlib.Path(tempfile.mkdtemp()))
    (True, False)
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

__all__ = ["FAILED_FILE", "is_failed", "mark_failed", "read_failure"]

FAILED_FILE = "failed.json"
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@")
_SECRET_ARG = re.compile(r"(?P<name>\b[\w-]*(?:api[_-]?key|token|secret|password)[\w-]*\s*[=:]\s*)[^\s,;&]+",
                         re.IGNORECASE)
_BEARER = re.compile(r"(?P<name>\bBearer\s+)[^\s,;]+", re.IGNORECASE)


def _one_line(error: BaseException | str) -> str:
    if isinstance(error, BaseException):
        text = str(error).strip()
        lines = text.splitlines()
        text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    else:
        text = (error.strip().splitlines() or [""])[0]
    text = _USERINFO.sub(r"\g<scheme>***@", text)
    text = _SECRET_ARG.sub(r"\g<name>***", text)
    return _BEARER.sub(r"\g<name>***", text)


def mark_failed(run_dir: str | Path, error: BaseException | str, *, stage: str = "") -> Path:
    """Write `failed.json` into `run_dir` (created when missing) and return its path.

    Args:
        run_dir: the run's directory (`runs/<run_id>`).
        error: the exception that ended the run, or its message; only the first line is kept, with URL
            userinfo, `api_key=`-style values and bearer tokens replaced by `***`.
        stage: optional, where it failed (e.g. the task name, or "model loading").

    Returns:
        The path of the marker file.
    """
    path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"status": "failed", "error": _one_line(error),
                              "failed_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if stage:
        record["stage"] = stage
    if isinstance(error, BaseException):
        record["error_type"] = type(error).__name__
    target = path / FAILED_FILE
    scratch = target.with_name(f".{FAILED_FILE}.{os.getpid()}.tmp")
    scratch.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
    os.replace(scratch, target)  # readers never see half a file
    return target


def read_failure(run_dir: str | Path) -> dict[str, Any] | None:
    """The failure record of a run directory, or None when the run is not marked failed.

    A marker that cannot be parsed still counts as a failure (its error says so).
    """
    target = Path(run_dir) / FAILED_FILE
    if not target.is_file():
        return None
    try:
        value = orjson.loads(target.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        return {"status": "failed", "error": f"{target} is unreadable ({type(exc).__name__})"}
    return value if isinstance(value, dict) else {"status": "failed", "error": f"{target} is not an object"}


def is_failed(run_dir: str | Path) -> bool:
    """True when `run_dir` carries a failure marker (the report and gate skip such runs)."""
    return (Path(run_dir) / FAILED_FILE).is_file()
