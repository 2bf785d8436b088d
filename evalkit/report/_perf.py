"""The "Load test" page: `evalkit perf` JSON reports (`--perf perf.json`) as inline SVG charts and a table.

Each report's `levels` (see `evalkit.perf._sweep` for the JSON shape) become a throughput chart (output
tokens/s per concurrency level), latency and TTFT charts (p50/p90/p99 per level) and one table row per level.
Every text from the file (address, model, error messages) reaches the page through Jinja's autoescape or the
chart helpers' `escape`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

from evalkit.errors import DataError
from evalkit.report._charts import Bar, bar_chart

__all__ = ["PERF_PAGE", "PerfReport", "load_perf", "perf_context"]

PERF_PAGE = "perf.html"
_SCHEMA = "evalkit.perf/1"
_PERCENTILES = ("p50", "p90", "p99")


@dataclass(frozen=True)
class PerfReport:
    """One `evalkit perf` JSON file: where it came from and its parsed content."""

    path: Path
    data: Mapping[str, Any]

    @property
    def levels(self) -> list[Mapping[str, Any]]:
        """The concurrency levels, in the order they were run."""
        return list(self.data["levels"])


def load_perf(path: Path) -> PerfReport:
    """Read and check an `evalkit perf --output` JSON file.

    Raises:
        DataError: the file is missing, not JSON, not an `evalkit.perf/1` report, or a level lacks a field.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"--perf {path}: no such file; pass the JSON written by `evalkit perf --output`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"--perf {path}: not JSON ({exc}); pass the file written by `evalkit perf --output`") from None
    if not isinstance(data, dict) or data.get("schema") != _SCHEMA or not isinstance(data.get("levels"), list):
        raise DataError(f"--perf {path}: not an {_SCHEMA} report (needs 'schema' and a 'levels' list); "
                        "pass the file written by `evalkit perf --output`")
    for row, level in enumerate(data["levels"], 1):
        missing = [key for key in ("concurrency", "requests", "failed", "requests_per_s", "output_tokens_per_s",
                                   "latency_s", "ttft_ms") if not isinstance(level, dict) or key not in level]
        if missing:
            raise DataError(f"--perf {path}: level {row} lacks {', '.join(missing)}; "
                            "regenerate it with `evalkit perf --output`")
    return PerfReport(path, data)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _stat(level: Mapping[str, Any], key: str, pct: str) -> float | None:
    stats = level.get(key)
    return _num(stats.get(pct)) if isinstance(stats, Mapping) else None


def _percentile_chart(levels: Sequence[Mapping[str, Any]], key: str, title: str, fmt: str) -> Markup:
    bars = [Bar(f"c={level['concurrency']} {pct}", value)
            for level in levels for pct in _PERCENTILES
            if (value := _stat(level, key, pct)) is not None]
    return bar_chart(bars, title=title, fmt=fmt)


def _cell(value: Any, digits: int) -> str:
    number = _num(value)
    return "–" if number is None else f"{number:.{digits}f}"


def _table_row(level: Mapping[str, Any]) -> dict[str, Any]:
    errors: Mapping[str, Any] = level["errors"] if isinstance(level.get("errors"), Mapping) else {}
    return {
        "concurrency": level["concurrency"], "requests": level["requests"], "failed": level["failed"],
        "requests_per_s": _cell(level["requests_per_s"], 2),
        "output_tokens_per_s": _cell(level["output_tokens_per_s"], 1),
        **{f"latency_{p}": _cell(_stat(level, "latency_s", p), 3) for p in _PERCENTILES},
        **{f"ttft_{p}": _cell(_stat(level, "ttft_ms", p), 1) for p in _PERCENTILES},
        "tpot_p50": _cell(_stat(level, "tpot_ms", "p50"), 1), "itl_p50": _cell(_stat(level, "itl_ms", "p50"), 1),
        "errors": [f"{message} ×{count}" for message, count in sorted(errors.items())],
    }


def _report_context(report: PerfReport) -> dict[str, Any]:
    levels = report.levels
    throughput = [Bar(f"concurrency {level['concurrency']}", value) for level in levels
                  if (value := _num(level["output_tokens_per_s"])) is not None]
    requests = [Bar(f"concurrency {level['concurrency']}", value) for level in levels
                if (value := _num(level["requests_per_s"])) is not None]
    settings: Mapping[str, Any] = report.data["settings"] if isinstance(report.data.get("settings"), Mapping) else {}
    return {
        "file": report.path.name, "base_url": str(report.data.get("base_url", "")),
        "model": str(report.data.get("model", "")), "created": str(report.data.get("created", "")),
        "settings": [(str(k), str(v)) for k, v in settings.items()],
        "throughput_chart": bar_chart(throughput, title="Output tokens per second by concurrency", fmt="{:.1f}"),
        "requests_chart": bar_chart(requests, title="Requests per second by concurrency", fmt="{:.2f}"),
        "latency_chart": _percentile_chart(levels, "latency_s", "End-to-end latency percentiles (s)", "{:.3f}"),
        "ttft_chart": _percentile_chart(levels, "ttft_ms", "Time to first token percentiles (ms)", "{:.1f}"),
        "rows": [_table_row(level) for level in levels],
    }


def perf_context(reports: Sequence[PerfReport]) -> dict[str, Any]:
    """What perf.html.j2 shows: one section per report."""
    return {"reports": [_report_context(report) for report in reports]}
