"""CI gates over evalkit runs: absolute thresholds and paired regression tests against a baseline.

The public names are loaded on first use (PEP 562), so `evalkit.gate._cli`, which the CLI imports on every
start, does not pull in numpy and scipy.

Examples:
    >>> from evalkit.api import RunResult
    >>> run = RunResult.from_dict({"tasks": {"cmmlu": {"metrics": {"acc": 0.41}}}})
    >>> run_gate(run, minimums=[parse_threshold("cmmlu.acc=0.30")]).passed
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalkit._lazy import lazy_getattr

if TYPE_CHECKING:
    from evalkit.gate._gate import run_gate
    from evalkit.gate._junit import junit_xml, write_junit
    from evalkit.gate._manifest import check_manifests
    from evalkit.gate._records import GateCheck, GateReport, Threshold, parse_max_drops, parse_threshold
    from evalkit.gate._stats import (
        PairedComparison,
        bootstrap_mean_diffs,
        compare_paired,
        compare_perplexity,
        mcnemar_exact,
        paired_bootstrap,
    )

_HOMES = {
    "evalkit.gate._gate": ("run_gate",),
    "evalkit.gate._manifest": ("check_manifests",),
    "evalkit.gate._records": ("GateCheck", "GateReport", "Threshold", "parse_max_drops", "parse_threshold"),
    "evalkit.gate._junit": ("junit_xml", "write_junit"),
    "evalkit.gate._stats": ("PairedComparison", "bootstrap_mean_diffs", "compare_paired", "compare_perplexity",
                            "mcnemar_exact", "paired_bootstrap"),
}
_WHERE = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "GateCheck",
    "GateReport",
    "PairedComparison",
    "Threshold",
    "bootstrap_mean_diffs",
    "check_manifests",
    "compare_paired",
    "compare_perplexity",
    "junit_xml",
    "mcnemar_exact",
    "paired_bootstrap",
    "parse_max_drops",
    "parse_threshold",
    "run_gate",
    "write_junit",
]


__getattr__ = lazy_getattr("evalkit.gate", _WHERE, globals())


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
