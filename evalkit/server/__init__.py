"""`evalkit serve`: an OpenAI-compatible HTTP server over any evalkit backend.

Importing this package is cheap (the CLI imports it to register the command); FastAPI and uvicorn load on
first use of `create_app` / `serve_in_thread`.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["FaultSchedule", "create_app", "serve_forever", "serve_in_thread"]

_HOMES = {"create_app": "_app", "FaultSchedule": "_faults", "serve_forever": "_run", "serve_in_thread": "_run"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"evalkit.server.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'evalkit.server' has no attribute '{name}'")
