"""CMB-Exam scoring: the official `match_choice` / `extract_ans` / `score.py` reproduced, and evalkit's set scoring.

Two documented modes (`--task-args scoring=official|set`, default `set`):

- ``official`` reproduces the CMB repository (FreedomIntelligence/CMB) exactly:

  * `official_match_choice` is `src/utils.py::match_choice` of commit 0cc16a2: the regex
    ``(答案|正确选项)(?:是|：|为|应该是|应该为)(.*?)(。|\\.|$)`` (re.S, first match); when it matches, every
    character of its second group that is one of A–G, in order, repeats kept; otherwise EVERY A–G character of
    the whole reply (so "Because A is wrong" yields "BA"). `cot_flag` changes nothing there (both branches
    are identical), so it is not a parameter. Commit 70d6796 had the narrower ``答案(?:是|为|应该是|应该为)``;
    `OFFICIAL_ANSWER_PATTERN_OLD` keeps it for reference.
  * `official_prediction` is `extract_ans`: for a question whose type is not 多项选择题 only the first letter
    is kept; empty extractions are dropped; the most frequent extraction over the answers wins (Python's stable
    sort: the first seen among ties); none gives "".
  * `official_correct` is `score.py`'s test: ``correct_answer == model_answer``, exact string equality, no
    sorting and no normalisation (gold "AC" against "CA" is wrong).
  * `official_report` is `score.py`'s aggregation: accuracy per exam class, and each exam type as the
    UNWEIGHTED mean of its classes' accuracies. The official script computes no overall number; evalkit's
    `overall` is the unweighted mean of the exam types (documented here, not official), and `acc_micro` the
    plain fraction of correct questions.

- ``set`` (evalkit's default): the prediction and the gold are normalised to sorted sets of distinct letters;
  correct when the sets are equal. Per-option F1 (partial credit for a multi-answer question) is reported
  apart, as `option_f1`, never mixed into accuracy.

Examples:
    >>> official_match_choice("答案是AC。因为B错")
    'AC'
    >>> official_match_choice("I think B, not A")
    'BA'
    >>> official_prediction(["答案：BD"], "单项选择题"), official_correct("AC", "CA")
    ('B', False)
    >>> set_correct("AC", "CA"), round(option_f1("AC", "A"), 3)
    (True, 0.667)
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["MULTI_ANSWER_TYPE", "OFFICIAL_ANSWER_PATTERN", "OFFICIAL_ANSWER_PATTERN_OLD", "OFFICIAL_LETTERS",
           "OfficialReport", "letter_set", "official_correct", "official_match_choice", "official_prediction",
           "official_report", "option_f1", "set_correct"]

OFFICIAL_LETTERS = ("A", "B", "C", "D", "E", "F", "G")
MULTI_ANSWER_TYPE = "多项选择题"
OFFICIAL_ANSWER_PATTERN = re.compile(r"(答案|正确选项)(?:是|：|为|应该是|应该为)(.*?)(。|\.|$)", re.DOTALL)
OFFICIAL_ANSWER_PATTERN_OLD = re.compile(r"答案(?:是|为|应该是|应该为)(.*?)(。|\.|$)", re.DOTALL)


def official_match_choice(text: str) -> str:
    """The letters the official `match_choice` reads from one reply (order and repeats kept)."""
    found = OFFICIAL_ANSWER_PATTERN.search(text)
    if found:
        return "".join(x for x in found.group(2) if x in OFFICIAL_LETTERS)
    return "".join(x for x in text if x in OFFICIAL_LETTERS)


def official_prediction(answers: Sequence[str], question_type: str) -> str:
    """The official `extract_ans` over one question's sampled answers: the model answer string ("" if none)."""
    counts: dict[str, int] = defaultdict(int)
    for answer in answers:
        choice = official_match_choice(answer)
        if len(choice) > 1 and question_type != MULTI_ANSWER_TYPE:
            choice = choice[0]
        if choice:
            counts[choice] += 1
    if not counts:
        return ""
    return sorted(counts.items(), key=lambda item: item[1], reverse=True)[0][0]  # noqa: FURB192 - as extract_ans


def official_correct(gold: str, prediction: str) -> bool:
    """`score.py`'s test: exact string equality, nothing normalised."""
    return gold == prediction


@dataclass(frozen=True)
class OfficialReport:
    """`score.py`'s numbers plus evalkit's overall.

    Attributes:
        per_class: {exam_type: {exam_class: accuracy}} (official `accuracy_per_subcategory`).
        per_type: {exam_type: unweighted mean of its classes} (official `accuracy_per_category`).
        overall: unweighted mean of `per_type` — NOT computed by the official script.
        acc_micro: correct / total over every question — NOT computed by the official script.
        counts: {exam_type: {exam_class: (correct, total)}}.
    """

    per_class: dict[str, dict[str, float]]
    per_type: dict[str, float]
    overall: float
    acc_micro: float
    counts: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)


def official_report(rows: Iterable[tuple[str, str, bool]]) -> OfficialReport:
    """Aggregate (exam_type, exam_class, correct) rows as `score.py` does (types and classes in first-seen order)."""
    stats: dict[str, dict[str, list[int]]] = {}
    for exam_type, exam_class, correct in rows:
        cell = stats.setdefault(exam_type, {}).setdefault(exam_class, [0, 0])
        cell[1] += 1
        if correct:
            cell[0] += 1
    per_class = {t: {c: ok / total for c, (ok, total) in classes.items()} for t, classes in stats.items()}
    per_type = {t: sum(accs.values()) / len(accs) if accs else 0.0 for t, accs in per_class.items()}
    n_ok = sum(ok for classes in stats.values() for ok, _ in classes.values())
    n_all = sum(total for classes in stats.values() for _, total in classes.values())
    overall = sum(per_type.values()) / len(per_type) if per_type else 0.0
    counts = {t: {c: (ok, total) for c, (ok, total) in classes.items()} for t, classes in stats.items()}
    return OfficialReport(per_class, per_type, overall, n_ok / n_all if n_all else 0.0, counts)


def letter_set(text: str | None, letters: Sequence[str] = OFFICIAL_LETTERS) -> frozenset[str]:
    """The distinct option letters of an answer string ("C A" → {A, C}); None or "" → empty."""
    return frozenset(ch for ch in (text or "").upper() if ch in letters)


def set_correct(gold: str, prediction: str | None) -> bool:
    """Set scoring: the normalised sorted letter sets are equal (an empty prediction is never correct)."""
    predicted = letter_set(prediction)
    return bool(predicted) and predicted == letter_set(gold)


def option_f1(gold: str, prediction: str | None) -> float:
    """Per-option F1 between the gold and predicted letter sets: partial credit, reported apart from accuracy.

    Examples:
        >>> option_f1("ABD", "AB"), option_f1("A", ""), option_f1("AB", "CD")
        (0.8, 0.0, 0.0)
    """
    gold_set, predicted = letter_set(gold), letter_set(prediction)
    hits = len(gold_set & predicted)
    if not hits:
        return 0.0
    precision, recall = hits / len(predicted), hits / len(gold_set)
    return 2 * precision * recall / (precision + recall)
