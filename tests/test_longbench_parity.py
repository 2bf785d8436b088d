"""Parity with the official LongBench scorer on real records from ../shared/data/longbench/data.

`_Official` below is a plain transcription of the behaviour of THUDM/LongBench `metrics.py` + `eval.py`
(MIT licence), kept deliberately literal -- the full `Rouge()` with all three metrics, the list mutated while
iterated, the dead difflib fallback, `total_score += score` -- so that evalkit's own implementation is checked
against it, not against itself. Predictions are real strings: other items' answers, slices of the contexts,
the questions, perturbed golds.
"""

from __future__ import annotations

import difflib
import json
import re
import string
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jieba
import numpy as np
import pytest
import rouge

from evalkit.metrics import _longbench as lb

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fuzzywuzzy import fuzz


class _Official:
    """Literal transcription of the official definitions (reference oracle, not evalkit code)."""

    CN_PUNCT = ("！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿"
                "–—‘’‛“”„‟…‧﹏.")

    @staticmethod
    def norm(s: str) -> str:
        s = s.lower()
        s = "".join(ch for ch in s if ch not in set(string.punctuation))
        s = re.sub(r"\b(a|an|the)\b", " ", s)
        return " ".join(s.split())

    @classmethod
    def norm_zh(cls, s: str) -> str:
        s = s.lower()
        punct = set(string.punctuation + cls.CN_PUNCT)
        s = "".join(ch for ch in s if ch not in punct)
        return "".join(s.split())

    @staticmethod
    def f1(pred: list[str], gold: list[str]) -> float:
        common = Counter(pred) & Counter(gold)
        num_same = sum(common.values())
        if num_same == 0:
            return 0
        p = 1.0 * num_same / len(pred)
        r = 1.0 * num_same / len(gold)
        return (2 * p * r) / (p + r)

    @classmethod
    def qa_f1(cls, pred: str, gold: str, **_: Any) -> float:
        return cls.f1(cls.norm(pred).split(), cls.norm(gold).split())

    @classmethod
    def qa_f1_zh(cls, pred: str, gold: str, **_: Any) -> float:
        p = [cls.norm_zh(t) for t in jieba.cut(pred, cut_all=False)]
        g = [cls.norm_zh(t) for t in jieba.cut(gold, cut_all=False)]
        return cls.f1([t for t in p if len(t) > 0], [t for t in g if len(t) > 0])

    @staticmethod
    def rouge(pred: str, gold: str, **_: Any) -> float:
        try:
            scores = rouge.Rouge().get_scores([pred], [gold], avg=True)
        except:  # noqa: E722 - as the official script
            return 0.0
        return scores["rouge-l"]["f"]

    @classmethod
    def rouge_zh(cls, pred: str, gold: str, **_: Any) -> float:
        return cls.rouge(" ".join(jieba.cut(pred, cut_all=False)), " ".join(jieba.cut(gold, cut_all=False)))

    @staticmethod
    def numbers(pred: str, target: str) -> float:
        nums = re.findall(r"\d+", pred)
        right = 0
        for n in nums:
            if str(n) == str(target):
                right += 1
        return 0.0 if len(nums) == 0 else right / len(nums)

    @classmethod
    def count(cls, pred: str, gold: str, **_: Any) -> float:
        return cls.numbers(pred, gold)

    @classmethod
    def retrieval_zh(cls, pred: str, gold: str, **_: Any) -> float:
        return cls.numbers(pred, re.findall(r"段落(\d+)", gold)[0])

    @staticmethod
    def code_sim(pred: str, gold: str, **_: Any) -> float:
        chosen = ""
        for line in pred.lstrip("\n").split("\n"):
            if ("`" not in line) and ("#" not in line) and ("//" not in line):
                chosen = line
                break
        return fuzz.ratio(chosen, gold) / 100

    @staticmethod
    def classification(pred: str, gold: str, **kw: Any) -> float:
        em = []
        for c in kw["all_classes"]:
            if c in pred:
                em.append(c)
        for term in em:
            if term in gold and term != gold:
                em.remove(term)
        if em != 0:
            return (1.0 / len(em)) if gold in em else 0.0
        best, hi = None, 0.0  # never reached: a list is never equal to 0
        for c in kw["all_classes"]:
            sim = difflib.SequenceMatcher(None, c, pred).ratio()
            if sim > hi:
                hi, best = sim, c
        return float(best == gold)

    @staticmethod
    def item(metric: Any, dataset: str, pred: str, golds: list[str], all_classes: Any) -> float:
        score = 0.0
        if dataset in ["trec", "triviaqa", "samsum", "lsht"]:
            pred = pred.lstrip("\n").split("\n")[0]
        for g in golds:
            score = max(score, metric(pred, g, all_classes=all_classes))
        return score


def _rows(data_dir: Path, name: str) -> list[dict[str, Any]]:
    path = data_dir / "longbench" / "data" / f"{name}.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} absent")
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def _predictions(rows: list[dict[str, Any]], i: int) -> Iterator[str]:
    """Real strings as predictions for row i: another row's answer, the gold itself and perturbed, context
    and question slices, an empty and a punctuation-only string."""
    row, other = rows[i], rows[(i + 7) % len(rows)]
    gold = row["answers"][0]
    yield other["answers"][0]
    yield gold
    yield gold.upper() + "。" + other["answers"][0][:20]
    yield "\n\n" + gold[: max(1, len(gold) // 2)] + "\nmore"
    yield row["context"][i * 13 % 500: i * 13 % 500 + 160]
    yield row["input"][:120]
    yield ""
    yield "……。"


def _check(dataset: str, official: Any, rows: list[dict[str, Any]], n: int) -> list[float]:
    """Score every (row, prediction) pair both ways, then each kind of prediction as a dataset of n rows (one
    prediction per row, as eval.py sees a model's output). Returns the official dataset score of each kind."""
    ours_by_kind: list[list[float]] = []
    theirs_by_kind: list[list[float]] = []
    for i in range(n):
        golds = rows[i]["answers"]
        for k, pred in enumerate(_predictions(rows, i)):
            ours = lb.score_item(dataset, pred, golds, rows[i]["all_classes"])
            theirs = _Official.item(official, dataset, pred, golds, rows[i]["all_classes"])
            assert ours == theirs, (dataset, i, pred[:60])
            if i == 0:
                ours_by_kind.append([])
                theirs_by_kind.append([])
            ours_by_kind[k].append(ours)
            theirs_by_kind[k].append(theirs)
    official_scores = []
    for k, (ours_k, theirs_k) in enumerate(zip(ours_by_kind, theirs_by_kind)):
        assert len(ours_k) == n
        total = 0.0  # eval.py: total_score += score
        for s in theirs_k:
            total += s
        official_scores.append(round(100 * total / len(theirs_k), 2))
        assert lb.dataset_score(ours_k) == official_scores[k], (dataset, k)
    # the comparison sees real scores: the gold is a perfect dataset, the others differ from it and each other
    assert official_scores[1] == 100.0 and len(set(official_scores)) >= 4, official_scores
    return official_scores


@pytest.mark.integration  # ~5 s: 1,600 jieba-segmented pairs
def test_multifieldqa_zh_qa_f1_zh(data_dir: Path) -> None:
    rows = _rows(data_dir, "multifieldqa_zh")
    assert len(_check("multifieldqa_zh", _Official.qa_f1_zh, rows, 200)) == 8


def test_passage_retrieval_zh(data_dir: Path) -> None:
    rows = _rows(data_dir, "passage_retrieval_zh")
    assert len(_check("passage_retrieval_zh", _Official.retrieval_zh, rows, 200)) == 8
    # model-like answers that name several paragraphs
    for i, row in enumerate(rows[:50]):
        gold = row["answers"]
        pred = f"答案是：段落{i % 30 + 1}，也可能是段落{i % 7}"
        assert lb.score_item("passage_retrieval_zh", pred, gold) == _Official.item(
            _Official.retrieval_zh, "passage_retrieval_zh", pred, gold, None)


@pytest.mark.integration  # > 3 s: ROUGE-L on long summaries
def test_multi_news_rouge_l(data_dir: Path) -> None:
    rows = _rows(data_dir, "multi_news")
    assert len(_check("multi_news", _Official.rouge, rows, 15)) == 8


def test_other_metrics_on_real_strings(data_dir: Path) -> None:
    """English QA F1, Chinese ROUGE-L, classification, count and code similarity on real text."""
    news = _rows(data_dir, "multi_news")
    zh = _rows(data_dir, "multifieldqa_zh")
    classes = [r["answers"][0] for r in zh[:12]]
    for i in range(40):
        a, b = news[i]["answers"][0], news[(i + 3) % 200]["answers"][0]
        sa, sb = a.split(". ")[0], b.split(". ")[1 % len(b.split(". "))]
        cases = [
            ("hotpotqa", _Official.qa_f1, sa, [sb, sa.lower()], None),
            ("triviaqa", _Official.qa_f1, "\n" + sa + "\n" + sb, [sb], None),
            ("vcsum", _Official.rouge_zh, zh[i]["context"][:120], [zh[i]["context"][60:200]], None),
            ("lsht", _Official.classification, zh[i]["context"][:300] + classes[i % 12],
             [classes[i % 12]], classes),
            ("trec", _Official.classification, " ".join(classes[i % 5: i % 5 + 3]), [classes[i % 12]], classes),
            ("passage_count", _Official.count, news[i]["context"][:400], [str(i % 10)], None),
            ("lcc", _Official.code_sim, news[i]["context"][i: i + 90], [news[i]["context"][i + 20: i + 100]], None),
        ]
        for dataset, fn, pred, golds, all_classes in cases:
            ours = lb.score_item(dataset, pred, golds, all_classes)
            assert ours == _Official.item(fn, dataset, pred, golds, all_classes), (dataset, i)


def test_longbench_e_buckets_match_numpy_mean(data_dir: Path) -> None:
    rows = _rows(data_dir, "passage_retrieval_zh")
    scores = [lb.score_item("passage_retrieval_zh", rows[(i + 1) % 200]["answers"][0] + " 段落1", r["answers"])
              for i, r in enumerate(rows)]
    lengths = [r["length"] for r in rows]
    expect: dict[str, list[float]] = {"0-4k": [], "4-8k": [], "8k+": []}
    for s, n in zip(scores, lengths):
        expect["0-4k" if n < 4000 else "4-8k" if n < 8000 else "8k+"].append(s)
    want = {k: round(100 * np.mean(v), 2) for k, v in expect.items() if v}
    assert lb.bucket_scores(scores, lengths) == want


_EVAL_PY_SHAPE = '''
import sys, jieba
from rouge import Rouge
jieba.setLogLevel(60)
def rouge_score(prediction, ground_truth, **kwargs):
    try:
        scores = Rouge().get_scores([prediction], [ground_truth], avg=True)
    except:
        return 0.0
    return scores["rouge-l"]["f"]
def rouge_zh_score(prediction, ground_truth, **kwargs):
    return rouge_score(" ".join(jieba.cut(prediction, cut_all=False)), " ".join(jieba.cut(ground_truth, cut_all=False)))
dataset2metric = {"en": rouge_score, "zh": rouge_zh_score}
def scorer(dataset, predictions, answers):
    scores = []
    for p, g in zip(predictions, answers):  # a plain loop, as eval.py (a comprehension adds a frame)
        scores.append(dataset2metric[dataset](p, g))
    return scores
if __name__ == "__main__":
    import json
    texts = json.loads(sys.stdin.read())
    out = {}
    for k in texts:  # called from module level, as eval.py does
        out[k] = scorer(k, texts[k], texts[k])
    print(json.dumps(out))
'''


def _long_sentences() -> dict[str, list[str]]:
    return {"en": [" ".join(f"w{i}" for i in range(n)) for n in range(989, 992)],
            "zh": ["".join(f"{i}号" for i in range(n)) for n in range(493, 496)]}


@pytest.mark.integration  # ~40 s: ROUGE-L at the recursion limit, twice
def test_rouge_recursion_cutoff_matches_eval_py(tmp_path: Path) -> None:
    """Very long sentences overflow the rouge package's recursive LCS; the official script scores them 0.
    evalkit reproduces the cut-off of a script shaped like eval.py, whatever the caller's stack depth."""
    import subprocess
    import sys

    script = tmp_path / "eval_shape.py"
    script.write_text(_EVAL_PY_SHAPE, encoding="utf-8")
    texts = _long_sentences()
    done = subprocess.run([sys.executable, str(script)], input=json.dumps(texts), capture_output=True, text=True,
                          check=True, timeout=300)
    official = json.loads(done.stdout)
    for kind in ("en", "zh"):  # the cut-off lies inside each range
        assert official[kind][0] > 0 and official[kind][-1] == 0.0, official

    def nested(depth: int) -> dict[str, list[float]]:
        if depth:
            return nested(depth - 1)
        return {"en": [lb.rouge_l(t, t) for t in texts["en"]], "zh": [lb.rouge_l_zh(t, t) for t in texts["zh"]]}

    for depth in (0, 150):
        ours = nested(depth)
        for kind in ("en", "zh"):
            assert [v > 0 for v in ours[kind]] == [v > 0 for v in official[kind]], (kind, depth)
            assert ours[kind] == pytest.approx(official[kind], abs=0)
