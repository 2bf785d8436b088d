"""`evalkit serve`: an OpenAI-compatible HTTP server over any evalkit backend.

Importing this package is cheap (the CLI imports it to register the command); FastAPI and uvicorn load on
first use of `create_app` / `serve_in_thread`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalkit._lazy import lazy_getattr

if TYPE_CHECKING:
    from evalkit.server._app import create_app
    from evalkit.server._faults import FaultSchedule
    from evalkit.server._run import serve_forever, serve_in_thread

__all__ = ["FaultSchedule", "create_app", "serve_forever", "serve_in_thread"]

_HOMES = {"create_app": "_app", "FaultSchedule": "_faults", "serve_forever": "_run", "serve_in_thread": "_run"}

__getattr__ = lazy_getattr("evalkit.server", {name: f"evalkit.server.{home}" for name, home in _HOMES.items()},
                           globals())
