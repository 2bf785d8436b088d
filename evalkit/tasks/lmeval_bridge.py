"""Task kind `lmeval`: lm-eval task definitions run through evalkit backends (extra `[lmeval]`).

`--tasks lmeval:<lm-eval task>[,<task>...]` names the lm-eval tasks; the YAML may list default ones. The work
is done by `evalkit.lmeval` (the LM adapter and the results conversion); this module holds the spec.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from evalkit.backends._protocol import Backend
from evalkit.tasks._kind import RunContext, SampleSink, TaskOutcome
from evalkit.tasks._spec import TaskSpecBase

__all__ = ["LmevalBridgeSpec", "run"]


class LmevalBridgeSpec(TaskSpecBase):
    """The bridge's task file: which lm-eval tasks run when none is named, and lm-eval options.

    Attributes:
        tasks: lm-eval tasks run by a bare `--tasks <name>` (empty: the tasks must be named as subsets).
        include_path: a folder of extra lm-eval task YAMLs (overridden by `--task-args include_path=DIR`).
        bootstrap_iters: lm-eval's bootstrap iterations for the stderr of non-mean metrics (0 = no stderr).
    """

    kind: Literal["lmeval"]
    tasks: list[str] = Field(default_factory=list)
    include_path: str | None = None
    bootstrap_iters: int = 1000

    def subset_names(self) -> list[str]:
        """Any lm-eval task name is a valid subset, so none is listed."""
        return []


def run(spec: LmevalBridgeSpec, backend: Backend, ctx: RunContext, sink: SampleSink) -> TaskOutcome:
    """Run the selected lm-eval tasks (the `lmeval:<task>,...` subsets, else the spec's `tasks`)."""
    from evalkit.lmeval._bridge import run_bridge

    return run_bridge(list(ctx.subsets) or spec.tasks, backend, ctx, sink, include_path=spec.include_path,
                      bootstrap_iters=spec.bootstrap_iters)
