"""LongBench metrics, reproducing the official evaluation script (THUDM/LongBench `metrics.py`, `eval.py`).

Every function here returns what the official script returns for the same strings, quirks included:

- QA F1 (English) normalises by lower-casing, deleting ASCII punctuation, replacing the articles a/an/the
  by a space and collapsing whitespace, then compares whitespace tokens as multisets.
- QA F1 (Chinese) segments with jieba (precise mode), normalises each segment (lower-case, ASCII and CJK
  punctuation removed, all whitespace removed) and drops the segments that become empty.
- ROUGE-L is the `rouge` package's (1.0.1) summary-level ROUGE-L F: the text is split into sentences at
  ".", and words are counted as *distinct* words (its default `exclusive=True`). Any exception inside
  the package (empty hypothesis, punctuation-only text, a too-deep LCS recursion on very long sentences)
  scores 0.0, as the official bare `except` does -- with the recursion cut-off at the official script's stack
  depth (see `_FreshStack`). Chinese first joins jieba segments with spaces.
- The classification score collects the classes that occur as substrings of the prediction, then drops
  those that are substrings of (but not equal to) the ground truth -- removing items from the list while
  iterating over it, so the element right after a removed one escapes the check. The official fallback to
  difflib similarity never runs (its guard compares a list with 0), so no match scores 0.
- Retrieval and count scores: the fraction of the integers in the prediction that equal the target number.
- Code similarity: fuzzywuzzy's `fuzz.ratio` (difflib underneath, rounded to an integer percent) between
  the first prediction line holding no "`", "#" or "//" and the ground truth, divided by 100.

Per item, the score is the max over the gold answers (starting at 0); for trec, triviaqa, samsum and lsht
only the first line of the prediction (after stripping leading newlines) is scored. Per dataset the score
is `round(100 * mean, 2)`; LongBench-E splits it by the `length` field into 0-4k, 4-8k and 8k+.

Examples:
    >>> qa_f1("The Eiffel Tower!", "eiffel tower")
    1.0
    >>> count_score("There are 3 or 4 unique paragraphs", "4")
    0.5
    >>> score_item("trec", "Abbreviation\\nLocation", ["Abbreviation"], ["Abbreviation", "Location"])
    1.0
"""

from __future__ import annotations

import math
import re
import string
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from evalkit.errors import MissingDependency

__all__ = [
    "CATEGORIES",
    "DATASET_CATEGORY",
    "DATASET_LANGUAGE",
    "DATASET_METRIC",
    "FIRST_LINE_DATASETS",
    "LENGTH_BUCKETS",
    "LONGBENCH_DATASETS",
    "LONGBENCH_E_DATASETS",
    "METRIC_FUNCTIONS",
    "NO_CHAT_TEMPLATE_DATASETS",
    "base_dataset",
    "bucket_scores",
    "category_scores",
    "classification_score",
    "code_sim_score",
    "count_score",
    "dataset_score",
    "first_code_line",
    "length_bucket",
    "normalize_en",
    "normalize_zh",
    "overall_score",
    "qa_f1",
    "qa_f1_zh",
    "retrieval_score",
    "retrieval_zh_score",
    "rouge_l",
    "rouge_l_zh",
    "score_item",
    "scored_text",
    "token_f1",
]

# ---------------------------------------------------------------------------------------------------------
# the benchmark's layout (facts from the LongBench README / eval.py)
# ---------------------------------------------------------------------------------------------------------

CATEGORIES: dict[str, tuple[str, ...]] = {
    "single_doc_qa": ("narrativeqa", "qasper", "multifieldqa_en", "multifieldqa_zh"),
    "multi_doc_qa": ("hotpotqa", "2wikimqa", "musique", "dureader"),
    "summarization": ("gov_report", "qmsum", "multi_news", "vcsum"),
    "few_shot": ("trec", "triviaqa", "samsum", "lsht"),
    "synthetic": ("passage_count", "passage_retrieval_en", "passage_retrieval_zh"),
    "code": ("lcc", "repobench-p"),
}
DATASET_CATEGORY: dict[str, str] = {d: cat for cat, names in CATEGORIES.items() for d in names}
LONGBENCH_DATASETS: tuple[str, ...] = tuple(DATASET_CATEGORY)
LONGBENCH_E_DATASETS: tuple[str, ...] = (
    "qasper", "multifieldqa_en", "hotpotqa", "2wikimqa", "gov_report", "multi_news",
    "trec", "triviaqa", "samsum", "passage_count", "passage_retrieval_en", "lcc", "repobench-p",
)
_ZH = {"multifieldqa_zh", "dureader", "vcsum", "lsht", "passage_retrieval_zh"}
_CODE = {"lcc", "repobench-p"}
DATASET_LANGUAGE: dict[str, str] = {
    d: "zh" if d in _ZH else "code" if d in _CODE else "en" for d in LONGBENCH_DATASETS
}
DATASET_METRIC: dict[str, str] = {
    "narrativeqa": "qa_f1", "qasper": "qa_f1", "multifieldqa_en": "qa_f1", "multifieldqa_zh": "qa_f1_zh",
    "hotpotqa": "qa_f1", "2wikimqa": "qa_f1", "musique": "qa_f1", "dureader": "rouge_l_zh",
    "gov_report": "rouge_l", "qmsum": "rouge_l", "multi_news": "rouge_l", "vcsum": "rouge_l_zh",
    "trec": "classification", "triviaqa": "qa_f1", "samsum": "rouge_l", "lsht": "classification",
    "passage_count": "count", "passage_retrieval_en": "retrieval", "passage_retrieval_zh": "retrieval_zh",
    "lcc": "code_sim", "repobench-p": "code_sim",
}
# Scored on the first line of the prediction only (eval.py).
FIRST_LINE_DATASETS = frozenset({"trec", "triviaqa", "samsum", "lsht"})
# Prompted without the chat template: few-shot continuations and code (LongBench/pred.py).
NO_CHAT_TEMPLATE_DATASETS = frozenset({"trec", "triviaqa", "samsum", "lsht", "lcc", "repobench-p"})
LENGTH_BUCKETS: tuple[str, ...] = ("0-4k", "4-8k", "8k+")

# ASCII punctuation plus the full-width and CJK punctuation the official Chinese normaliser removes.
_CJK_PUNCTUATION = (
    "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】"
    "〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏."
)
_EN_PUNCT = frozenset(string.punctuation)
_ZH_PUNCT = frozenset(string.punctuation + _CJK_PUNCTUATION)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_INTEGER = re.compile(r"\d+")

# ---------------------------------------------------------------------------------------------------------
# optional libraries (extra 'longbench'), imported on first use
# ---------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _jieba() -> Any:
    try:
        import jieba
    except ImportError:
        raise MissingDependency("LongBench Chinese metrics", "longbench", "jieba") from None
    jieba.setLogLevel(60)  # silence "Building prefix dict ..." on first use
    return jieba


@lru_cache(maxsize=1)
def _rouge() -> Any:
    try:
        from rouge import Rouge
    except ImportError:
        raise MissingDependency("LongBench ROUGE-L", "longbench", "rouge") from None
    # Only ROUGE-L is read; rouge-1/-2 fail on exactly the same inputs, so leaving them out changes nothing.
    return Rouge(metrics=["rouge-l"])


@lru_cache(maxsize=1)
def _fuzz_ratio() -> Callable[[str, str], int]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Using slow pure-python SequenceMatcher": that is the point
            from fuzzywuzzy import fuzz
    except ImportError:
        raise MissingDependency("LongBench code similarity", "longbench", "fuzzywuzzy") from None
    ratio: Callable[[str, str], int] = fuzz.ratio
    return ratio


def _segment(text: str) -> list[str]:
    return list(_jieba().cut(text, cut_all=False))


# ---------------------------------------------------------------------------------------------------------
# normalisation and the item-level metrics: metric(prediction, ground_truth, all_classes) -> float
# ---------------------------------------------------------------------------------------------------------


def normalize_en(text: str) -> str:
    """Lower-case, drop ASCII punctuation, blank out a/an/the, collapse whitespace (SQuAD style).

    Examples:
        >>> normalize_en("The  Cat's hat, an apple.")
        'cats hat apple'
    """
    text = "".join(ch for ch in text.lower() if ch not in _EN_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def normalize_zh(text: str) -> str:
    """Lower-case, drop ASCII and CJK punctuation, remove all whitespace.

    Examples:
        >>> normalize_zh("北京， Beijing！")
        '北京beijing'
    """
    return "".join("".join(ch for ch in text.lower() if ch not in _ZH_PUNCT).split())


def token_f1(prediction_tokens: Sequence[str], truth_tokens: Sequence[str]) -> float:
    """F1 of two token multisets; 0 when they share nothing (also when either is empty).

    Examples:
        >>> round(token_f1(["a", "b", "b"], ["b", "c"]), 4)
        0.4
    """
    same = sum((Counter(prediction_tokens) & Counter(truth_tokens)).values())
    if same == 0:
        return 0.0
    precision = same / len(prediction_tokens)
    recall = same / len(truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def qa_f1(prediction: str, ground_truth: str, all_classes: Sequence[str] | None = None) -> float:
    """English QA F1 over whitespace tokens after `normalize_en`."""
    return token_f1(normalize_en(prediction).split(), normalize_en(ground_truth).split())


def qa_f1_zh(prediction: str, ground_truth: str, all_classes: Sequence[str] | None = None) -> float:
    """Chinese QA F1 over jieba segments, each normalised by `normalize_zh`; empty segments dropped."""
    pred = [t for t in (normalize_zh(s) for s in _segment(prediction)) if t]
    truth = [t for t in (normalize_zh(s) for s in _segment(ground_truth)) if t]
    return token_f1(pred, truth)


class _FreshStack(threading.Thread):
    """Calls `rouge.get_scores` at the stack depth the official `eval.py` calls it from.

    The package rebuilds the LCS recursively, one Python frame per step, so a sentence of roughly 1,000
    words or more hits the recursion limit and the official script scores it 0. Where that happens depends
    on how deep the caller's stack already is. In a new thread, `_bootstrap`, `_bootstrap_inner` and `run`
    stand in for eval.py's `<module>`, `scorer` and `rouge_score` (plus one frame for `rouge_zh_score`), so
    the cut-off is the official one wherever evalkit is called from (a CLI run, pytest, a notebook).
    """

    def __init__(self, prediction: str, ground_truth: str, extra_frame: bool) -> None:
        super().__init__(daemon=True)
        self.args = ([prediction], [ground_truth])
        self.extra_frame = extra_frame
        self.value = 0.0

    def run(self) -> None:
        if self.extra_frame:
            self.value = self._rouge_zh_frame()
            return
        try:  # get_scores is called from this frame on purpose: depth 4, as from eval.py's rouge_score
            self.value = float(_rouge().get_scores(*self.args, avg=True)["rouge-l"]["f"])
        except Exception:  # noqa: BLE001 - the official script scores every failure as 0
            self.value = 0.0

    def _rouge_zh_frame(self) -> float:
        """One frame deeper, standing in for eval.py's rouge_zh_score."""
        try:
            return float(_rouge().get_scores(*self.args, avg=True)["rouge-l"]["f"])
        except Exception:  # noqa: BLE001
            return 0.0


def _rouge_l_f(prediction: str, ground_truth: str, *, extra_frame: bool) -> float:
    _rouge()  # import (and fail with MissingDependency) here, in the caller's thread
    worker = _FreshStack(prediction, ground_truth, extra_frame)
    worker.start()
    worker.join()
    return worker.value


def rouge_l(prediction: str, ground_truth: str, all_classes: Sequence[str] | None = None) -> float:
    """ROUGE-L F of the `rouge` package (summary level, distinct words); 0.0 where the package raises."""
    return _rouge_l_f(prediction, ground_truth, extra_frame=False)


def rouge_l_zh(prediction: str, ground_truth: str, all_classes: Sequence[str] | None = None) -> float:
    """ROUGE-L of the jieba segmentations joined by spaces."""
    return _rouge_l_f(" ".join(_segment(prediction)), " ".join(_segment(ground_truth)), extra_frame=True)


def _number_share(prediction: str, target: str) -> float:
    numbers = _INTEGER.findall(prediction)
    if not numbers:
        return 0.0
    return sum(1 for n in numbers if n == target) / len(numbers)


def count_score(prediction: str, ground_truth: str, all_classes: Sequence[str] | None = None) -> float:
    """Share of the integers in the prediction that equal the ground truth (passage_count)."""
    return _number_share(prediction, str(ground_truth))


def _retrieval(prediction: str, ground_truth: str, pattern: str) -> float:
    found = re.findall(pattern, ground_truth)
    # The official script would crash on a gold answer without a paragraph number; no such row exists.
    return _number_share(prediction, found[0]) if found else 0.0


def retrieval_score(prediction: str, ground_truth: str, all_classes: Sequence[str] | None = None) -> float:
    """Share of the integers in the prediction equal to N of the gold "Paragraph N"."""
    return _retrieval(prediction, ground_truth, r"Paragraph (\d+)")


def retrieval_zh_score(prediction: str, ground_truth: str, all_classes: Sequence[str] | None = None) -> float:
    """Share of the integers in the prediction equal to N of the gold "段落N"."""
    return _retrieval(prediction, ground_truth, r"段落(\d+)")


def first_code_line(prediction: str) -> str:
    """The first line of a prediction holding no "`", "#" or "//" (what code similarity compares); "" if none."""
    return next((line for line in prediction.lstrip("\n").split("\n")
                 if "`" not in line and "#" not in line and "//" not in line), "")


def code_sim_score(prediction: str, ground_truth: str, all_classes: Sequence[str] | None = None) -> float:
    """fuzz.ratio / 100 between the first code-looking line of the prediction and the ground truth."""
    return _fuzz_ratio()(first_code_line(prediction), ground_truth) / 100


def classification_score(prediction: str, ground_truth: str,
                         all_classes: Sequence[str] | None = None) -> float:
    """1/k when the ground truth is among the k classes kept after the official filtering, else 0."""
    matched = [c for c in (all_classes or ()) if c in prediction]
    # Mirror of removing while iterating: the index always advances, so the element that slides into a
    # removed element's place is never examined.
    i = 0
    while i < len(matched):
        term = matched[i]
        if term in ground_truth and term != ground_truth:
            matched.remove(term)
        i += 1
    return 1.0 / len(matched) if ground_truth in matched else 0.0


METRIC_FUNCTIONS: dict[str, Callable[[str, str, Sequence[str] | None], float]] = {
    "qa_f1": qa_f1,
    "qa_f1_zh": qa_f1_zh,
    "rouge_l": rouge_l,
    "rouge_l_zh": rouge_l_zh,
    "classification": classification_score,
    "retrieval": retrieval_score,
    "retrieval_zh": retrieval_zh_score,
    "count": count_score,
    "code_sim": code_sim_score,
}

# ---------------------------------------------------------------------------------------------------------
# aggregation
# ---------------------------------------------------------------------------------------------------------


def base_dataset(dataset: str) -> str:
    """LongBench-E files are named `<dataset>_e`; they are scored like `<dataset>`."""
    return dataset[:-2] if dataset.endswith("_e") and dataset[:-2] in DATASET_METRIC else dataset


def scored_text(dataset: str, prediction: str) -> str:
    """The part of a prediction the dataset's metric reads: its first line for the official first-line datasets."""
    return prediction.lstrip("\n").split("\n")[0] if base_dataset(dataset) in FIRST_LINE_DATASETS else prediction


def score_item(dataset: str, prediction: str, answers: Sequence[str],
               all_classes: Sequence[str] | None = None) -> float:
    """One item's score: the max over gold answers of the dataset's metric (first line where official)."""
    name = base_dataset(dataset)
    try:
        metric = METRIC_FUNCTIONS[DATASET_METRIC[name]]
    except KeyError:
        known = ", ".join(LONGBENCH_DATASETS)
        raise ValueError(f"'{dataset}' is not a LongBench dataset; use one of: {known}") from None
    prediction = scored_text(name, prediction)
    best = 0.0
    for truth in answers:
        best = max(best, metric(prediction, truth, all_classes))
    return best


def dataset_score(item_scores: Sequence[float]) -> float:
    """`round(100 * sum / n, 2)`, summed left to right like the official scorer; NaN for no items."""
    if not item_scores:
        return math.nan
    total = 0.0
    for s in item_scores:
        total += s
    return round(100 * total / len(item_scores), 2)


def length_bucket(length: int) -> str:
    """LongBench-E bucket of a record's `length` field (words for English, characters for Chinese).

    Examples:
        >>> [length_bucket(n) for n in (3999, 4000, 7999, 8000)]
        ['0-4k', '4-8k', '4-8k', '8k+']
    """
    return "0-4k" if length < 4000 else "4-8k" if length < 8000 else "8k+"


def bucket_scores(item_scores: Sequence[float], lengths: Sequence[int]) -> dict[str, float]:
    """LongBench-E: `round(100 * np.mean, 2)` per length bucket; empty buckets left out (official: NaN)."""
    groups: dict[str, list[float]] = {b: [] for b in LENGTH_BUCKETS}
    for score, length in zip(item_scores, lengths, strict=True):
        groups[length_bucket(length)].append(score)
    return {b: round(100 * float(np.mean(v)), 2) for b, v in groups.items() if v}


def category_scores(per_dataset: Mapping[str, float]) -> dict[str, float]:
    """Mean of the dataset scores in each category (only categories with at least one scored dataset)."""
    out: dict[str, float] = {}
    for cat, names in CATEGORIES.items():
        vals = [score for name, score in per_dataset.items()
                if base_dataset(name) in names and not math.isnan(score)]
        if vals:
            out[cat] = round(sum(vals) / len(vals), 2)
    return out


def overall_score(values: Iterable[float]) -> float:
    """Unweighted mean (two decimals) of category or dataset scores, ignoring NaN; NaN when none."""
    vals = [v for v in values if not math.isnan(v)]
    return round(sum(vals) / len(vals), 2) if vals else math.nan
