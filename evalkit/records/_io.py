"""Reading and writing run records: the only code that turns results.json into a `RunRecord` and back.

Files of schema 1 (before `schema_version` existed) are upgraded on read: their tasks get a kind and family
from what they contain, non-numeric metric values move into `info`, unknown top-level keys into `legacy`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from evalkit.errors import DataError
from evalkit.records._rules import higher_is_better, is_number, metric_names
from evalkit.records._schema import SCHEMA_VERSION, RunRecord

__all__ = ["dump_record", "json_schema", "load_record", "parse_record", "results_file"]

_V1_TOP = {"run_id", "created", "model", "config", "tasks", "versions", "timing", "backend_stats", "cache_stats",
           "warnings", "judge", "scores", "votes", "reliability", "ranking", "source", "status", "error",
           "failed_tasks"}
_TASK_KEYS = {"kind", "family", "metrics", "groups", "subtasks", "n", "info", "lower_is_better", "demo_data"}


def results_file(path: str | Path) -> Path:
    """results.json itself, or the one inside a run directory."""
    target = Path(path)
    return target / "results.json" if target.is_dir() else target


def load_record(path: str | Path) -> RunRecord:
    """Read runs/<run_id>/ (or its results.json) into a `RunRecord`, upgrading older files.

    Raises:
        DataError: the file is missing, not JSON, or not an evalkit results file (one line naming it).
    """
    file = results_file(path)
    try:
        data = orjson.loads(file.read_bytes())
    except FileNotFoundError:
        raise DataError(f"{file}: no such results file; pass runs/<run_id>/results.json or its directory") from None
    except IsADirectoryError:
        raise DataError(f"{file}: is a directory without results.json; pass a run directory") from None
    except orjson.JSONDecodeError as exc:
        raise DataError(f"{file}: not valid JSON ({exc}); was the run interrupted while writing it?") from None
    return parse_record(data, where=str(file))


def parse_record(data: Any, *, where: str = "results") -> RunRecord:
    """Validate a results mapping (current or schema 1) into a `RunRecord`."""
    if not isinstance(data, Mapping) or not isinstance(data.get("tasks"), Mapping):
        raise DataError(f"{where}: not an evalkit results file (no 'tasks' object)")
    raw = dict(data) if data.get("schema_version") == SCHEMA_VERSION else _upgrade_v1(data)
    try:
        return RunRecord.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise DataError(f"{where}: field '{loc}': {err['msg']}; the file does not follow the run record schema "
                        f"(evalkit schema prints it)") from None


def dump_record(record: RunRecord) -> bytes:
    """results.json bytes: indented, keys in schema order, nulls kept (a null metric is information)."""
    return orjson.dumps(record.model_dump(mode="json"), option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of results.json, generated from the models."""
    schema = RunRecord.model_json_schema(mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://evalkit.dev/schema/results-{SCHEMA_VERSION}.json", **schema}


def schema_text() -> str:
    """The JSON Schema as the text `evalkit schema` prints and the package ships."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


# ---- schema 1 ---------------------------------------------------------------------------------------------


def _upgrade_v1(data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in data.items() if k in _V1_TOP}
    legacy = {k: v for k, v in data.items() if k not in _V1_TOP}
    out["schema_version"] = SCHEMA_VERSION
    out["run_id"] = str(data.get("run_id") or "run")
    model = data.get("model")
    out["model"] = dict(model) if isinstance(model, Mapping) else {"model": str(model or "unknown")}
    for key in ("config", "versions", "timing"):
        value = data.get(key)
        out[key] = {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}
    out["timing"] = {k: float(v) for k, v in out["timing"].items() if is_number(v)}
    out["versions"] = {k: str(v) for k, v in out["versions"].items()}
    out["warnings"] = [str(w) for w in data.get("warnings") or []]
    if legacy:
        out["config"] = {**out["config"], "legacy": legacy}
    judged_task_extra = {k: data[k] for k in ("reliability", "ranking") if k in data} if len(data["tasks"]) == 1 else {}
    out["tasks"] = {str(name): _upgrade_task(str(name), task, judged_task_extra)
                    for name, task in data["tasks"].items() if isinstance(task, Mapping)}
    if isinstance(out.get("model"), Mapping) and isinstance(out["model"].get("models"), list) and "scores" in data:
        out["source"] = out.get("source") or "evalkit-judge"
    return out


def _table(values: Any, moved: dict[str, Any]) -> dict[str, float | int | None]:
    table: dict[str, float | int | None] = {}
    for key, value in (values.items() if isinstance(values, Mapping) else ()):
        if value is None or is_number(value):
            table[str(key)] = value
        else:
            moved[str(key)] = value
    return table


def _upgrade_task(name: str, task: Mapping[str, Any], judged_extra: Mapping[str, Any]) -> dict[str, Any]:
    info = dict(task["info"]) if isinstance(task.get("info"), Mapping) else {}
    moved: dict[str, Any] = {}
    out: dict[str, Any] = {"metrics": _table(task.get("metrics"), moved),
                           "groups": {str(g): _table(v, {}) for g, v in _mapping(task.get("groups")).items()},
                           "subtasks": {str(s): _table(v, {}) for s, v in _mapping(task.get("subtasks")).items()}}
    n = task.get("n")
    out["n"] = int(n) if is_number(n) else 0
    for key, value in task.items():
        if key not in _TASK_KEYS:
            info.setdefault(key, value)
    for key, value in judged_extra.items():
        info.setdefault(key, value)
    if moved:
        info["legacy_metrics"] = moved
    declared = info.get("higher_is_better")
    lower = [str(m) for m in task.get("lower_is_better") or []]
    if declared is False:  # a task that said so for all its metrics
        lower += [m for m in metric_names(out["metrics"]) if higher_is_better(m)]
    elif isinstance(declared, Mapping):  # lm-eval: {metric: bool}
        lower += [str(m) for m, up in declared.items() if up is False and higher_is_better(str(m))]
    out["lower_is_better"] = sorted(set(lower))
    declared_kind = next((k for k in (task.get("kind"), info.get("kind")) if isinstance(k, str) and k), None)
    out["kind"] = declared_kind or _guess_kind_v1(name, out, info)
    family = next((f for f in (task.get("family"), info.get("family")) if isinstance(f, str) and f), "")
    out["family"] = family
    out["info"] = info
    return out


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _guess_kind_v1(name: str, task: Mapping[str, Any], info: Mapping[str, Any]) -> str:
    """Schema-1 files never recorded the kind: infer it once, here, from what the task holds."""
    metrics = task["metrics"]
    lowered = name.lower()
    if "reliability" in info or "ranking" in info or "mt_bench" in lowered:
        return "multiturn_judge"
    if "longbench" in lowered:
        return "longcontext"
    names = metric_names(metrics)
    if names and all(not higher_is_better(m) for m in names):
        return "perplexity"
    if "acc" in metrics or "acc_norm" in metrics:
        return "multiple_choice"
    return "other"
