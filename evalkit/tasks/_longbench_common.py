"""What LongBench v1/-E (`longcontext`) and LongBench v2 (`_longbench_v2`) share: the task spec and the
task-argument helpers. They live here, not in either runner, so the two runners import one common module
instead of each other.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from evalkit.errors import ConfigError
from evalkit.metrics import _longbench as lb
from evalkit.tasks._kind import RunContext
from evalkit.tasks._spec import TaskSpecBase

__all__ = ["LongContextSpec", "chunk_size", "chunks", "flag", "new_token_cap", "source"]

_TRUE = ("1", "true", "yes", "on")
_SOURCES = ("auto", "local", "hub", "demo")


class LongContextSpec(TaskSpecBase):
    """A LongBench task file: which variant, which datasets, and fallback prompts/lengths as data.

    `prompts` / `max_new_tokens` are used where `DIR/longbench/config/*.json` is absent (the official files
    win when present). `v2_templates` likewise stand in for `DIR/longbench/v2_prompts/*.txt`.
    """

    family: str = "longcontext"
    variant: Literal["longbench", "longbench_e", "longbench_v2"] = "longbench"
    datasets: list[str] = Field(default_factory=list)
    hub_repo: str = "THUDM/LongBench"
    prompts: dict[str, str] = Field(default_factory=dict)
    max_new_tokens: dict[str, int] = Field(default_factory=dict)
    v2_templates: dict[str, str] = Field(default_factory=dict)
    v2_max_new_tokens: int = 128
    v2_cot_max_new_tokens: int = 1024
    sample_prompt_chars: int = 1000

    @field_validator("datasets")
    @classmethod
    def _known_datasets(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in lb.DATASET_METRIC:
                raise ValueError(f"'{name}' is not a LongBench dataset; use names from: "
                                 f"{', '.join(lb.LONGBENCH_DATASETS)}")
        return value

    @model_validator(mode="after")
    def _complete_fallbacks(self) -> LongContextSpec:
        if self.variant == "longbench_v2":
            return self
        lacking = [d for d in self.datasets if d not in self.prompts or d not in self.max_new_tokens]
        if lacking:
            raise ValueError(f"dataset '{lacking[0]}' needs a fallback entry in both 'prompts' and "
                             f"'max_new_tokens'")
        return self

    def subset_names(self) -> list[str]:
        return [] if self.variant == "longbench_v2" else list(self.datasets)


def flag(ctx: RunContext, key: str) -> bool:
    """Whether `--task-args key=...` is a true value (1, true, yes, on)."""
    return ctx.task_args.get(key, "").lower() in _TRUE


def source(ctx: RunContext) -> str:
    """`--task-args source=auto|local|hub|demo` (default auto)."""
    value = ctx.task_args.get("source", "auto")
    if value not in _SOURCES:
        raise ConfigError(f"--task-args source={value}: use one of {', '.join(_SOURCES)}")
    return value


def new_token_cap(ctx: RunContext) -> int:
    """`--task-args max_new_tokens=N` caps every dataset's official max new tokens (smoke runs only)."""
    text = ctx.task_args.get("max_new_tokens")
    if text is None:
        return 1 << 30
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"--task-args max_new_tokens={text}: use a positive integer")
    return int(text)


def chunk_size(ctx: RunContext) -> int:
    """Records per backend call: `--batch-size N`, else 8 (also for `auto`)."""
    try:
        return max(1, int(ctx.batch_size)) if ctx.batch_size and ctx.batch_size != "auto" else 8
    except ValueError:
        return 8


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most `size` items (one backend call and one sink write each).

    Examples:
        >>> [list(c) for c in chunks([1, 2, 3], 2)]
        [[1, 2], [3]]
    """
    for start in range(0, len(items), size):
        yield items[start:start + size]
