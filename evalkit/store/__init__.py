"""Run directories, the response cache and resume."""

from evalkit.store._rundir import RunDir, file_sha256, new_run_id, read_jsonl, read_results

__all__ = ["RunDir", "file_sha256", "new_run_id", "read_jsonl", "read_results"]

from evalkit.store._cache import CachedBackend, CacheStats, ResponseStore

__all__ += ["CacheStats", "CachedBackend", "ResponseStore"]

from evalkit.store._lmeval_import import convert_lmeval_results, import_lmeval_results

__all__ += ["convert_lmeval_results", "import_lmeval_results"]
