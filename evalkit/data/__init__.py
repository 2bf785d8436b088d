"""Benchmark data: where it comes from (`DATASETS`), pulling it from the hub (`pull`), checking a folder
(`check_data_dir`). The CLI is `evalkit data pull|check|list`.

The public names are loaded on first use (PEP 562), so the CLI's `evalkit.data._cli`, imported on every start,
stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalkit._lazy import lazy_getattr

if TYPE_CHECKING:
    from evalkit.data._catalog import DATASETS, DatasetInfo, dataset_info
    from evalkit.data._check import TaskCheck, check_data_dir, check_task
    from evalkit.data._pull import PULLABLE, pull

__all__ = ["DATASETS", "PULLABLE", "DatasetInfo", "TaskCheck", "check_data_dir", "check_task", "dataset_info", "pull"]

_WHERE = {"DATASETS": "evalkit.data._catalog", "DatasetInfo": "evalkit.data._catalog",
          "dataset_info": "evalkit.data._catalog", "TaskCheck": "evalkit.data._check",
          "check_data_dir": "evalkit.data._check", "check_task": "evalkit.data._check",
          "PULLABLE": "evalkit.data._pull", "pull": "evalkit.data._pull"}
__getattr__ = lazy_getattr(__name__, _WHERE, globals())
