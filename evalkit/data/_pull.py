"""`evalkit data pull`: the official datasets from the HF hub, written in the local layout `--data-dir` reads.

Every split is fetched with `datasets.load_dataset(<hub id>, <config>, split=...)`, the same call the task
loaders make. `source=DIR` (or $EVALKIT_DATA_SOURCE) reads `DIR/<hub id>` instead of the hub: a local folder in
the hub's own format (a README.md whose `configs:` name the data files), used by the tests and by mirrors.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evalkit.data._catalog import dataset_info
from evalkit.errors import ConfigError, DataError, MissingDependency

__all__ = ["PULLABLE", "pull"]

PULLABLE = ("ceval", "cmmlu", "mt_bench", "longbench", "longbench_e", "longbench_v2", "wikitext", "fineval", "cmb",
            "cmb_clin", "clue_tnews", "clue_afqmc")
Loader = Callable[[str, str | None, str], list[dict[str, Any]]]


def pull(selections: Sequence[tuple[str, Sequence[str]]], to: Path, *, source: Path | None = None,
         echo: Callable[[str], None] = print) -> int:
    """Download each (task, subsets) into `to`; returns the number of files written.

    Raises:
        ConfigError: a task that cannot be pulled.
        MissingDependency: `datasets` is not installed.
        DataError: the hub is unreachable, or a split cannot be loaded.
    """
    for task, _ in selections:
        if task not in PULLABLE:
            raise ConfigError(_not_pullable(task))
    if importlib.util.find_spec("datasets") is None:
        raise MissingDependency("evalkit data pull", "data", "datasets")
    source = source or (Path(os.environ["EVALKIT_DATA_SOURCE"]) if os.environ.get("EVALKIT_DATA_SOURCE") else None)
    if source is None:
        from evalkit._offline import hub_reachable, probe_target

        if not hub_reachable(announce=False):  # the error below says it all, in one line
            host, port = probe_target()
            raise DataError(f"evalkit data pull: the Hugging Face hub ({host}:{port}) is not reachable from here; "
                            "pull on a machine that reaches it and copy the folder, then `evalkit data check DIR`")
    load = _loader(source)
    written = 0
    for task, subsets in selections:
        writer = {"ceval": _pull_mc, "cmmlu": _pull_mc, "mt_bench": _pull_mt_bench, "longbench": _pull_longbench,
                  "longbench_e": _pull_longbench, "longbench_v2": _pull_longbench_v2,
                  "wikitext": _pull_wikitext, "fineval": _pull_mc, "cmb": _pull_cmb_exam, "cmb_clin": _pull_cmb_clin,
                  "clue_tnews": _pull_classification, "clue_afqmc": _pull_classification}[task]
        count, summary = writer(task, list(subsets), to, load)
        written += count
        echo(f"{task}: {summary}")
    return written


def _not_pullable(task: str) -> str:
    """Why `task` cannot be pulled, and where its data comes from instead (one line)."""
    info = dataset_info(task)
    if info is None:
        return f"evalkit data pull: '{task}' cannot be pulled; pullable: {', '.join(PULLABLE)}"
    where = "; ".join(p for p in (info.note, info.homepage) if p) or "see `evalkit data list`"
    return (f"evalkit data pull: '{task}' has no dataset on the HF hub to pull; put {info.local} under your "
            f"--data-dir ({where})")


def _loader(source: Path | None) -> Loader:
    def load(hub_id: str, config: str | None, split: str) -> list[dict[str, Any]]:
        import datasets

        from evalkit._quiet import quiet_libraries

        path = str(source / hub_id) if source is not None else hub_id
        try:
            with quiet_libraries(capture_stderr=True):
                rows = datasets.load_dataset(path, config, split=split)
        except Exception as exc:  # noqa: BLE001 - datasets raises many types; each means this split is not there
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"evalkit data pull: {path} config {config or '(default)'} split {split}: {first}") from None
        return [dict(r) for r in rows]

    return load


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _csv_text(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV: every non-empty column, in the dataset's order; an unnamed index column when there is no id."""
    columns = [c for c in (rows[0] if rows else {}) if any(str(r.get(c) or "").strip() for r in rows)]
    indexed = "id" not in columns
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(([""] if indexed else []) + columns)
    for i, row in enumerate(rows):
        values = ["" if row.get(c) is None else str(row[c]) for c in columns]
        writer.writerow(([str(i)] if indexed else []) + values)
    return out.getvalue()


def _pull_mc(task: str, subsets: list[str], to: Path, load: Loader) -> tuple[int, str]:
    from evalkit.tasks._registry import load_task

    spec: Any = load_task(task)
    subjects = subsets or spec.subset_names()
    unknown = [s for s in subjects if s not in spec.subset_names()]
    if unknown:
        raise ConfigError(f"evalkit data pull {task}: unknown subject(s) {', '.join(unknown)}; see `evalkit tasks`")
    hub_id = spec.data.hub.path
    splits = [s for s in (spec.fewshot_split, spec.eval_split) if s]
    rows = 0
    for subject in subjects:
        for split in splits:
            data = load(hub_id, spec.data.hub.name.format(subject=subject), spec.data.hub.split_names.get(split, split))
            _write(to / spec.data.local.format(subject=subject, split=split), _csv_text(data))
            rows += len(data)
    noun = "subject" if len(subjects) == 1 else "subjects"
    return len(subjects) * len(splits), (f"{len(subjects)} {noun} x {', '.join(splits)} from {hub_id}: "
                                         f"{rows:,} rows -> {to / task}")


def _jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)


def _pull_mt_bench(task: str, subsets: list[str], to: Path, load: Loader) -> tuple[int, str]:
    hub_id = (dataset_info(task) or _missing(task)).hub
    rows = load(hub_id, None, "train")
    questions = []
    for row in rows:
        question = {"question_id": row.get("prompt_id", row.get("question_id")), "category": row.get("category"),
                    "turns": list(row.get("prompt") or row.get("turns") or [])}
        if row.get("reference"):
            question["reference"] = list(row["reference"])
        questions.append(question)
    _write(to / "mt_bench" / "question.jsonl", _jsonl(questions))
    return 1, f"{len(questions)} questions from {hub_id} -> {to / 'mt_bench' / 'question.jsonl'}"


def _pull_longbench(task: str, subsets: list[str], to: Path, load: Loader) -> tuple[int, str]:
    from evalkit.tasks._registry import load_task

    names = subsets or load_task(task).subset_names()
    suffix = "_e" if task == "longbench_e" else ""
    hub_id = (dataset_info(task) or _missing(task)).hub
    total = 0
    for name in names:
        records = load(hub_id, f"{name}{suffix}", "test")
        _write(to / "longbench" / "data" / f"{name}{suffix}.jsonl", _jsonl(records))
        total += len(records)
    return len(names), f"{len(names)} datasets from {hub_id}: {total:,} records -> {to / 'longbench' / 'data'}"


def _pull_longbench_v2(task: str, subsets: list[str], to: Path, load: Loader) -> tuple[int, str]:
    hub_id = (dataset_info(task) or _missing(task)).hub
    records = load(hub_id, None, "train")
    _write(to / "longbench" / "v2" / "data.json", json.dumps(records, ensure_ascii=False, default=str))
    return 1, f"{len(records)} questions from {hub_id} -> {to / 'longbench' / 'v2' / 'data.json'}"


def _pull_wikitext(task: str, subsets: list[str], to: Path, load: Loader) -> tuple[int, str]:
    info = dataset_info(task) or _missing(task)
    pages = load(info.hub, "wikitext-2-raw-v1", "test")
    text = "\n".join(str(p.get("page", "")).rstrip("\n") for p in pages) + "\n"
    _write(to / info.local, text)
    return 1, f"{len(pages)} articles from {info.hub} -> {to / info.local}"


def _missing(task: str) -> Any:
    raise ConfigError(f"evalkit data pull: no catalog entry for '{task}'")


def _pull_cmb_exam(task: str, subsets: list[str], to: Path, load: Loader) -> tuple[int, str]:
    """CMB-Exam's test and val splits, each one JSON list, where the official zip unpacked under cmb/ has them."""
    from evalkit.tasks._registry import load_task

    spec: Any = load_task(task)
    hub = spec.data.hub
    counts, unanswered = [], 0
    for split in ("test", "val"):
        rows = load(hub.path, hub.name, hub.split_names.get(split, split))
        _write(to / spec.data.local[split], json.dumps(rows, ensure_ascii=False, default=str))
        counts.append(f"{split} {len(rows):,}")
        unanswered += sum(1 for r in rows if not r.get("answer"))
    note = f" ({unanswered:,} without an answer: `evalkit data check` names them)" if unanswered else ""
    return 2, f"{', '.join(counts)} questions from {hub.path} ({hub.name}) -> {to / 'cmb'}{note}"


def _pull_cmb_clin(task: str, subsets: list[str], to: Path, load: Loader) -> tuple[int, str]:
    from evalkit.tasks._registry import load_task

    spec: Any = load_task(task)
    hub = spec.data.hub
    cases = load(hub.path, hub.name, hub.split_names.get("test", "test"))
    _write(to / spec.data.local, json.dumps(cases, ensure_ascii=False, default=str))
    return 1, f"{len(cases)} cases from {hub.path} ({hub.name}) -> {to / spec.data.local}"


def _pull_classification(task: str, subsets: list[str], to: Path, load: Loader) -> tuple[int, str]:
    """The eval split as JSON Lines (CLUE's release format): the hub's integer labels written as label names."""
    from evalkit.tasks._registry import load_task

    spec: Any = load_task(task)
    hub, split = spec.data.hub, spec.eval_split
    rows = load(hub.path, hub.name.format(subject=spec.name) if hub.name else None, hub.split_names.get(split, split))
    names = spec.label_names
    for row in rows:
        label = row.get(spec.label_column)
        if isinstance(label, int) and not isinstance(label, bool):
            row[spec.label_column] = names[label] if 0 <= label < len(names) else str(label)
    path = to / spec.data.local.format(subject=spec.name, split=split)
    _write(path, _jsonl(rows))
    return 1, f"{len(rows):,} rows from {hub.path} ({hub.name}, {split}) -> {path}"
