"""Read an lm-eval results_*.json into the shape of evalkit's results.json, so existing lm-eval numbers can
sit on the same leaderboard (and be compared by the library API).

lm-eval 0.4 layout: {"results": {task: {"acc,none": x, "acc_stderr,none": y, "alias": " - name"}},
"group_subtasks": {group: [task, ...]}, "n-samples": {task: {"original", "effective"}}, "n-shot", "versions",
"higher_is_better", "config": {"model", "model_args", ...}, "date": unix time, "lm_eval_version", ...}.
Metric keys are "<metric>,<filter>"; the default filter "none" is dropped, any other filter is appended
(`exact_match,strict-match` → `exact_match_strict-match`, its stderr `exact_match_strict-match_stderr`).
A top-level task keeps its lm-eval name except the few whose evalkit twin is the same split
(`ceval-valid` → `ceval`); nested lm-eval groups become evalkit groups, leaf tasks become subtasks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from evalkit.errors import DataError
from evalkit.records import RunRecord

__all__ = ["TASK_ALIASES", "convert_lmeval_results", "import_lmeval_results", "lmeval_record"]

# lm-eval task name -> evalkit task name, where both evaluate the same data split.
TASK_ALIASES: dict[str, str] = {"ceval-valid": "ceval"}
_SKIP = frozenset({"alias", "name", "sample_len", "samples"})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _metrics(entry: Mapping[str, Any]) -> dict[str, float]:
    """{"acc,none": .4, "acc_stderr,none": .02, "exact_match,flex": .3} → {"acc": .4, "acc_stderr": .02, ...}."""
    out: dict[str, float] = {}
    for key, value in entry.items():
        number = _number(value)
        if key in _SKIP or number is None:
            continue
        metric, _, filter_name = key.partition(",")
        stderr = metric.endswith("_stderr")
        base = metric[: -len("_stderr")] if stderr else metric
        if filter_name and filter_name != "none":
            base = f"{base}_{filter_name}"
        out[f"{base}_stderr" if stderr else base] = number
    return out


def _short(name: str, parent: str, entry: Mapping[str, Any]) -> str:
    alias = entry.get("alias")
    if isinstance(alias, str) and alias.strip():
        return re.sub(r"^[\s-]+", "", alias).strip()
    for sep in ("_", "-"):
        if name.startswith(parent + sep):
            return name[len(parent) + 1:]
    return name


def _count(data: Mapping[str, Any], name: str) -> int | None:
    entry = data.get("n-samples", {}).get(name)
    if isinstance(entry, Mapping):
        value = _number(entry.get("effective", entry.get("original")))
        return int(value) if value is not None else None
    return None


def _task(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    results: Mapping[str, Any] = data["results"]
    tree: Mapping[str, list[str]] = data.get("group_subtasks") or {}
    groups: dict[str, dict[str, Any]] = {}
    subtasks: dict[str, dict[str, Any]] = {}

    def walk(parent: str) -> int:
        total = 0
        for child in tree.get(parent, []):
            entry = results.get(child, {})
            if tree.get(child):
                n = walk(child)
                groups[_short(child, name, entry)] = {**_metrics(entry), "n": n}
            else:
                n = _count(data, child) or 0
                subtasks[_short(child, name, entry)] = {**_metrics(entry), "n": n}
            total += n
        return total

    n = walk(name) if tree.get(name) else (_count(data, name) or 0)
    info = {"source": "lm-eval", "lm_eval_task": name}
    for key, field_name in (("n-shot", "num_fewshot"), ("versions", "task_version"),
                            ("higher_is_better", "higher_is_better")):
        value = (data.get(key) or {}).get(name)
        if value is not None:
            info[field_name] = value
    return {"metrics": _metrics(results.get(name, {})), "groups": groups, "subtasks": subtasks,
            "n": n, "info": info}


def _model(config: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    raw_args = config.get("model_args") or ""
    args: dict[str, str] = {}
    if isinstance(raw_args, str):
        args = dict(part.split("=", 1) for part in raw_args.split(",") if "=" in part)
    elif isinstance(raw_args, Mapping):
        args = {str(k): str(v) for k, v in raw_args.items()}
    name = args.get("pretrained") or args.get("model") or data.get("model_name") or config.get("model") or "unknown"
    model = {"backend": f"lm-eval:{config.get('model', '?')}", "model": str(name), "model_args": raw_args}
    if args.get("revision"):
        model["revision"] = args["revision"]
    return model


def _created(data: Mapping[str, Any]) -> str:
    date = _number(data.get("date"))
    if date is None:
        return str(data.get("date") or "")
    return datetime.fromtimestamp(date, tz=timezone.utc).isoformat(timespec="seconds")


def convert_lmeval_results(data: Mapping[str, Any], *, name: str = "results") -> dict[str, Any]:
    """Convert a parsed lm-eval results dict; `name` (the file stem) makes the run id unique."""
    if not isinstance(data.get("results"), Mapping):
        raise DataError(f"{name}: not an lm-eval results file (no 'results' mapping)")
    raw_config = data.get("config")
    config: Mapping[str, Any] = raw_config if isinstance(raw_config, Mapping) else {}
    model = _model(config, data)
    children = {c for subs in (data.get("group_subtasks") or {}).values() for c in subs}
    tops = sorted(t for t in data["results"] if t not in children)
    tasks = {TASK_ALIASES.get(t, t): _task(data, t) for t in tops}
    versions = {k: v for k, v in (("lm_eval", data.get("lm_eval_version")),
                                  ("transformers", data.get("transformers_version")),
                                  ("lm_eval_git", data.get("git_hash"))) if v}
    total = data.get("total_evaluation_time_seconds")
    timing = {"total": float(total)} if isinstance(total, (int, float, str)) and _is_float(total) else {}
    model_slug = re.sub(r"[^A-Za-z0-9._-]+", "-", str(model["model"]).split("/")[-1]).strip("-") or "model"
    return {"run_id": f"lm-eval-{model_slug}-{name}", "created": _created(data), "model": model,
            "config": dict(config), "tasks": tasks, "versions": versions, "timing": timing, "source": "lm-eval"}


def _is_float(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def import_lmeval_results(path: Path) -> dict[str, Any]:
    """Read an lm-eval results_*.json file as an evalkit results dict (with "source": "lm-eval").

    Examples:
        >>> convert_lmeval_results({"results": {"cmmlu": {"acc,none": 0.3, "acc_stderr,none": 0.01}},
        ...                         "config": {"model": "hf", "model_args": "pretrained=org/m"}})["tasks"]["cmmlu"]["metrics"]
        {'acc': 0.3, 'acc_stderr': 0.01}
    """
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise DataError(f"{path}: no such lm-eval results file") from None
    except orjson.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, Mapping):
        raise DataError(f"{path}: not an lm-eval results file (top level is not an object)")
    return convert_lmeval_results(data, name=path.stem)


def lmeval_record(path: Path) -> RunRecord:
    """An lm-eval results_*.json read as a `RunRecord` (source "lm-eval"), for the report, gate and API."""
    from evalkit.records import parse_record

    return parse_record(import_lmeval_results(path), where=str(path))
