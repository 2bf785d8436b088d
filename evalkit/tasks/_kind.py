"""What a task kind is: a typed Python module that turns a TaskSpec into requests, calls the backend,
and scores the responses. YAML holds data and prompt text; the logic lives here."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from evalkit.backends._protocol import Backend

__all__ = ["RunContext", "SampleSink", "TaskKind", "TaskOutcome"]


class SampleSink(Protocol):
    """Receives finished samples one batch at a time, so nothing computed is lost if a run dies."""

    def write(self, samples: Sequence[dict[str, Any]]) -> None: ...


@dataclass
class RunContext:
    """Everything a task kind may read besides its spec and backend.

    `subsets` is the `task:subset,...` selection (empty = all); `task_args` the --task-args mapping;
    `advance(n)` moves the progress bar by n units of `total` that the kind announced via `set_total`.
    """

    data_dir: Path | None = None
    limit: int | None = None
    num_fewshot: int | None = None
    seed: int = 0
    subsets: tuple[str, ...] = ()
    task_args: dict[str, str] = field(default_factory=dict)
    batch_size: str | None = None
    set_total: Callable[[int], None] = lambda n: None
    advance: Callable[[int], None] = lambda n: None
    warn: Callable[[str], None] = lambda msg: None
    judge: Any = None  # judge configuration, for judged tasks
    repeats: int | None = None  # --repeats K: samples per question for generative tasks
    cache_path: Path | None = None  # the run's response cache (for extra backends a task opens, e.g. an extractor)
    files_read: set[str] = field(default_factory=set)  # provenance: every data file the task read

    def record_file(self, path: str | Path) -> None:
        """Note a data file this task read; the run manifest lists it with its hash."""
        self.files_read.add(str(Path(path).resolve()))


@dataclass
class TaskOutcome:
    """What a task run produces; the runner writes it to results.json and samples/<task>.jsonl.

    metrics:  {"acc": 0.41, "acc_stderr": 0.02, ...}  (headline numbers of the task)
    groups:   {"STEM": {"acc": ..., "acc_stderr": ..., "acc_macro": ..., "n": 120, "subjects": 20}, ...}
    subtasks: {"agronomy": {"acc": ..., "acc_stderr": ..., "n": 169}, ...}
    info:     extra facts for results.json (skipped rows, truncations, usage, prompt style, ...)
    """

    metrics: Mapping[str, float | None]  # None: could not be computed (say why in info["metric_notes"])
    n: int
    groups: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)
    subtasks: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class TaskKind(Protocol):
    """A task kind runs one task spec against one backend."""

    def __call__(self, spec: Any, backend: Backend, ctx: RunContext, sink: SampleSink) -> TaskOutcome: ...
