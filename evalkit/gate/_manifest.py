"""Refuse to compare runs whose task definitions, prompts or data differ (manifest.json hashes)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from evalkit.api import RunResult
from evalkit.errors import GateError

__all__ = ["check_manifests"]

_MACHINE_KEYS = frozenset({"path", "paths", "source_file", "data_dir", "created", "root", "cache", "output"})


def _key(key: Any) -> str:
    """Absolute data-file paths differ between machines: keep their last two parts (`test/agronomy.csv`)."""
    text = str(key)
    return "/".join(Path(text).parts[-2:]) if Path(text).is_absolute() else text


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if str(key) in _MACHINE_KEYS:
                continue
            name = _key(key)
            out.update(_flatten(item, f"{prefix}[{name!r}]" if "/" in name or "." in name else
                                f"{prefix}.{name}" if prefix else name))
        return out
    if isinstance(value, list):
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _task_manifest(manifest: Mapping[str, Any], task: str) -> Any:
    tasks = manifest.get("tasks")
    return tasks.get(task) if isinstance(tasks, Mapping) else None


def _short(value: Any) -> str:
    text = str(value)
    return text[:12] + "…" if len(text) > 14 else text


def _what(key: str) -> str:
    head = re.split(r"[.\[]", key, maxsplit=1)[0].lower()
    for prefix, label in (("spec", "task spec hash"), ("prompt", "prompt hash"), ("template", "prompt hash"),
                          ("data", "data hash"), ("version", "task version")):
        if head.startswith(prefix):
            return label
    return f"'{head}' entry"


def check_manifests(base: RunResult, new: RunResult, tasks: Iterable[str]) -> list[str]:
    """Raise GateError when a compared task's manifest entries (spec, prompt, data hashes) differ.

    Reads manifest.json's `{"tasks": {"<task>": {"spec_sha256", "prompt_sha256", "version", "data_files":
    {file: sha256}, "data_sha256", ...}}}`; every leaf under a task's entry is compared, except
    machine-specific keys (paths, timestamps); absolute data-file paths are compared by their last two parts.
    Returns notes for tasks that cannot be checked (no manifest entry on one side).
    """
    notes: list[str] = []
    for task in tasks:
        base_entry, new_entry = _task_manifest(base.manifest, task), _task_manifest(new.manifest, task)
        if base_entry is None or new_entry is None:
            missing = "baseline" if base_entry is None else "new run"
            notes.append(f"{task}: no manifest entry in the {missing}; task spec/prompt/data hashes not checked")
            continue
        flat_base, flat_new = _flatten(base_entry), _flatten(new_entry)
        for key in sorted(set(flat_base) | set(flat_new)):
            old, cur = flat_base.get(key, "<absent>"), flat_new.get(key, "<absent>")
            if old != cur:
                raise GateError(
                    f"task '{task}': {_what(key)} differs between the runs ({key}: baseline {_short(old)} vs new "
                    f"{_short(cur)}); runs of different task versions, prompts or data cannot be compared: "
                    f"re-run the baseline with the same task definition and data")
    return notes
