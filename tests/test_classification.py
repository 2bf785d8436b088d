"""The classification task kind: verbalised labels scored by loglikelihood or matched in generated text,
accuracy / macro-F1 / MCC against hand-computed values, bad labels skipped with file:line."""

from __future__ import annotations

import importlib.util
import math
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from _sinks import ListSink as _Sink

from evalkit.backends._fake import FakeBackend
from evalkit.errors import TaskSpecError
from evalkit.tasks._data import Rows, tasks_root
from evalkit.tasks._kind import RunContext
from evalkit.tasks._spec import load_spec_file
from evalkit.tasks.classification import (
    ClassificationSpec,
    _validate,
    macro_f1,
    match_label,
    matthews_corrcoef,
    run,
)
from evalkit.types import LoglikelihoodRequest, LoglikelihoodResult

# gold a a b b c c / predicted a b b b c a: F1 a = 2/4, b = 4/5, c = 2/3 -> macro 59/90;
# MCC: s = 6, correct = 4, Σ t·p = 2·2 + 2·3 + 2·1 = 12 -> (4·6 − 12) / sqrt((36 − 14)(36 − 12)) = 12 / sqrt(528)
GOLD = ["a", "a", "b", "b", "c", "c"]
PRED = ["a", "b", "b", "b", "c", "a"]
WORDS = {"a": "体育", "b": "财经", "c": "科技"}

TASK_YAML = """\
name: my_topics
kind: classification
data: {local: "mine.csv"}
eval_split: test
text_fields: [sentence]
label_column: label
labels: {a: 体育, b: 财经, c: 科技}
prompt: "句子：{{ sentence }}\\n类别："
metrics: [acc, macro_f1, mcc]
"""



class _ScriptedLL(FakeBackend):
    """Gives the word `wanted[sentence]` logprob -1 and every other word -5."""

    def __init__(self, wanted: dict[str, str]) -> None:
        super().__init__()
        self.wanted = wanted

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        out = []
        for req in requests:
            sentence = re.search(r"句子：(.*)\n", req.context)
            assert sentence is not None
            out.append(LoglikelihoodResult(-1.0 if self.wanted[sentence.group(1)] == req.continuation else -5.0,
                                           False))
        return out


def _write_task(tmp_path: Path, with_bad_row: bool = True) -> ClassificationSpec:
    lines = ["sentence,label"] + [f"s{i},{g}" for i, g in enumerate(GOLD)]
    if with_bad_row:
        lines.insert(3, "odd,zzz")  # file line 4
    (tmp_path / "mine.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "my_topics.yaml").write_text(TASK_YAML, encoding="utf-8")
    spec = load_spec_file(tmp_path / "my_topics.yaml")
    assert isinstance(spec, ClassificationSpec)
    return spec


def test_metrics_equal_hand_computed_values() -> None:
    assert macro_f1(GOLD, PRED) == pytest.approx(59 / 90)
    assert matthews_corrcoef(GOLD, PRED) == pytest.approx(12 / math.sqrt(528))
    # binary: TP 1, FN 1, TN 2, FP 0 -> (1·2 − 0) / sqrt(1·2·2·3)
    assert matthews_corrcoef(["1", "1", "0", "0"], ["1", "0", "0", "0"]) == pytest.approx(2 / math.sqrt(12))
    assert matthews_corrcoef(["1", "0"], ["1", "1"]) == 0.0  # constant prediction
    # an unextractable answer is a miss for its gold class, not a class of its own
    assert macro_f1(["a", "b"], ["a", None]) == pytest.approx(0.5)


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn comes with the judges extra")
def test_metrics_agree_with_scikit_learn() -> None:
    from sklearn import metrics as sklearn_metrics  # the hand-computed values above run everywhere

    assert macro_f1(GOLD, PRED) == pytest.approx(sklearn_metrics.f1_score(GOLD, PRED, average="macro"))
    assert matthews_corrcoef(GOLD, PRED) == pytest.approx(sklearn_metrics.matthews_corrcoef(GOLD, PRED))
    gold, pred = ["x", "y", "z", "x", "y"], ["y", "y", "z", "z", "x"]
    assert macro_f1(gold, pred) == pytest.approx(sklearn_metrics.f1_score(gold, pred, average="macro"))
    assert matthews_corrcoef(gold, pred) == pytest.approx(sklearn_metrics.matthews_corrcoef(gold, pred))


def test_loglikelihood_run_scores_known_predictions_and_skips_bad_label(tmp_path: Path) -> None:
    spec = _write_task(tmp_path)
    backend = _ScriptedLL({f"s{i}": WORDS[p] for i, p in enumerate(PRED)})
    warnings: list[str] = []
    sink = _Sink()
    outcome = run(spec, backend, RunContext(data_dir=tmp_path, warn=warnings.append), sink)
    assert outcome.n == 6
    assert outcome.metrics["acc"] == pytest.approx(4 / 6)
    assert outcome.metrics["acc_stderr"] == pytest.approx(math.sqrt((4 / 6) * (2 / 6) * 6 / 5 / 6))
    assert outcome.metrics["macro_f1"] == pytest.approx(59 / 90)
    assert outcome.metrics["mcc"] == pytest.approx(12 / math.sqrt(528))
    assert outcome.info["skipped_rows"] == 1 and outcome.info["mode"] == "loglikelihood"
    assert "unextractable_rate" not in outcome.metrics
    assert [w for w in warnings if f"{tmp_path / 'mine.csv'}:4: label 'zzz'" in w]
    assert [s["prediction"] for s in sink.samples] == [WORDS[p] for p in PRED]
    assert sink.samples[1]["choice_logprobs"] == {"体育": -5.0, "财经": -1.0, "科技": -5.0}


def test_generate_mode_matches_the_word_and_counts_unextractable(tmp_path: Path) -> None:
    spec = _write_task(tmp_path, with_bad_row=False)
    replies = {"s0": "这是体育新闻", "s1": "财经。不是体育", "s2": "财经", "s3": "我不知道",
               "s4": "科技类", "s5": "科技"}
    backend = FakeBackend(replies=[(re.compile(f"句子：{s}\n"), [t]) for s, t in replies.items()])
    sink = _Sink()
    outcome = run(spec, backend, RunContext(data_dir=tmp_path, task_args={"mode": "generate"}), sink)
    assert [s["predicted_label"] for s in sink.samples] == ["a", "b", "b", None, "c", "c"]
    assert outcome.info["unextractable"] == 1 and outcome.info["mode"] == "generate"
    assert outcome.metrics["unextractable_rate"] == pytest.approx(1 / 6)
    assert outcome.metrics["acc"] == pytest.approx(4 / 6)
    assert outcome.metrics["macro_f1"] == pytest.approx(macro_f1(GOLD, ["a", "b", "b", None, "c", "c"]))


def test_match_label_prefers_the_earliest_word() -> None:
    assert match_label("答案：不同，并非相同", {"0": "不同", "1": "相同"}) == "0"
    assert match_label("没有", {"0": "不同", "1": "相同"}) is None


def test_duplicate_verbaliser_and_unknown_prompt_variable_are_load_errors(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(TASK_YAML.replace("c: 科技", "c: 体育"), encoding="utf-8")
    with pytest.raises(TaskSpecError, match=r"dup.yaml:\d+: .*verbaliser word\(s\) 体育"):
        load_spec_file(path)
    path.write_text(TASK_YAML.replace("{{ sentence }}", "{{ sentense }}"), encoding="utf-8")
    with pytest.raises(TaskSpecError, match="unknown variable\\(s\\) sentense"):
        load_spec_file(path)


def test_hub_integer_labels_read_through_label_names() -> None:
    spec = load_spec_file(tasks_root() / "clue_tnews.yaml")
    assert isinstance(spec, ClassificationSpec)
    rows = Rows([{"sentence": "x", "label": 3}, {"sentence": "y", "label": "108"}], "hub", "hf://clue", [1, 2])
    usable, skipped = _validate(spec, rows, lambda msg: None)
    assert [r.label for r in usable] == ["103", "108"] and skipped == 0
    assert spec.labels["103"] == "体育"


def test_shipped_clue_tasks_load() -> None:
    afqmc = load_spec_file(tasks_root() / "clue_afqmc.yaml")
    assert isinstance(afqmc, ClassificationSpec)
    assert afqmc.labels == {"0": "不同", "1": "相同"} and afqmc.text_fields == ["sentence1", "sentence2"]


@pytest.mark.integration
def test_smollm2_on_the_afqmc_demo_set() -> None:
    from evalkit.backends import load_backend

    spec = load_spec_file(tasks_root() / "clue_afqmc.yaml")
    assert isinstance(spec, ClassificationSpec)
    sink = _Sink()
    warnings: list[str] = []
    outcome = run(spec, load_backend("smollm2"), RunContext(warn=warnings.append), sink)
    assert outcome.n == 10 and outcome.info["data_origin"] == "demo"
    assert any("DEMO set" in w for w in warnings)
    for sample in sink.samples:
        lps = sample["choice_logprobs"]
        assert set(lps) == {"不同", "相同"} and all(math.isfinite(v) and v < 0 for v in lps.values())
        assert sample["prediction"] == max(lps, key=lambda w: lps[w])
    gold = [s["target_label"] for s in sink.samples]
    pred = [s["predicted_label"] for s in sink.samples]
    assert outcome.metrics["acc"] == pytest.approx(sum(g == p for g, p in zip(gold, pred)) / 10)
    assert outcome.metrics["mcc"] == pytest.approx(matthews_corrcoef(gold, pred))


def test_clue_jsonl_layout_under_the_data_dir(tmp_path: Path) -> None:
    folder = tmp_path / "clue" / "tnews_public"
    folder.mkdir(parents=True)
    records = ['{"label": "103", "label_desc": "news_sports", "sentence": "甲", "keywords": ""}',
               '{"label": "108", "label_desc": "news_edu", "sentence": "乙", "keywords": ""}',
               '{"label": "105", "label_desc": "none", "sentence": "丙", "keywords": ""}']
    (folder / "dev.json").write_text("\n".join(records) + "\n", encoding="utf-8")
    spec = load_spec_file(tasks_root() / "clue_tnews.yaml")
    assert isinstance(spec, ClassificationSpec)
    warnings: list[str] = []
    sink = _Sink()
    outcome = run(spec, FakeBackend(), RunContext(data_dir=tmp_path, warn=warnings.append), sink)
    assert outcome.n == 2 and outcome.info["data_origin"] == "local" and outcome.info["skipped_rows"] == 1
    assert [s["target"] for s in sink.samples] == ["体育", "教育"]
    assert [w for w in warnings if f"{folder / 'dev.json'}:3: label '105'" in w]
    assert all(len(s["choice_logprobs"]) == 15 for s in sink.samples)
