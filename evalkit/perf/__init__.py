"""`evalkit perf`: a load test for any OpenAI-compatible endpoint (TTFT, TPOT, ITL, latency, throughput).

Importing this package is cheap (the CLI imports it to register the command); httpx, numpy and rich load on
first use.

Examples:
    >>> from evalkit.perf import PerfSettings
    >>> PerfSettings("http://127.0.0.1:8000/v1", "smollm2", ("Hello",)).endpoint
    'chat'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalkit._lazy import lazy_getattr

if TYPE_CHECKING:
    from evalkit.perf._load import LevelReport, PerfSettings, RequestRecord, run_level, summarize
    from evalkit.perf._sweep import load_prompts, run_sweep

__all__ = ["LevelReport", "PerfSettings", "RequestRecord", "load_prompts", "run_level", "run_sweep", "summarize"]

_HOMES = {"LevelReport": "_load", "PerfSettings": "_load", "RequestRecord": "_load", "run_level": "_load",
          "summarize": "_load", "load_prompts": "_sweep", "run_sweep": "_sweep"}

__getattr__ = lazy_getattr("evalkit.perf", {name: f"evalkit.perf.{home}" for name, home in _HOMES.items()},
                           globals())
