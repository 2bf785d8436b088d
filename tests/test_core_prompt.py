"""Few-shot prompt construction (exact strings) and bad-row handling of the multiple-choice kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _sinks import ListSink as _Sink

from evalkit.backends._fake import FakeBackend
from evalkit.tasks._kind import RunContext
from evalkit.tasks._registry import load_task
from evalkit.tasks._spec import validate_spec
from evalkit.tasks.multiple_choice import Question, build_prompt, run

DATA = Path(__file__).parent / "data" / "core"


def _q(i: int, question: str, answer: str) -> Question:
    return Question(i, question, ("甲", "乙", "丙", "丁"), answer, {})


def test_cmmlu_lmeval_style_is_byte_identical_to_lmeval_layout() -> None:
    spec = load_task("cmmlu")
    style = spec.prompt_styles["lmeval"]  # type: ignore[attr-defined]
    prompt = build_prompt(spec, style, "agronomy", [_q(0, " 例题一 ", "B"), _q(1, "例题二", "D")],  # type: ignore[arg-type]
                          _q(2, "问题\n", "A"))
    assert prompt == (
        "以下是关于农学的单项选择题，请直接给出正确答案的选项。\n\n"
        "例题一\nA. 甲\nB. 乙\nC. 丙\nD. 丁\n答案： B\n\n"
        "例题二\nA. 甲\nB. 乙\nC. 丙\nD. 丁\n答案： D\n\n"
        "问题\nA. 甲\nB. 乙\nC. 丙\nD. 丁\n答案：")
    assert style.target_delimiter == " "


def test_ceval_default_style_follows_the_official_format() -> None:
    spec = load_task("ceval")
    style = spec.prompt_styles["default"]  # type: ignore[attr-defined]
    prompt = build_prompt(spec, style, "computer_network", [_q(0, "例题", "C")], _q(1, "问题", "A"))  # type: ignore[arg-type]
    assert prompt == ("以下是中国关于计算机网络考试的单项选择题，请选出其中的正确答案。\n\n"
                      "例题\nA. 甲\nB. 乙\nC. 丙\nD. 丁\n答案：C\n\n"
                      "问题\nA. 甲\nB. 乙\nC. 丙\nD. 丁\n答案：")


def test_zero_shot_is_description_plus_question() -> None:
    spec = load_task("ceval")
    style = spec.prompt_styles["lmeval"]  # type: ignore[attr-defined]
    prompt = build_prompt(spec, style, "physician", [], _q(0, "问题", "A"))  # type: ignore[arg-type]
    assert prompt == "以下是中国关于医师资格的单项选择题，请选出其中的正确答案。\n\n问题\nA. 甲\nB. 乙\nC. 丙\nD. 丁\n答案："



def _mini_spec() -> Any:
    return validate_spec({
        "name": "mini", "kind": "multiple_choice", "data": {"local": "mc/{split}/{subject}.csv"},
        "eval_split": "test", "fewshot_split": "dev", "num_fewshot": 2,
        "columns": {"question": "Question", "choices": ["A", "B", "C", "D"], "answer": "Answer"},
        "prompt_styles": {"default": {"doc_to_text": "{{ question | trim }}\n答案：", "target_delimiter": ""}},
        "subjects": {"physics": {"groups": ["STEM"]}}})


def test_bad_rows_are_reported_with_file_and_row_and_counted() -> None:
    warnings: list[str] = []
    sink = _Sink()
    backend = FakeBackend(fixed_logprobs={"A": -3.0, "B": -2.0, "C": -0.5, "D": -4.0})
    outcome = run(_mini_spec(), backend, RunContext(data_dir=DATA, warn=warnings.append), sink)
    bad = [w for w in warnings if "row skipped" in w]
    assert len(bad) == 4
    assert any("physics.csv:7: answer 'b' is not one of A/B/C/D" in w for w in bad)
    assert any("physics.csv:3: empty question" in w for w in bad)
    assert any("physics.csv:4: answer 'E' is not one of A/B/C/D" in w for w in bad)
    assert any("physics.csv:6: missing column(s) C, D, Answer" in w for w in bad)
    assert outcome.info["skipped_rows"] == 4
    assert [s["doc_index"] for s in sink.samples] == [0, 3]
    assert all(s["prediction"] == "C" for s in sink.samples) and outcome.metrics["acc"] == 1.0
    assert sink.samples[0]["prompt"].startswith("光年是什么单位？\n答案：B\n\n水在标准大气压下")


def test_unknown_subset_names_available_ones() -> None:
    from evalkit.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown subset.*chemistry.*available: physics"):
        run(_mini_spec(), FakeBackend(), RunContext(data_dir=DATA, subsets=("chemistry",)), _Sink())
