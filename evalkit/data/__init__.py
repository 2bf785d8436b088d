"""Benchmark data: where it comes from (`DATASETS`), pulling it from the hub (`pull`), checking a folder
(`check_data_dir`). The CLI is `evalkit data pull|check|list`."""

from evalkit.data._catalog import DATASETS, DatasetInfo, dataset_info
from evalkit.data._check import TaskCheck, check_data_dir, check_task
from evalkit.data._pull import PULLABLE, pull

__all__ = ["DATASETS", "PULLABLE", "DatasetInfo", "TaskCheck", "check_data_dir", "check_task", "dataset_info", "pull"]
