"""Metrics: accuracy aggregation with stderr, perplexity, LongBench text metrics, bootstrap CIs.

The LongBench names are the official metrics; `evalkit.metrics.longbench` holds the dataset map and the
aggregation.
"""

from evalkit.metrics import _longbench as longbench
from evalkit.metrics._aggregate import aggregate_groups, corpus_perplexity, macro_mean_stderr, mean_stderr
from evalkit.metrics._longbench import (
    classification_score,
    code_sim_score,
    count_score,
    qa_f1,
    qa_f1_zh,
    retrieval_score,
    retrieval_zh_score,
    rouge_l,
    rouge_l_zh,
)

__all__ = [
    "aggregate_groups", "classification_score", "code_sim_score", "corpus_perplexity", "count_score", "longbench",
    "macro_mean_stderr", "mean_stderr", "qa_f1", "qa_f1_zh", "retrieval_score", "retrieval_zh_score", "rouge_l",
    "rouge_l_zh",
]
