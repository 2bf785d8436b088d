"""The longcontext task kind: truncation on exact token counts, budgets, raw vs chat, end-to-end runs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from evalkit.backends._fake import FakeBackend
from evalkit.backends._protocol import ModelIdentity
from evalkit.errors import ConfigError, DataError
from evalkit.metrics import _longbench as lb
from evalkit.tasks._kind import RunContext
from evalkit.tasks._longbench_prompt import (
    budget_for,
    chat_overhead,
    extract_choice,
    middle_truncate,
    truncate_prompt,
)
from evalkit.tasks._spec import load_spec_file
from evalkit.tasks.longcontext import LongContextSpec, run
from evalkit.types import Completion, Conversation, GenConfig

ROOT = Path(__file__).resolve().parents[1]
LOCAL = ("multi_news", "multifieldqa_zh", "passage_retrieval_zh")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # unit tests never touch the network


class Sink:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def write(self, samples: Sequence[dict[str, Any]]) -> None:
        self.rows.extend(samples)


def _spec(name: str) -> LongContextSpec:
    spec = load_spec_file(ROOT / "tasks" / f"{name}.yaml")
    assert isinstance(spec, LongContextSpec)
    return spec


def _run(name: str, backend: Any, **ctx_args: Any) -> tuple[Any, Sink, list[str]]:
    warnings: list[str] = []
    sink = Sink()
    ctx = RunContext(warn=warnings.append, **ctx_args)
    return run(_spec(name), backend, ctx, sink), sink, warnings


# ---- truncation on exact token counts (the fake tokenizer is one token per character) --------------------

def test_middle_truncate_keeps_half_and_half() -> None:
    assert middle_truncate(list(range(10)), 10) == (list(range(10)), [])
    assert middle_truncate(list(range(10)), 6) == ([0, 1, 2], [7, 8, 9])
    # odd budget: v1 keeps budget-1 tokens (int(b/2) each side), v2 gives the tail the extra token
    assert middle_truncate(list(range(10)), 5) == ([0, 1], [8, 9])
    assert middle_truncate(list(range(10)), 5, style="v2") == ([0, 1], [7, 8, 9])
    with pytest.raises(ConfigError, match="max_length"):
        middle_truncate(list(range(10)), 1)


def test_truncate_prompt_on_exact_counts() -> None:
    fake = FakeBackend()
    t = truncate_prompt("abcdefghij", fake, 6)
    assert (t.text, t.prompt_tokens, t.kept_tokens, t.truncated) == ("abchij", 10, 6, True)
    t = truncate_prompt("abcdefghij", fake, 7)
    assert (t.text, t.kept_tokens) == ("abchij", 6)
    t = truncate_prompt("abcdefghij", fake, 7, style="v2")
    assert (t.text, t.kept_tokens) == ("abcghij", 7)
    t = truncate_prompt("abcdefghij", fake, 10)
    assert (t.text, t.truncated) == ("abcdefghij", False)
    assert truncate_prompt("abc", None, 2).text == "abc"  # no tokenizer: sent whole


class _Named(FakeBackend):
    @property
    def identity(self) -> ModelIdentity:
        return ModelIdentity("fake", "org/llama2-7b-chat-4k")


def test_budget_rules() -> None:
    fake = FakeBackend(max_length=100)
    assert chat_overhead(fake) == len("<|user|>\n\n<|assistant|>\n") == 24
    assert budget_for(fake, max_new_tokens=10, task_args={}, model_table={}, uses_chat=True)[0] == 100 - 10 - 24 - 16
    assert budget_for(fake, max_new_tokens=10, task_args={}, model_table={}, uses_chat=False)[0] == 100 - 10 - 16
    assert budget_for(fake, max_new_tokens=10, task_args={"max_length": "40"}, model_table={},
                      uses_chat=True) == (40, "task-args max_length")
    assert budget_for(_Named(max_length=100), max_new_tokens=10, task_args={},
                      model_table={"llama2-7b-chat-4k": 3500}, uses_chat=True)[0] == 3500
    with pytest.raises(ConfigError):
        budget_for(fake, max_new_tokens=99, task_args={}, model_table={}, uses_chat=True)
    with pytest.raises(ConfigError):
        budget_for(fake, max_new_tokens=1, task_args={"max_length": "x"}, model_table={}, uses_chat=True)


def test_v2_answer_extraction() -> None:
    assert extract_choice("The correct answer is (A).") == "A"
    assert extract_choice("**The correct answer is D**") == "D"
    assert extract_choice("The correct answer is (E)") is None
    assert extract_choice("the correct answer is (B)") is None  # case-sensitive, as the official regex
    assert extract_choice("Answer: (C)") is None


# ---- end to end on the three real local datasets (fake echo backend, --limit 2) --------------------------

def test_local_datasets_end_to_end(data_dir: Path) -> None:
    out, sink, warnings = _run("longbench", FakeBackend(max_length=4096), data_dir=data_dir, limit=2,
                               task_args={"max_length": "500", "full_prompts": "true"})
    assert out.n == 6 and set(out.subtasks) == set(LOCAL)
    missing = [w for w in warnings if "not found" in w]
    assert len(missing) == 18 and all(w.count("\n") == 0 for w in missing)
    assert set(out.info["missing"]) == set(lb.LONGBENCH_DATASETS) - set(LOCAL)
    assert out.info["config_sources"]["prompts"].endswith("dataset2prompt.json")
    assert [s["doc_index"] for s in sink.rows if s["subset"] == "multi_news"] == [0, 1]
    for s in sink.rows:
        assert {"id", "subset", "doc_index", "prompt", "target", "prediction", "score", "length"} <= set(s)
        assert s["score"] == lb.score_item(s["subset"], s["prediction"], s["target"])
        # real records are far longer than 500 tokens: exactly 500 kept, head and tail of the filled template
        assert s["truncated"] and s["kept_tokens"] == 500 and len(s["prompt"]) == 500
        assert s["prompt_tokens"] > 500
    zh = [s for s in sink.rows if s["subset"] == "multifieldqa_zh"]
    assert zh[0]["prompt"].startswith("阅读以下文字并用中文简短回答") and zh[0]["prompt"].endswith("回答：")
    for name in LOCAL:
        scores = [s["score"] for s in sink.rows if s["subset"] == name]
        assert out.subtasks[name]["score"] == lb.dataset_score(scores)
    cats = lb.category_scores({n: out.subtasks[n]["score"] for n in LOCAL})
    assert {k: v["score"] for k, v in out.groups.items()} == cats
    assert out.metrics["score"] == lb.overall_score(cats.values())


def test_subset_selection_and_errors(data_dir: Path) -> None:
    out, sink, warnings = _run("longbench", FakeBackend(max_length=4096), data_dir=data_dir, limit=1,
                               subsets=("passage_retrieval_zh",))
    assert list(out.subtasks) == ["passage_retrieval_zh"] and out.n == 1 and not warnings
    assert len(sink.rows[0]["prompt"]) < 2100  # shortened in the samples file, with a marker
    assert "characters omitted" in sink.rows[0]["prompt"]
    with pytest.raises(ConfigError, match="longbench:nope"):
        _run("longbench", FakeBackend(), data_dir=data_dir, subsets=("nope",))
    with pytest.raises(DataError, match="none of its datasets"):
        _run("longbench", FakeBackend(), data_dir=data_dir, subsets=("trec",), task_args={"source": "local"})


# ---- raw completion vs chat, first-line scoring, demo set ------------------------------------------------

def _scripted(rules: list[tuple[str, str]], max_length: int = 8192) -> FakeBackend:
    return FakeBackend(name="scripted", replies=[(re.compile(p, re.DOTALL), [t]) for p, t in rules],
                       max_length=max_length)


class _ChatOnly:
    """A backend with a tokenizer but neither raw completion nor chat rendering."""

    def __init__(self, inner: FakeBackend) -> None:
        self.inner, self.max_length = inner, inner.max_length

    @property
    def identity(self) -> ModelIdentity:
        return self.inner.identity

    def encode(self, text: str) -> list[int]:
        return self.inner.encode(text)

    def decode(self, tokens: Sequence[int]) -> str:
        return self.inner.decode(tokens)

    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        return self.inner.generate(conversations, config)


def test_demo_set_raw_completion_and_first_line() -> None:
    backend = _scripted([
        (r"When was the lighthouse first lit", "Date\nQuestion: What else ?"),
        (r"Which country is the Vell", "City"),
        (r"def moving_average", "```python\n        out.append(total / window)\n```"),
        (r"In which year was the Harrowgate", "It was automated in 1989."),
        (r"青石桥一共有几个桥孔", "七个桥孔"),
    ])
    out, sink, warnings = _run("longbench", backend, data_dir=None, task_args={"source": "demo"})
    assert any("DEMO" in w for w in warnings)
    assert {r["origin"] for r in out.info["data"].values()} == {"demo"}
    assert out.info["no_chat_template"] == ["lcc", "trec"]
    by_id = {s["id"]: s for s in sink.rows}
    assert by_id["trec/demo-trec-0"]["score"] == 1.0  # first line only: "Date"
    assert by_id["trec/demo-trec-1"]["score"] == 0.0
    assert out.subtasks["trec"]["score"] == 50.0
    assert out.subtasks["lcc"]["score"] == 100.0  # fence lines skipped
    assert by_id["multifieldqa_zh/demo-multifieldqa_zh-0"]["score"] == 1.0
    assert by_id["multifieldqa_en/demo-multifieldqa_en-0"]["score"] == pytest.approx(1 / 3)  # P=1/5, R=1
    assert not by_id["trec/demo-trec-0"]["chat_template"] and by_id["lcc/demo-lcc-0"]["prompt"].startswith(
        "Complete the code below.")  # fallback prompts: no config in the demo run


def test_chat_fallback_when_backend_cannot_complete() -> None:
    out, sink, _ = _run("longbench", _ChatOnly(FakeBackend(max_length=8192)), data_dir=None,
                        task_args={"source": "demo"}, subsets=("trec", "lcc"))
    assert out.info["no_chat_template"] == [] and out.info["chat_instead_of_raw"] == ["lcc", "trec"]
    assert all(s["chat_template"] for s in sink.rows)


def test_longbench_e_buckets_on_demo() -> None:
    out, _sink, _ = _run("longbench_e", FakeBackend(max_length=8192), data_dir=None, task_args={"source": "demo"})
    assert set(out.subtasks) <= set(lb.LONGBENCH_E_DATASETS)
    assert all("score_0-4k" in v for v in out.subtasks.values())  # demo contexts are all under 4k words
    assert "score_0-4k" in out.metrics and "score_8k+" not in out.metrics


def test_longbench_v2_on_demo() -> None:
    backend = _scripted([(r"Why was the Harrowgate tower", "**The correct answer is (B)**"),
                         (r"sprinklers", "I am unsure.")])
    out, sink, _ = _run("longbench_v2", backend, data_dir=None, task_args={"source": "demo"})
    assert out.n == 2 and out.metrics["acc"] == 0.5
    assert out.metrics["acc_easy"] == 1.0 and out.metrics["acc_hard"] == 0.0
    assert out.groups["short"]["acc"] == 1.0 and out.groups["medium"]["acc"] == 0.0
    assert out.info["unextracted_answers"] == 1
    assert [s["extracted"] for s in sink.rows] == ["B", None]


def test_longbench_v2_truncates_v2_style_with_official_templates(data_dir: Path) -> None:
    out, sink, _ = _run("longbench_v2", FakeBackend(max_length=8192), data_dir=data_dir,
                        task_args={"source": "demo", "max_length": "301", "full_prompts": "true"})
    assert out.info["templates"].endswith("v2_prompts")
    for s in sink.rows:
        assert s["truncated"] and s["kept_tokens"] == 301 and len(s["prompt"]) == 301
        assert s["prompt"].startswith("Please read the following text")
        assert s["prompt"].endswith('"The correct answer is (insert answer here)".')


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="not a LongBench dataset"):
        LongContextSpec(name="x", kind="longcontext", datasets=["nope"])
    with pytest.raises(ValueError, match="fallback"):
        LongContextSpec(name="x", kind="longcontext", datasets=["trec"], prompts={"trec": "{context}"})
    assert _spec("longbench").subset_names() == list(lb.LONGBENCH_DATASETS)
    assert _spec("longbench_e").subset_names() == list(lb.LONGBENCH_E_DATASETS)
    assert _spec("longbench_v2").subset_names() == []


def test_fallback_prompts_have_the_official_structure() -> None:
    spec = _spec("longbench")
    for name in lb.LONGBENCH_DATASETS:
        fields = set(re.findall(r"\{(\w+)\}", spec.prompts[name]))
        assert fields <= {"context", "input"} and "context" in fields, name
    v2 = _spec("longbench_v2").v2_templates
    assert all("$Q$" in t and "$C_D$" in t for t in v2.values())
    assert "The correct answer is" in v2["0shot"] and "$COT$" in v2["0shot_cot_ans"]


def test_max_new_tokens_cap_is_applied_and_recorded() -> None:
    out, sink, _ = _run("longbench", FakeBackend(max_length=8192), data_dir=None,
                        task_args={"source": "demo", "max_new_tokens": "5"}, subsets=("multifieldqa_en", "lcc"))
    assert out.info["max_new_tokens"] == {"multifieldqa_en": 5, "lcc": 5}
    assert all(len(s["prediction"]) <= 5 for s in sink.rows)  # the echo backend returns max_tokens characters
    with pytest.raises(ConfigError, match="max_new_tokens"):
        _run("longbench", FakeBackend(), data_dir=None, task_args={"source": "demo", "max_new_tokens": "0"})


def test_backend_without_tokenizer_sends_prompts_whole() -> None:
    class _NoTokenizer:
        def __init__(self) -> None:
            self.inner = FakeBackend(max_length=64)

        @property
        def identity(self) -> ModelIdentity:
            return self.inner.identity

        def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
            return self.inner.generate(conversations, config)

    out, sink, _ = _run("longbench", _NoTokenizer(), data_dir=None,
                        task_args={"source": "demo", "max_length": "10"}, subsets=("hotpotqa",))
    assert out.info["prompt_budget"]["hotpotqa"] == {"tokens": None,
                                                     "rule": "backend has no tokenizer: prompts not truncated"}
    assert not sink.rows[0]["truncated"] and sink.rows[0]["prompt_tokens"] == 0
