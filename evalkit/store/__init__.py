"""Run directories, the response cache and resume."""

from evalkit.store._rundir import file_sha256, new_run_id, read_jsonl, read_results
from evalkit.store._writer import RunWriter, SampleWriter, ensure_output_dir

__all__ = ["RunWriter", "SampleWriter", "ensure_output_dir", "file_sha256", "new_run_id", "read_jsonl",
           "read_results"]

from evalkit.store._cache import CachedBackend, CacheStats, ResponseStore

__all__ += ["CacheStats", "CachedBackend", "ResponseStore"]

from evalkit.store._lmeval_import import convert_lmeval_results, import_lmeval_results, lmeval_record

__all__ += ["convert_lmeval_results", "import_lmeval_results", "lmeval_record"]
