"""LongBench data and configuration: records from the data dir, the HF hub or the demo set; prompt configs.

Records keep the official layout (`input`, `context`, `answers`, `length`, `dataset`, `language`,
`all_classes`, `_id`; LongBench v2: `_id`, `domain`, `sub_domain`, `difficulty`, `length`, `question`,
`choice_A`..`choice_D`, `answer`, `context`).

Where they come from, per dataset: `DIR/longbench/data/<name>.jsonl` (LongBench-E: `<name>_e.jsonl`), else the hub
(`THUDM/LongBench`, config `<name>` / `<name>_e`, split `test`). The demo set (tasks/demo/longbench) is used
only when no dataset of the run has real data, so demo items never mix into real scores.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import DataError
from evalkit.tasks._data import (
    DecodeNotes,
    HubSource,
    RecordFile,
    Warn,
    check_data_dir,
    hub_allowed,
    load_hub,
    read_file_rows,
    read_text_file,
    tasks_root,
)

__all__ = ["LongBenchConfig", "Records", "load_config", "load_records", "load_v2_records", "load_v2_templates"]

V2_TEMPLATE_NAMES = ("0shot", "0shot_cot", "0shot_cot_ans", "0shot_no_context")


@dataclass
class Records:
    """The rows of one dataset, with where they came from and the file line of each row."""

    rows: list[dict[str, Any]]
    origin: str  # "local", "hub" or "demo"
    location: str
    doc_index: list[int] = field(default_factory=list)  # 0-based row of each record in its source


@dataclass
class LongBenchConfig:
    """dataset2prompt / dataset2maxlen / model2maxlen as data, with where each came from."""

    prompts: dict[str, str]
    max_new_tokens: dict[str, int]
    model_max_length: dict[str, int]
    sources: dict[str, str]


def _ignore(_: Any) -> None:
    """Default warn / record_file callback."""


def _read_json(path: Path, record_file: RecordFile) -> Any:
    try:
        return json.loads(read_text_file(path, record_file=record_file))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); restore the file from the LongBench "
                        f"repo") from None


def load_config(data_dir: Path | None, fallback_prompts: dict[str, str], fallback_maxlen: dict[str, int],
                *, model2maxlen_file: str = "config/model2maxlen.json", record_file: RecordFile = _ignore
                ) -> LongBenchConfig:
    """The official config files from `DIR/longbench/` where present, else the task YAML's own prompts."""
    root = check_data_dir(data_dir) / "longbench" if data_dir is not None else None
    prompts, maxlen, models = dict(fallback_prompts), dict(fallback_maxlen), {}
    sources = {"prompts": "evalkit fallback prompts (tasks/*.yaml; not the official wording)",
               "max_new_tokens": "task YAML", "model_max_length": "none"}
    if root is not None:
        path = root / "config" / "dataset2prompt.json"
        if path.is_file():
            prompts.update({str(k): str(v) for k, v in _read_json(path, record_file).items()})
            sources["prompts"] = str(path)
        path = root / "config" / "dataset2maxlen.json"
        if path.is_file():
            maxlen.update({str(k): int(v) for k, v in _read_json(path, record_file).items()})
            sources["max_new_tokens"] = str(path)
        path = root / model2maxlen_file
        if path.is_file():
            models = {str(k): int(v) for k, v in _read_json(path, record_file).items()}
            sources["model_max_length"] = str(path)
    return LongBenchConfig(prompts, maxlen, models, sources)


def load_v2_templates(data_dir: Path | None, fallback: dict[str, str], *, record_file: RecordFile = _ignore
                      ) -> tuple[dict[str, str], str]:
    """LongBench v2 templates from `DIR/longbench/v2_prompts/*.txt`, else the YAML's fallback texts."""
    folder = check_data_dir(data_dir) / "longbench" / "v2_prompts" if data_dir is not None else None
    if folder is not None and all((folder / f"{n}.txt").is_file() for n in V2_TEMPLATE_NAMES):
        return ({n: read_text_file(folder / f"{n}.txt", record_file=record_file) for n in V2_TEMPLATE_NAMES},
                str(folder))
    return dict(fallback), "evalkit fallback templates (tasks/longbench_v2.yaml; not the official wording)"


def hub_usable() -> bool:
    """Whether trying the HF hub makes sense here (not offline, reachable, not failed before)."""
    from evalkit._offline import hub_reachable

    return hub_allowed() and hub_reachable()


def _local(path: Path, warn: Warn, record_file: RecordFile) -> Records | None:
    if not path.is_file():
        return None
    rows, _lines = read_file_rows(path, warn=warn, record_file=record_file)
    return Records(rows, "local", str(path), list(range(len(rows))))


def _hub(repo: str, name: str | None, split: str) -> Records | None:
    if not hub_usable():
        return None
    rows = load_hub(HubSource(path=repo, name=name), name or "", split)
    if rows is None:
        return None
    where = f"hf://{repo}" + (f"/{name}" if name else "") + f"/{split}"
    return Records(rows, "hub", where, list(range(len(rows))))


def demo_dir() -> Path:
    return tasks_root() / "demo" / "longbench"


def load_records(datasets: list[str], *, data_dir: Path | None, file_suffix: str, hub_repo: str,
                 use_hub: bool, use_demo: bool, warn: Callable[[str], None],
                 record_file: RecordFile = _ignore) -> dict[str, Records]:
    """Records per dataset name; missing ones are named through `warn`, one line each, and left out.

    `record_file` receives every file read (RunContext.record_file, for the run manifest).
    """
    if data_dir is not None:
        data_dir = check_data_dir(data_dir)
    notes = DecodeNotes(warn)
    try:
        found = _find_records(datasets, data_dir, file_suffix, hub_repo, use_hub, use_demo, notes.warn, record_file)
    finally:
        notes.flush()
    where = f"{data_dir}/longbench/data" if data_dir is not None else "no --data-dir"
    hub = "the hub" if use_hub and hub_usable() else "the hub (not reachable or disabled)"
    for name in datasets:
        if name not in found:
            warn(f"LongBench: dataset '{name}' not found ({where}/{name}{file_suffix}.jsonl, {hub}); skipped")
    return found


def _find_records(datasets: list[str], data_dir: Path | None, file_suffix: str, hub_repo: str, use_hub: bool,
                  use_demo: bool, warn: Warn, record_file: RecordFile) -> dict[str, Records]:
    found: dict[str, Records] = {}
    for name in datasets:
        file_name = f"{name}{file_suffix}"
        local_file = data_dir / "longbench" / "data" / f"{file_name}.jsonl" if data_dir is not None else None
        rec = _local(local_file, warn, record_file) if local_file is not None else None
        if rec is None and use_hub:
            rec = _hub(hub_repo, file_name, "test")
        if rec is not None:
            found[name] = rec
    if not found and use_demo:
        for name in datasets:
            rec = (_local(demo_dir() / f"{name}{file_suffix}.jsonl", warn, record_file)
                   or _local(demo_dir() / f"{name}.jsonl", warn, record_file))
            if rec is not None:
                rec.origin = "demo"
                found[name] = rec
        if found:
            warn(f"LongBench: no real data found (--data-dir DIR/longbench/data or the hub); using the DEMO set "
                 f"({sum(len(r.rows) for r in found.values())} original items in {len(found)} datasets) -- "
                 f"these are not LongBench scores")
    return found


def load_v2_records(data_dir: Path | None, *, use_hub: bool, use_demo: bool, warn: Warn = _ignore,
                    record_file: RecordFile = _ignore) -> Records | None:
    """LongBench v2: `DIR/longbench/v2/data.json` (a JSON list, or JSON Lines), else the hub, else the demo."""
    if data_dir is not None:
        for candidate in ("data.json", "data.jsonl"):
            rec = _local(check_data_dir(data_dir) / "longbench" / "v2" / candidate, warn, record_file)
            if rec is not None:
                return rec
    if use_hub:
        rec = _hub("THUDM/LongBench-v2", None, "train")
        if rec is not None:
            return rec
    if use_demo:
        rec = _local(demo_dir() / "v2.jsonl", warn, record_file)
        if rec is not None:
            rec.origin = "demo"
            return rec
    return None
