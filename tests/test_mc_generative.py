"""Generative multiple choice end to end with scripted backends: prompts, thinking, the extraction cascade,
the extractor model, --repeats, circular evaluation, metrics, and the flag errors."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from evalkit.backends._fake import FakeBackend, from_script
from evalkit.backends._protocol import ModelIdentity
from evalkit.errors import ConfigError
from evalkit.store import CachedBackend
from evalkit.tasks._mc_generative import (
    generative_info,
    generative_metrics,
    parse_mc_options,
    run_generative,
)
from evalkit.tasks.multiple_choice import Question
from evalkit.types import (
    Completion,
    Conversation,
    GenConfig,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    Usage,
)

QUESTIONS = [
    Question(0, "中国的首都是哪座城市？", ("上海", "北京", "广州", "深圳"), "B", {}),
    Question(1, "水的化学式是什么？", ("CO2", "O2", "H2O", "NaCl"), "C", {}),
    Question(2, "一年有几个季节？", ("两个", "三个", "四个", "五个"), "C", {}),
]
SHOTS = [
    Question(0, "1+1等于几？", ("1", "2", "3", "4"), "B", {"explanation": "1. 一加一等于二。"}),
    Question(1, "太阳从哪边升起？", ("东", "西", "南", "北"), "A", {"explanation": "1. 太阳从东方升起。"}),
]
HEADER = "以下是中国关于常识考试的单项选择题，请选出其中的正确答案。\n\n"


def _script(**replies: list[str]) -> FakeBackend:
    return from_script({"replies": [{"match": re.escape(k), "texts": v} for k, v in replies.items()]}, "scripted")


def _options(**args: str) -> Any:
    repeats = int(args.pop("repeats", "1"))
    return parse_mc_options(args, repeats=repeats, seed=int(args.pop("seed", "0")))


def test_generate_mode_reads_each_output_through_the_cascade() -> None:
    backend = _script(首都=["答案：B"], 化学式=["<think>O2? 不，是H2O。</think>The answer is (C)."], 季节=["我不知道。"])
    options = _options(mode="generate", max_tokens="64")  # the fake cuts replies at max_tokens characters
    records = run_generative(QUESTIONS, backend, options, subject="common", letters="ABCD", header=HEADER)
    assert [(r["prediction"], r["extraction_stage"], r["correct"]) for r in records] == [
        ("B", "strict", True), ("C", "lenient", True), (None, "none", False)]
    assert records[1]["thinking"] == "O2? 不，是H2O。" and records[1]["answer"] == "The answer is (C)."
    assert records[1]["response"].startswith("<think>") and records[1]["thinking_tokens"] > 0
    assert [r["id"] for r in records] == ["common/0", "common/1", "common/2"]
    assert records[0]["messages"][0]["content"].startswith(HEADER.strip())
    assert "答案：X" in records[0]["prompt"] and records[0]["prompt"].endswith("D. 深圳")
    assert generative_metrics(records) == {"unextractable_rate": pytest.approx(1 / 3)}
    info = generative_info(records, options)
    assert info["extraction_stages"] == {"strict": 1, "lenient": 1, "model": 0, "none": 1}
    assert info["mode"] == "generate" and info["max_tokens"] == 64 and info["seeds"] == [0]
    assert info["thinking"]["answers_with_thinking"] == 1 and info["thinking"]["truncated_in_thought"] == 0


def test_cot_prompt_uses_dev_explanations_and_zero_shot_without_them() -> None:
    backend = _script(**{"?": ["让我们一步一步思考。\n答案：B"]})
    few = run_generative(QUESTIONS[:1], backend, _options(mode="cot"), subject="s", letters="ABCD",
                         header=HEADER, shots=SHOTS)[0]["messages"]
    assert [m["role"] for m in few] == ["user", "assistant", "user", "assistant", "user"]
    assert "一步一步思考" in few[0]["content"] and few[0]["content"].startswith(HEADER.strip())
    assert few[1]["content"] == "让我们一步一步思考，\n1. 一加一等于二。\n答案：B"
    bare = [Question(s.doc_index, s.question, s.options, s.answer, {}) for s in SHOTS]
    zero = run_generative(QUESTIONS[:1], backend, _options(mode="cot"), subject="s", letters="ABCD",
                          header=HEADER, shots=bare)[0]["messages"]
    assert len(zero) == 1 and "一步一步思考" in zero[0]["content"]  # no explanations: 0-shot CoT
    answer_only = run_generative(QUESTIONS[:1], backend, _options(mode="generate"), subject="s", letters="ABCD",
                                 shots=bare)[0]["messages"]
    assert [m["content"] for m in answer_only if m["role"] == "assistant"] == ["答案：B", "答案：A"]


@dataclass
class Recorder:
    """Wraps a backend and keeps every GenConfig it was asked with."""

    inner: Any
    configs: list[GenConfig] = field(default_factory=list)

    @property
    def identity(self) -> ModelIdentity:
        return self.inner.identity

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        raise NotImplementedError

    def loglikelihood_rolling(self, texts: Sequence[str], *, stride: int | None = None) -> list[Any]:
        raise NotImplementedError

    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        self.configs.append(config)
        return self.inner.generate(conversations, config)


def test_repeats_use_distinct_recorded_seeds_and_give_k_sample_metrics(tmp_path: Path) -> None:
    fake = _script(首都=["答案：B", "答案：A", "答案：B"], 化学式=["答案：A", "答案：D", "答案：C"],
                   季节=["答案：D", "答案：C", "答案：D"])
    cached = CachedBackend(fake, tmp_path / "cache.sqlite")
    backend = Recorder(cached)
    options = _options(mode="generate", repeats="3", seed="10")
    records = run_generative(QUESTIONS, backend, options, subject="s", letters="ABCD")
    assert [c.seed for c in backend.configs] == [10, 11, 12]
    assert {c.temperature for c in backend.configs} == {0.7}  # sampling default when K > 1
    first = records[0]
    assert [s["seed"] for s in first["samples"]] == [10, 11, 12]
    # the fake picks texts[seed % 3]: seeds 10, 11, 12 -> texts 1, 2, 0
    assert [s["prediction"] for s in first["samples"]] == ["A", "B", "B"]
    assert first["prediction"] == "A" and first["maj_prediction"] == "B" and first["correct_count"] == 2
    metrics = generative_metrics(records)
    assert metrics["maj@3"] == pytest.approx(1 / 3)  # q0 B right; q1 D,C,A -> D wrong; q2 C,D,D -> D wrong
    assert metrics["pass@3"] == pytest.approx(1.0) and metrics["mean@3"] == pytest.approx(4 / 9)
    assert generative_info(records, options)["seeds"] == [10, 11, 12]
    cached.close()
    calls = fake.calls["generate"]
    resumed = CachedBackend(fake, tmp_path / "cache.sqlite")  # a resumed run: every sample index is cached
    assert run_generative(QUESTIONS, resumed, options, subject="s", letters="ABCD") == records
    assert fake.calls["generate"] == calls
    resumed.close()


class OptionReader(FakeBackend):
    """Answers with the letter of the option whose text is in `favourite` (or always `fixed`)."""

    def __init__(self, favourite: set[str], fixed: str | None = None) -> None:
        super().__init__(name="reader")
        self.favourite, self.fixed = favourite, fixed

    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        out = []
        for conv in conversations:
            lines = conv[-1].content.splitlines()
            picked = self.fixed or next(line[0] for line in lines if line[3:] in self.favourite)
            out.append(Completion((f"答案：{picked}",), Usage(1, 1), ("stop",)))
        return out


def test_circular_needs_every_rotation_right() -> None:
    options = _options(mode="generate", circular="true")
    knows = run_generative(QUESTIONS, OptionReader({"北京", "H2O", "四个"}), options, subject="s", letters="ABCD")
    assert [len(r["circular"]) for r in knows] == [4, 4, 4]
    assert [t["target"] for t in knows[0]["circular"]] == ["B", "A", "D", "C"]
    assert generative_metrics(knows)["acc_circular"] == 1.0
    biased = run_generative(QUESTIONS, OptionReader(set(), fixed="C"), options, subject="s", letters="ABCD")
    assert [r["correct"] for r in biased] == [False, True, True]  # right in the original order twice ...
    assert generative_metrics(biased)["acc_circular"] == 0.0  # ... but never under every rotation
    info = generative_info(biased, options)
    assert info["extraction_stages"]["strict"] == 3 and info["extraction_stages_all"]["strict"] == 12


def test_extractor_model_reads_what_the_patterns_cannot() -> None:
    backend = _script(首都=["首都当然是北京"], 化学式=["答案：C"], 季节=["四季分明"])
    # the extractor answers only when it is shown the question with its options and the answer to classify
    extractor = from_script({"replies": [
        {"match": "(?s)首都是哪座城市.*B. 北京.*Answer to classify.*北京", "texts": ["B"]},
        {"match": "(?s)一年有几个季节.*C. 四个.*Answer to classify.*四季分明", "texts": ["C"]}]}, "judge-lite")
    records = run_generative(QUESTIONS, backend, _options(mode="generate", extractor="fake:x"), subject="s",
                             letters="ABCD", extractor=extractor)
    assert [(r["prediction"], r["extraction_stage"], r["correct"]) for r in records] == [
        ("B", "model", True), ("C", "strict", True), ("C", "model", True)]
    assert records[0]["extraction_pattern"] == "model:judge-lite"
    assert extractor.calls["generate"] == 2  # only the two answers the patterns could not read


class Reasoner(FakeBackend):
    """A reasoning server: thought apart (reasoning_content) or an unclosed <think> cut off by max_tokens."""

    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        out = []
        for conv in conversations:
            if "首都" in conv[-1].content:
                out.append(Completion(("答案：B",), Usage(1, 1), ("stop",), reasoning=("上海不是首都，答案是A吗？不。",)))
            else:
                out.append(Completion(("<think>先看A选项，A是",), Usage(1, 9), ("length",)))
        return out


def test_reasoning_content_and_thoughts_cut_off_by_max_tokens() -> None:
    options = _options(mode="cot", max_tokens="9")
    records = run_generative(QUESTIONS, Reasoner(), options, subject="s", letters="ABCD", tokenizer=FakeBackend())
    assert records[0]["thinking"] == "上海不是首都，答案是A吗？不。" and records[0]["prediction"] == "B"
    assert records[0]["thinking_tokens"] == len("上海不是首都，答案是A吗？不。")  # exact with a tokenizer
    assert [r["truncated_in_thought"] for r in records] == [False, True, True]
    assert records[1]["prediction"] is None and records[1]["answer"] == ""
    assert records[1]["finish_reason"] == "length"
    thinking = generative_info(records, options)["thinking"]
    assert thinking["truncated_in_thought"] == 2 and thinking["truncated_in_thought_rate"] == pytest.approx(2 / 3)
    assert generative_info(records, options)["max_tokens"] == 9


@pytest.mark.parametrize(("args", "repeats", "message"), [
    ({"mode": "chat"}, None, r"--task-args mode=chat: unknown mode; use loglikelihood, generate or cot"),
    ({"mode": "cot"}, 0, r"--repeats 0: samples per question must be at least 1"),
    ({"mode": "loglikelihood"}, 4, r"--repeats 4: loglikelihood mode is deterministic; add --task-args mode="),
    ({"mode": "loglikelihood", "extractor": "smollm2"}, None, r"--task-args extractor: only applies to mode="),
    ({"mode": "cot", "max_tokens": "lots"}, None, r"--task-args max_tokens=lots: must be an integer >= 1"),
    ({"mode": "cot", "temperature": "-1"}, None, r"--task-args temperature=-1: must be a number in \[0, 2\]"),
    ({"circular": "maybe"}, None, r"--task-args circular=maybe: use true or false"),
    ({"language": "fr"}, None, r"--task-args language=fr: use zh or en"),
])
def test_flag_errors_are_one_line(args: dict[str, str], repeats: int | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        parse_mc_options(args, repeats=repeats)
    assert "\n" not in str(err.value)


def test_defaults_and_circular_on_non_letter_options() -> None:
    auto = parse_mc_options({})
    assert auto.mode is None and auto.resolved("generate").generation_tokens == 32
    assert parse_mc_options({"mode": "cot"}).generation_tokens == 1024
    assert parse_mc_options({"mode": "cot", "max_tokens": "8192"}).generation_tokens == 8192
    assert parse_mc_options({"mode": "generate"}).temperature == 0.0
    options = _options(mode="generate", circular="true")
    with pytest.raises(ConfigError, match=r"--task-args circular=true: fineval's options are labelled 1/2/3/4"):
        run_generative(QUESTIONS, FakeBackend(), options, subject="s", letters=["1", "2", "3", "4"], task="fineval")
    with pytest.raises(ConfigError, match="generate or cot only"):
        run_generative(QUESTIONS, FakeBackend(), parse_mc_options({"mode": "loglikelihood"}), subject="s",
                       letters="ABCD")


class ContentExtractor(FakeBackend):
    """An extractor that maps an answer naming an option's text to that option's letter as shown."""

    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        out = []
        for conv in conversations:
            prompt = conv[-1].content
            answer = prompt.split("Answer to classify:")[1]
            shown = [line for line in prompt.splitlines() if re.match(r"^[A-D]\. ", line)]
            letter = next((line[0] for line in shown if line[3:] in answer), "NONE")
            out.append(Completion((letter,), Usage(1, 1), ("stop",)))
        return out


def test_extractor_sees_the_options_in_the_rotated_order() -> None:
    backend = _script(首都=["首都是北京"], 化学式=["水是H2O"], 季节=["有四个"])
    options = _options(mode="generate", circular="true", extractor="fake:x")
    records = run_generative(QUESTIONS, backend, options, subject="s", letters="ABCD", extractor=ContentExtractor())
    assert [[t["prediction"] for t in r["circular"]] for r in records] == [
        ["B", "A", "D", "C"], ["C", "B", "A", "D"], ["C", "B", "A", "D"]]
    assert generative_metrics(records)["acc_circular"] == 1.0
    assert generative_info(records, options)["extraction_stages_all"]["model"] == 12
