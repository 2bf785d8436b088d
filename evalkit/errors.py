"""The exception tree of evalkit.

Every message says what went wrong, where (file:line, row or field) and how to fix it, in one line,
because the CLI prints it as the only line a user sees (exit code 2).

    EvalkitError
    ├── ConfigError        bad flags, model names, --model-args / --task-args
    ├── TaskSpecError      a task or judge YAML that does not validate
    ├── DataError          a missing dataset or a bad data file
    ├── BackendError       a backend that cannot serve a request
    │   └── UnsupportedRequest   the backend cannot do this kind of request at all
    ├── CacheError         a corrupt or locked response cache
    └── GateError          a CI gate that cannot compare what it was given

    GateFailed             not an error: the gate ran and a check failed (exit status 1)
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "CacheError",
    "ConfigError",
    "DataError",
    "EvalkitError",
    "GateError",
    "GateFailed",
    "MissingDependency",
    "TaskSpecError",
    "UnsupportedRequest",
]


class EvalkitError(Exception):
    """Base of every error evalkit raises on purpose (user-facing, one line)."""


class ConfigError(EvalkitError):
    """A flag, model spec or key=value argument is wrong."""


class MissingDependency(ConfigError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, what: str, extra: str, module: str) -> None:
        super().__init__(f"{what} needs the '{extra}' extra (module '{module}' is missing): "
                         f"pip install 'evalkit[{extra}]'")


class TaskSpecError(EvalkitError):
    """A task or judge definition file does not validate."""


class DataError(EvalkitError):
    """A dataset is missing or a data file is malformed."""


class BackendError(EvalkitError):
    """A backend failed to serve a request."""


class UnsupportedRequest(BackendError):
    """The backend cannot serve this kind of request (e.g. loglikelihood on a chat-only API)."""


class CacheError(EvalkitError):
    """The response cache cannot be opened or read."""


class GateError(EvalkitError):
    """A CI gate was given results it cannot compare."""


class GateFailed(Exception):
    """Raised by `evalkit gate` when a check fails: the CLI exits with status 1 (not a user error)."""
