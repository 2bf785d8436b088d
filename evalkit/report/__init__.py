"""Static HTML leaderboards: `evalkit report runs/ -o site/`.

Names are loaded on first use, so `import evalkit.report._cli` (done by the CLI at start-up) stays cheap.

Examples:
    >>> from evalkit.report import format_value
    >>> format_value("acc", 0.5)
    '50.0'
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Cell",
    "Column",
    "Leaderboard",
    "Row",
    "Run",
    "SiteSummary",
    "TaskResult",
    "Value",
    "build_leaderboard",
    "build_site",
    "discover_results",
    "format_value",
    "leaderboard_for",
    "load_run",
    "load_runs",
    "merge_rows",
    "reports_dir",
    "run_from_results",
]

_HOME = {**{name: "evalkit.report._build" for name in ("SiteSummary", "build_site", "leaderboard_for", "reports_dir")},
         **{name: "evalkit.report._board" for name in ("Cell", "Column", "Leaderboard", "Row", "build_leaderboard",
                                                       "merge_rows")}}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'evalkit.report' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME.get(name, "evalkit.report._model")), name)


def __dir__() -> list[str]:
    return sorted(__all__)
