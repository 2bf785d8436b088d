"""Run directories, the response cache and resume."""

from evalkit.store._rundir import RunDir, file_sha256, new_run_id, read_jsonl, read_results

__all__ = ["RunDir", "file_sha256", "new_run_id", "read_jsonl", "read_results"]

from evalkit.store._cache import CachedBackend, CacheStats, ResponseStore  # noqa: E402

__all__ += ["CacheStats", "CachedBackend", "ResponseStore"]
