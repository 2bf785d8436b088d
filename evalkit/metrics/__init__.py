"""Metrics: accuracy aggregation with stderr, perplexity, LongBench text metrics, bootstrap CIs."""

from evalkit.metrics._aggregate import aggregate_groups, corpus_perplexity, macro_mean_stderr, mean_stderr

__all__ = ["aggregate_groups", "corpus_perplexity", "macro_mean_stderr", "mean_stderr"]

# LongBench: the official metrics (evalkit.metrics.longbench holds the dataset map and the aggregation)
from evalkit.metrics import _longbench as longbench  # noqa: E402
from evalkit.metrics._longbench import (  # noqa: E402
    classification_score, code_sim_score, count_score, qa_f1, qa_f1_zh, retrieval_score, retrieval_zh_score,
    rouge_l, rouge_l_zh,
)

__all__ += ["longbench", "classification_score", "code_sim_score", "count_score", "qa_f1", "qa_f1_zh",
            "retrieval_score", "retrieval_zh_score", "rouge_l", "rouge_l_zh"]
