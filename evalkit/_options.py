"""`RunOptions`: everything `evalkit run` and `evalkit.evaluate` accept, as one dataclass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.backends._protocol import Backend

__all__ = ["RunOptions"]


@dataclass
class RunOptions:
    """Everything `evalkit run` (and `evalkit.evaluate`) accepts."""

    model: str | Backend = "smollm2"
    tasks: str | Sequence[str] = "ceval,cmmlu,wikitext"
    model_args: str | dict[str, str] | None = None
    task_args: str | dict[str, str] | None = None
    num_fewshot: int | None = None
    limit: int | None = None
    batch_size: str | None = None
    data_dir: Path | None = None
    output: Path = Path("runs")
    base_url: str | None = None
    judge: str | None = None
    judge_models: tuple[str, ...] = ()
    judge_args: str | None = None
    judge_votes: int = 1
    judge_mode: str | None = None
    judge_reducer: str = "mean"
    dry_run: bool = False
    seed: int = 0
    repeats: int | None = None  # samples per question of generative tasks (maj@K, pass@K)
    cache: Path | None = None
    no_cache: bool = False
    executor: str = "local"
    concurrency: int | None = None
    quiet: bool = False
    verbose: bool = False  # show other libraries' logs, progress bars and warnings (else: runs/<id>/log.txt)
    extra: dict[str, Any] = field(default_factory=dict)
    ray_workers: int | None = None  # --executor ray: actors (default: one per GPU, else 2; EVALKIT_RAY_WORKERS)
    ray_address: str | None = None  # --executor ray: cluster to join (default RAY_ADDRESS, else a local one)
