"""Finding task definitions and parsing `--tasks` selections (`cmmlu:agronomy,anatomy,wikitext`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from evalkit.errors import ConfigError, TaskSpecError

if TYPE_CHECKING:
    from evalkit.tasks._spec import TaskSpecBase

__all__ = ["TaskSelection", "find_task_files", "load_task", "parse_task_list", "print_task_table"]


@dataclass(frozen=True)
class TaskSelection:
    name: str
    subsets: tuple[str, ...] = ()


def _search_dirs() -> list[Path]:
    # the bundled tasks/ folder, found without importing the data module (pydantic) so listing stays fast
    here = Path(__file__).resolve().parent.parent
    bundled = here / "_bundled" / "tasks" if (here / "_bundled").is_dir() else here.parent / "tasks"
    dirs = [Path(p) for p in os.environ.get("EVALKIT_TASKS_PATH", "").split(os.pathsep) if p]
    return dirs + [bundled]


def find_task_files() -> dict[str, Path]:
    """Task name (file stem) -> YAML path; EVALKIT_TASKS_PATH folders override built-in tasks."""
    found: dict[str, Path] = {}
    for folder in reversed(_search_dirs()):
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                found[path.stem] = path
    return found


def parse_task_list(text: str, known: set[str]) -> list[TaskSelection]:
    """Split `--tasks`. A bare word after `task:subset` is another subset unless it names a task.

    Examples:
        >>> parse_task_list("cmmlu:agronomy,anatomy,wikitext", {"cmmlu", "wikitext"})
        [TaskSelection(name='cmmlu', subsets=('agronomy', 'anatomy')), TaskSelection(name='wikitext', subsets=())]
    """
    out: list[tuple[str, list[str]]] = []
    for raw in text.split(","):
        token = raw.strip()
        if not token:
            continue
        name, sep, subset = token.partition(":")
        if sep:
            out.append((name, [subset] if subset else []))
        elif token in known or token.endswith((".yaml", ".yml")) or not out or not out[-1][1]:
            out.append((token, []))
        else:
            out[-1][1].append(token)
    return [TaskSelection(name, tuple(subsets)) for name, subsets in out]


def load_task(name: str) -> TaskSpecBase:
    """Load a task by name (built-in or EVALKIT_TASKS_PATH) or by YAML path."""
    from evalkit.tasks._spec import load_spec_file

    if name.endswith((".yaml", ".yml")):
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"task file {name} not found")
        return load_spec_file(path)
    files = find_task_files()
    if name not in files:
        known = ", ".join(sorted(files))
        raise ConfigError(f"unknown task '{name}'; known tasks: {known} (or pass a path to a task YAML)")
    spec = load_spec_file(files[name])
    if spec.name != name:
        raise TaskSpecError(f"{files[name]}: field 'name' is '{spec.name}' but the file is {name}.yaml; "
                            f"make them equal")
    return spec


def print_task_table() -> None:
    """`evalkit tasks`: read the YAMLs shallowly (no task-kind imports), so listing stays fast."""
    from evalkit._table import print_table

    rows = []
    for name, path in sorted(find_task_files().items()):
        try:
            doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_FastLoader) or {}
        except yaml.YAMLError:
            rows.append((name, "?", "", f"invalid YAML: {path}"))
            continue
        subsets = doc.get("subjects") or doc.get("datasets") or doc.get("subsets") or {}
        rows.append((name, str(doc.get("kind", "?")), str(len(subsets)) if subsets else "",
                     str(doc.get("description", ""))))
    print_table(("task", "kind", "subsets", "description"), rows)
    print("\nSelect subsets with task:subset[,subset...], e.g. cmmlu:agronomy,anatomy")


_FastLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
