"""Metrics: accuracy aggregation with stderr, perplexity, LongBench text metrics, k-sample metrics, calibration.

The LongBench names are the official metrics; `evalkit.metrics.longbench` holds the dataset map and the
aggregation. Names are imported on first use, so a task kind that needs only accuracy does not load the
LongBench text tooling.
"""

from typing import Any

from evalkit._lazy import lazy_getattr

_WHERE = {
    **dict.fromkeys(("aggregate_groups", "corpus_perplexity", "macro_mean_stderr", "mean_stderr"),
                    "evalkit.metrics._aggregate"),
    **dict.fromkeys(("classification_score", "code_sim_score", "count_score", "qa_f1", "qa_f1_zh",
                     "retrieval_score", "retrieval_zh_score", "rouge_l", "rouge_l_zh"), "evalkit.metrics._longbench"),
    **dict.fromkeys(("maj_at_k", "majority_letter", "mean_at_k", "pass_at_k", "sampling_metrics"),
                    "evalkit.metrics._sampling"),
    **dict.fromkeys(("brier_score", "calibration_metrics", "expected_calibration_error", "option_probabilities"),
                    "evalkit.metrics._calibration"),
}

__all__ = [  # noqa: RUF022 - grouped by module
    "aggregate_groups", "corpus_perplexity", "macro_mean_stderr", "mean_stderr",
    "classification_score", "code_sim_score", "count_score", "qa_f1", "qa_f1_zh", "retrieval_score",
    "retrieval_zh_score", "rouge_l", "rouge_l_zh", "longbench",
    "maj_at_k", "majority_letter", "mean_at_k", "pass_at_k", "sampling_metrics",
    "brier_score", "calibration_metrics", "expected_calibration_error", "option_probabilities",
]

_lazy = lazy_getattr("evalkit.metrics", _WHERE, globals())


def __getattr__(name: str) -> Any:
    if name == "longbench":
        from evalkit.metrics import _longbench

        globals()["longbench"] = _longbench
        return _longbench
    return _lazy(name)
