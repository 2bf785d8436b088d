"""`--repeats K` for LongBench (v1 and v2): K seeded samples per record, their scores, the @K metrics, caching.

The scripted backend answers by seed (`texts[seed % len]`), so the K samples differ and each is known in advance:
`_by_seed` lays a script out so that sample k (seed `SEED + k`) gets `script[k]`.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from evalkit.backends._fake import FakeBackend
from evalkit.metrics import _longbench as lb
from evalkit.runner import RunOptions, execute
from evalkit.tasks._kind import RunContext
from evalkit.tasks._spec import load_spec_file
from evalkit.tasks.longcontext import LongContextSpec, run
from evalkit.types import Completion, Conversation, GenConfig

ROOT = Path(__file__).resolve().parents[1]
SEED = 7
V1_TASKS = "longbench:trec,multifieldqa_en,multifieldqa_zh"
# what sample k answers, per record (a regex of its prompt)
V1_SCRIPT = {
    r"When was the lighthouse first lit": ["Date", "City", "Date\nQuestion: x"],
    r"Which country is the Vell": ["City", "Country", "Country"],
    r"In which year was the Harrowgate light automated": ["It was automated in 1989.", "1989", "in 1990"],
    r"Which frost protection lost the least": ["Straw.", "fleece covers", "Fleece covers!"],
    r"青石桥一共有几个桥孔": ["七个桥孔", "大约七个", "七个桥孔。"],
    r"云岭茶场": ["不知道", "二〇一五年", "不知道"],
}
TREC_CLASSES = json.loads((ROOT / "tasks" / "demo" / "longbench" / "trec.jsonl").read_text(encoding="utf-8")
                          .splitlines()[0])["all_classes"]
V2_SCRIPT = {
    r"Why was the Harrowgate tower": ["The correct answer is (B)", "The correct answer is (A)",
                                      "The correct answer is (B)"],
    r"sprinklers": ["I am unsure.", "The correct answer is (C)", "The correct answer is (D)"],
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@dataclass
class _Recording(FakeBackend):
    """The scripted fake, noting (seed, temperature, max_tokens) of every request it serves."""

    seen: list[tuple[int | None, float, int]] = field(default_factory=list)

    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        self.seen.extend((config.seed, config.temperature, config.max_tokens) for _ in conversations)
        return super().generate(conversations, config)


def _spec(name: str) -> LongContextSpec:
    spec = load_spec_file(ROOT / "tasks" / f"{name}.yaml")
    assert isinstance(spec, LongContextSpec)
    return spec


def _by_seed(script: list[str]) -> list[str]:
    texts = [""] * len(script)
    for k, text in enumerate(script):
        texts[(SEED + k) % len(script)] = text
    return texts


def _backend(script: dict[str, list[str]]) -> _Recording:
    return _Recording(name="scripted", max_length=8192,
                      replies=[(re.compile(p), _by_seed(texts)) for p, texts in script.items()])


def _execute(backend: FakeBackend, tasks: str, out: Path, repeats: int | None) -> tuple[dict[str, Any], list[dict]]:
    path = execute(RunOptions(model=backend, tasks=tasks, output=out, repeats=repeats, seed=SEED,
                              task_args={"source": "demo"}, quiet=True))
    name = tasks.split(":")[0]
    task = json.loads((Path(path) / "results.json").read_text(encoding="utf-8"))["tasks"][name]
    lines = (Path(path) / "samples" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return task, [json.loads(line) for line in lines]


def _vote(dataset: str, prediction: str) -> str | None:
    """By hand: the scored line, normalised as LongBench's QA F1 does."""
    line = prediction.lstrip("\n").split("\n")[0] if dataset in lb.FIRST_LINE_DATASETS else prediction
    text = lb.normalize_zh(line) if dataset.endswith("_zh") else lb.normalize_en(line)
    return text or None


def _majority_score(scores: list[float], votes: list[str | None]) -> float:
    counts = Counter(v for v in votes if v is not None)
    if not counts:
        return 0.0
    top = max(counts.values())
    return scores[next(i for i, v in enumerate(votes) if v is not None and counts[v] == top)]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


# ---- v1 ----------------------------------------------------------------------------------------------------

def _unscaled(table: dict[str, float]) -> dict[str, float]:
    """LongBench v1's `score_<stat>@K` (0-100, like `score`) as bare `<stat>@K` on the 0-1 scale of the scores."""
    return {key.removeprefix("score_"): value / 100 for key, value in table.items()
            if key.startswith("score_") and "@" in key}


def test_v1_samples_seeds_scores_and_k_metrics(tmp_path: Path) -> None:
    backend = _backend(V1_SCRIPT)
    task, rows = _execute(backend, V1_TASKS, tmp_path, repeats=3)
    info = task["info"]
    assert (info["repeats"], info["seeds"], info["temperature"]) == (3, [7, 8, 9], 0.7)
    # every record was asked once per seed, sampling at 0.7
    assert Counter((s, t) for s, t, _ in backend.seen) == {(7, 0.7): 6, (8, 0.7): 6, (9, 0.7): 6}
    per_dataset: dict[str, dict[str, float]] = {}
    for name in ("trec", "multifieldqa_en", "multifieldqa_zh"):
        records = [r for r in rows if r["subset"] == name]
        assert len(records) == 2
        scores, votes = [], []
        for r in records:
            assert [s["seed"] for s in r["samples"]] == [7, 8, 9]
            script = next(t for p, t in V1_SCRIPT.items() if re.search(p, r["prompt"]))
            assert [s["prediction"] for s in r["samples"]] == script
            assert (r["prediction"], r["score"]) == (script[0], r["samples"][0]["score"])
            for s in r["samples"]:
                assert s["score"] == lb.score_item(name, s["prediction"], r["target"],
                                                   TREC_CLASSES if name == "trec" else None)
            scores.append([s["score"] for s in r["samples"]])
            votes.append([_vote(name, s["prediction"]) for s in r["samples"]])
        got = _unscaled(task["subtasks"][name])
        assert task["subtasks"][name]["score"] == lb.dataset_score([s[0] for s in scores])  # the headline is sample 0's
        assert got["mean@3"] == pytest.approx(_mean([_mean(s) for s in scores]))
        assert got["maj@3"] == pytest.approx(_mean([_majority_score(s, v) for s, v in zip(scores, votes)]))
        binary = all(x in (0.0, 1.0) for s in scores for x in s)  # trec's are; the English F1s are not
        best = "pass@3" if binary else "best@3"
        assert got[best] == pytest.approx(_mean([max(s) for s in scores]))
        assert ("best@3" in got) == (not binary) and binary == (name == "trec")
        per_dataset[name] = {"mean@3": got["mean@3"], "best@3": got[best], "maj@3": got["maj@3"]}
    trec = _unscaled(task["subtasks"]["trec"])
    assert (trec["pass@3"], trec["pass@1"], trec["maj@3"]) == (1.0, pytest.approx(2 / 3), 1.0)
    # English: votes "it was automated in 1989" / "1989" / "in 1990" tie -> sample 0 (F1 1/3); then "fleece covers"
    assert _unscaled(task["subtasks"]["multifieldqa_en"])["maj@3"] == pytest.approx((1 / 3 + 1) / 2)
    # the task mirrors 'score' (mean of category means): few_shot = trec, single_doc_qa = mean of the two QA sets
    for metric in ("mean@3", "best@3", "maj@3"):
        single = _mean([per_dataset["multifieldqa_en"][metric], per_dataset["multifieldqa_zh"][metric]])
        assert _unscaled(task["groups"]["single_doc_qa"])[metric] == pytest.approx(single)
        assert _unscaled(task["metrics"])[metric] == pytest.approx(_mean([per_dataset["trec"][metric], single]))
    se = [_unscaled(task["subtasks"][n])["mean@3_stderr"] for n in ("multifieldqa_en", "multifieldqa_zh")]
    assert _unscaled(task["groups"]["single_doc_qa"])["mean@3_stderr"] == pytest.approx(
        math.sqrt(se[0] ** 2 + se[1] ** 2) / 2)


def test_v1_headline_equals_the_single_sample_run(tmp_path: Path) -> None:
    one, rows_one = _execute(_backend(V1_SCRIPT), V1_TASKS, tmp_path / "one", repeats=None)
    three, _ = _execute(_backend(V1_SCRIPT), V1_TASKS, tmp_path / "three", repeats=3)
    # the scripted backend answers by seed alone, so sample 0 (seed 7, sampled) says what the greedy run says
    assert {n: s["score"] for n, s in three["subtasks"].items()} == {n: s["score"] for n, s in one["subtasks"].items()}
    assert three["metrics"]["score"] == one["metrics"]["score"]
    assert {g: v["score"] for g, v in three["groups"].items()} == {g: v["score"] for g, v in one["groups"].items()}
    # K = 1 stays as it was: no samples, no @K metrics, no repeat facts, greedy
    assert not any("samples" in r for r in rows_one)
    assert not any("@" in k for k in one["metrics"]) and "repeats" not in one["info"]
    assert one["info"]["decoding"] == "greedy"


def test_v1_rerun_is_cached_and_a_larger_k_computes_only_the_new_sample(tmp_path: Path) -> None:
    backend = _backend(V1_SCRIPT)
    _, rows_two = _execute(backend, V1_TASKS, tmp_path, repeats=2)
    assert backend.calls["generate"] == 12 and {s for s, _, _ in backend.seen} == {7, 8}
    _execute(backend, V1_TASKS, tmp_path, repeats=2)
    assert backend.calls["generate"] == 12  # every sample from the cache
    backend.seen.clear()
    task, rows_three = _execute(backend, V1_TASKS, tmp_path, repeats=3)
    assert backend.calls["generate"] == 18 and {s for s, _, _ in backend.seen} == {9}
    assert [r["samples"][:2] for r in rows_three] == [r["samples"] for r in rows_two]
    assert "score_mean@3" in task["metrics"]


def test_k1_and_no_repeats_run_identically() -> None:
    spec = _spec("longbench")
    outcomes, sinks, seen = [], [], []
    for repeats in (None, 1):
        backend = _backend(V1_SCRIPT)
        rows: list[dict[str, Any]] = []

        class Sink:
            def write(self, samples: Sequence[dict[str, Any]], rows: list[dict[str, Any]] = rows) -> None:
                rows.extend(samples)

        ctx = RunContext(seed=SEED, repeats=repeats, task_args={"source": "demo"}, subsets=("trec", "hotpotqa"))
        outcomes.append(run(spec, backend, ctx, Sink()))
        sinks.append(rows)
        seen.append(backend.seen)
    assert outcomes[0] == outcomes[1] and sinks[0] == sinks[1] and seen[0] == seen[1]
    assert {(s, t) for s, t, _ in seen[0]} == {(SEED, 0.0)}


# ---- v2 ----------------------------------------------------------------------------------------------------

def test_v2_samples_letters_and_k_metrics(tmp_path: Path) -> None:
    backend = _backend(V2_SCRIPT)
    task, rows = _execute(backend, "longbench_v2", tmp_path, repeats=3)
    assert (task["info"]["repeats"], task["info"]["seeds"], task["info"]["temperature"]) == (3, [7, 8, 9], 0.7)
    assert Counter((s, t) for s, t, _ in backend.seen) == {(7, 0.7): 2, (8, 0.7): 2, (9, 0.7): 2}
    assert [[s["extracted"] for s in r["samples"]] for r in rows] == [["B", "A", "B"], [None, "C", "D"]]
    assert [[s["correct"] for s in r["samples"]] for r in rows] == [[True, False, True], [False, True, False]]
    assert [r["extracted"] for r in rows] == ["B", None] and task["metrics"]["acc"] == 0.5  # sample 0's
    # by hand: question 1 majority B (right), question 2 C and D tie -> C (right, given first)
    assert task["metrics"]["maj@3"] == 1.0 and task["metrics"]["pass@3"] == 1.0
    assert task["metrics"]["mean@3"] == pytest.approx((2 / 3 + 1 / 3) / 2) == task["metrics"]["pass@1"]
    assert task["groups"]["easy"]["mean@3"] == pytest.approx(2 / 3) and task["groups"]["hard"]["maj@3"] == 1.0
    assert task["subtasks"]["Single-Document QA"]["pass@3"] == 1.0
    calls = backend.calls["generate"]
    _execute(backend, "longbench_v2", tmp_path, repeats=3)
    assert backend.calls["generate"] == calls  # a rerun is answered by the cache


def test_v2_cot_both_passes_use_the_sample_seed() -> None:
    spec = _spec("longbench_v2")
    backend = _backend({r".": ["The correct answer is (B)"] * 2})
    rows: list[dict[str, Any]] = []

    class Sink:
        def write(self, samples: Sequence[dict[str, Any]]) -> None:
            rows.extend(samples)

    ctx = RunContext(seed=SEED, repeats=2, task_args={"source": "demo", "mode": "cot"})
    out = run(spec, backend, ctx, Sink())
    # per sample: the reasoning pass (1024 tokens) then the answer pass (128), both with the sample's seed
    assert backend.seen == [(7, 0.7, 1024)] * 2 + [(7, 0.7, 128)] * 2 + [(8, 0.7, 1024)] * 2 + [(8, 0.7, 128)] * 2
    assert [s["seed"] for s in rows[0]["samples"]] == [7, 8] and "reasoning" in rows[0]["samples"][0]
    assert out.metrics["mean@2"] == out.metrics["acc"]
