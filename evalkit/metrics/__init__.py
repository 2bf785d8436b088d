# LongBench: the official metrics (evalkit.metrics.longbench holds the dataset map and the aggregation)
from evalkit.metrics import _longbench as longbench  # noqa: E402
from evalkit.metrics._longbench import (  # noqa: E402
    classification_score, code_sim_score, count_score, qa_f1, qa_f1_zh, retrieval_score, retrieval_zh_score,
    rouge_l, rouge_l_zh,
)

__all__ = [*globals().get("__all__", []), "longbench", "classification_score", "code_sim_score", "count_score",
           "qa_f1", "qa_f1_zh", "retrieval_score", "retrieval_zh_score", "rouge_l", "rouge_l_zh"]
