"""Metrics: accuracy aggregation with stderr, perplexity, LongBench text metrics, bootstrap CIs."""

from evalkit.metrics._aggregate import aggregate_groups, corpus_perplexity, macro_mean_stderr, mean_stderr

__all__ = ["aggregate_groups", "corpus_perplexity", "macro_mean_stderr", "mean_stderr"]
