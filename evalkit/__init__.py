"""evalkit: evaluate large language models and publish the results as static leaderboards."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["RunResult", "__version__", "evaluate"]


def evaluate(*args: Any, **kwargs: Any) -> Any:
    """Run an evaluation in-process and return a RunResult (see `evalkit.api.evaluate`)."""
    from evalkit.api import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "RunResult":
        from evalkit.api import RunResult

        return RunResult
    raise AttributeError(f"module 'evalkit' has no attribute {name!r}")
