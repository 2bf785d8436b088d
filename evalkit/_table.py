"""A plain aligned text table for the listing commands (`evalkit tasks`, `evalkit models`, `evalkit cache`).

rich would cost more import time than these listings take, so this stays stdlib-only.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence

__all__ = ["print_table"]


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print `rows` under `header`, columns aligned; the last column is cut to the terminal width on a tty.

    Examples:
        >>> print_table(("name", "what"), [("a", "first"), ("bb", "second")])
        name  what
        ----  ------
        a     first
        bb    second
    """
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    room = max(30, shutil.get_terminal_size((120, 20)).columns - sum(widths) - 2 * len(widths))
    if not sys.stdout.isatty():
        room = 10_000  # piped output keeps whole descriptions
    last_width = max(len(str(r[-1])) for r in [header, *rows])
    for index, row in enumerate([header, *rows]):
        cells = [str(c).ljust(w) for c, w in zip(row, widths)]
        last = str(row[-1])
        print("  ".join([*cells, last if len(last) <= room else last[:room - 1] + "…"]).rstrip())
        if index == 0:
            print("  ".join(["-" * w for w in widths] + ["-" * min(room, last_width, 60)]))
