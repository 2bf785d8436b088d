"""The records of a gate run: thresholds as parsed from the command line, checks and the report."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal

from evalkit.errors import GateError
from evalkit.gate._stats import PairedComparison

__all__ = ["GateCheck", "GateReport", "Threshold", "parse_max_drops", "parse_threshold"]

_THRESHOLD = re.compile(r"^(?P<task>[^=]+)\.(?P<metric>[^.=]+)=(?P<value>[^=]+)$")


@dataclass(frozen=True)
class Threshold:
    """One `--min`/`--max` argument: `task.metric=VALUE` (task may be `task/group`)."""

    task: str
    metric: str
    value: float
    kind: Literal["min", "max"] = "min"

    @property
    def target(self) -> str:
        """`task.metric` as written on the command line."""
        return f"{self.task}.{self.metric}"


def parse_threshold(text: str, kind: Literal["min", "max"] = "min") -> Threshold:
    """Parse `cmmlu.acc=0.30` or `cmmlu/STEM.acc=0.3`.

    Examples:
        >>> parse_threshold("cmmlu/STEM.acc=0.3")
        Threshold(task='cmmlu/STEM', metric='acc', value=0.3, kind='min')
    """
    match = _THRESHOLD.match(text.strip())
    value = _to_float(match.group("value")) if match else None
    if match is None or value is None:
        raise GateError(f"--{kind} {text!r}: expected TASK.METRIC=NUMBER, e.g. cmmlu.acc=0.30 or cmmlu/STEM.acc=0.3")
    return Threshold(match.group("task").strip(), match.group("metric").strip(), value, kind)


def _to_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class GateCheck:
    """The outcome of one check (one row of the table, one JUnit testcase)."""

    kind: Literal["min", "max", "regression"]
    target: str
    passed: bool
    message: str
    observed: float | None = None
    threshold: float | None = None
    comparison: PairedComparison | None = None
    unpaired: int = 0
    allowed_drop: float | None = None

    @property
    def name(self) -> str:
        """A stable, readable test name: `cmmlu.acc >= 0.3`, `regression cmmlu.acc`."""
        if self.kind == "regression":
            return f"regression {self.target}"
        op = ">=" if self.kind == "min" else "<="
        return f"{self.target} {op} {self.threshold:g}"


@dataclass(frozen=True)
class GateReport:
    """All checks of one gate invocation."""

    checks: tuple[GateCheck, ...]
    notes: tuple[str, ...] = ()
    alpha: float = 0.05
    max_drops: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[GateCheck]:
        """The checks that failed."""
        return [c for c in self.checks if not c.passed]




def parse_max_drops(values: list[str] | tuple[str, ...]) -> dict[str, float]:
    """`--max-drop` values: `0.02` (every task) and/or `TASK=D` (one task); returns {"*" or task: D}.

    Examples:
        >>> parse_max_drops(["0.02", "wikitext=1.5"])
        {'*': 0.02, 'wikitext': 1.5}
    """
    out: dict[str, float] = {}
    for text in values:
        task, sep, number = text.rpartition("=")
        value = _to_float(number)
        if value is None or value < 0 or (sep and not task.strip()):
            raise GateError(f"--max-drop {text!r}: expected a non-negative number (0.02) or TASK=NUMBER "
                            f"(wikitext=1.5)")
        out[task.strip() if sep else "*"] = value
    return out
