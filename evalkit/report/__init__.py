"""Static HTML leaderboards: `evalkit report runs/ -o site/`.

Names are loaded on first use, so `import evalkit.report._cli` (done by the CLI at start-up) stays cheap.

Examples:
    >>> from evalkit.report import format_value
    >>> format_value("acc", 0.5)
    '50.0'
"""

from __future__ import annotations

from evalkit._lazy import lazy_getattr

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


__getattr__ = lazy_getattr("evalkit.report", {name: _HOME.get(name, "evalkit.report._model") for name in __all__},
                           globals())


def __dir__() -> list[str]:
    return sorted(__all__)
