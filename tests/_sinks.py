"""A sample sink for tests that run a task kind directly: it keeps every sample row written to it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ListSink:
    """Collects the rows a task writes (`samples`, also readable as `rows`)."""

    def __init__(self) -> None:
        self.samples: list[dict[str, Any]] = []

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.samples

    def write(self, samples: Sequence[dict[str, Any]]) -> None:
        self.samples.extend(samples)
