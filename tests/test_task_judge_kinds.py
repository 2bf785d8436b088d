"""The judge step in more task kinds: MT-Bench's YAML `judge:` block, C-Eval/CMMLU in CoT mode, and `open_qa`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from evalkit.backends._fake import FakeBackend
from evalkit.errors import DataError
from evalkit.judges import JudgeConfig
from evalkit.tasks import multiturn_judge, open_qa
from evalkit.tasks._kind import RunContext
from evalkit.tasks._registry import load_task
from evalkit.tasks._spec import TaskJudge


def test_multiturn_judge_uses_the_yaml_judge_block_else_its_default() -> None:
    spec = load_task("mt_bench")
    assert isinstance(spec, multiturn_judge.MultiturnJudgeSpec)
    ctx = RunContext(judge=JudgeConfig(models=("fake:x",)))
    assert multiturn_judge._judge_config(spec, ctx).definition == spec.default_judge
    declared = spec.model_copy(update={"judge": TaskJudge(definition="fastchat-single")})
    assert multiturn_judge._judge_config(declared, ctx).definition == "fastchat-single"
    flagged = RunContext(judge=JudgeConfig(models=("fake:x",), definition="mt-bench-single-prob"))
    assert multiturn_judge._judge_config(declared, flagged).definition == "mt-bench-single-prob"


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tasks" / "open_qa.yaml"
QA_ANSWERS = [("plants take in", "<think>photosynthesis uses CO2</think>Carbon dioxide."), ("hexagon", "Seven"),
              ("沸腾", "100摄氏度"), (".*", "Tests catch regressions.")]
QA_VERDICTS = [  # rubric-qa: overall = (2 * accuracy + helpfulness + clarity) / 4
    ("<think>", "no verdict"),  # thinking must never reach the judge
    ("(?s)\\[Reference Answer - start\\]\nCarbon dioxide\n.*\\[Assistant's Answer - start\\]\nCarbon dioxide\\.\n",
     '{"accuracy": 10, "helpfulness": 9, "clarity": 5}'),  # 8.5
    ("hexagon", '{"accuracy": 1, "helpfulness": 2, "clarity": 4}'),  # 2.0
    (".*", '{"accuracy": 6, "helpfulness": 6, "clarity": 3}'),  # 5.25
]


class Sink:
    def __init__(self) -> None:
        self.samples: list[dict[str, Any]] = []

    def write(self, samples: Any) -> None:
        self.samples.extend(samples)


def _script(path: Path, rules: list[tuple[str, str]]) -> str:
    path.write_text(yaml.safe_dump({"replies": [{"match": m, "texts": [t]} for m, t in rules]},
                                   allow_unicode=True), encoding="utf-8")
    return f"fake:{path}"


def _qa_model() -> FakeBackend:
    return FakeBackend(name="answerer", replies=[(re.compile(m), [t]) for m, t in QA_ANSWERS])


def test_open_qa_example_is_judged_against_the_reference_with_thinking_stripped(tmp_path: Path) -> None:
    spec = load_task(str(EXAMPLE))
    assert isinstance(spec, open_qa.OpenQaSpec)
    judge = _script(tmp_path / "judge.yaml", QA_VERDICTS)
    progress: list[int] = []
    sink = Sink()
    ctx = RunContext(judge=JudgeConfig(models=(judge,)), set_total=lambda n: progress.append(-n),
                     advance=progress.append)
    outcome = open_qa.run(spec, _qa_model(), ctx, sink)
    assert progress[0] == -8 and sum(progress[1:]) == 8
    m = outcome.metrics
    assert m["judge_score"] == pytest.approx((8.5 + 2.0 + 5.25 + 5.25) / 4) and m["judge_valid_rate"] == 1.0
    assert m["judge_accuracy"] == pytest.approx((10 + 1 + 6 + 6) / 4)
    assert m["exact_match"] == 0.5 and m["answer_chars"] == (15 + 5 + 6 + 24) / 4 and m["empty_rate"] == 0.0
    by_id = {s["id"]: s for s in sink.samples}
    assert by_id["q1"]["prediction"] == "Carbon dioxide." and by_id["q1"]["thinking"] == "photosynthesis uses CO2"
    assert by_id["q1"]["qa_f1"] == 1.0 and by_id["q1"]["rouge_l"] == pytest.approx(1.0)
    assert by_id["q2"]["qa_f1"] == 0.0 and by_id["q3"]["exact_match"] == 1.0
    assert by_id["q1"]["judge"]["score"] == pytest.approx(8.5)
    assert outcome.info["judge"]["definition"] == "rubric-qa" and outcome.n == 4


def test_open_qa_without_judge_or_reference_reports_generation_stats(tmp_path: Path) -> None:
    data = tmp_path / "qs.jsonl"
    data.write_text('{"q": "How many sides does a hexagon have?"}\n{"q": ""}\n{"q": "Why test?"}\n', encoding="utf-8")
    spec = open_qa.OpenQaSpec(name="mine", kind="open_qa", data=str(data), question_column="q",
                              prompt="Q: {q}")
    sink = Sink()
    warnings: list[str] = []
    outcome = open_qa.run(spec, _qa_model(), RunContext(warn=warnings.append), sink)
    assert outcome.metrics == {"answer_chars": (5 + 24) / 2, "empty_rate": 0.0}
    assert outcome.n == 2 and outcome.info["skipped"] == [f"{data}:2: field 'q' is empty"]
    assert warnings and "judge" not in sink.samples[0] and sink.samples[0]["prompt"][-1]["content"].startswith("Q: ")
    assert outcome.info["judge"].startswith("not run")


def test_open_qa_unknown_column_names_file_and_column(tmp_path: Path) -> None:
    data = tmp_path / "qs.csv"
    data.write_text("question,answer\nWhy?,Because\n", encoding="utf-8")
    spec = open_qa.OpenQaSpec(name="mine", kind="open_qa", data=str(data), reference_column="reference")
    with pytest.raises(DataError) as err:
        open_qa.run(spec, _qa_model(), RunContext(), Sink())
    assert str(err.value).startswith(f"{data}: no column 'reference'") and "\n" not in str(err.value)
    missing = spec.model_copy(update={"data": str(tmp_path / "none.csv")})
    with pytest.raises(DataError, match="not found"):
        open_qa.run(missing, _qa_model(), RunContext(), Sink())


MC_ANSWERS = [("将域名解析", "<think>DNS 负责把域名变成地址</think>答案：B"), ("TCP建立连接", "握手要三次。答案：A"),
              (".*", "答案：A")]
MC_VERDICTS = [
    ("<think>", "no verdict"),
    ("(?s)\\[Reference Answer - start\\]\nB\\. DNS\n\\[Reference.*\\[Assistant's Answer - start\\]\n答案：B\n",
     '{"accuracy": 9, "helpfulness": 8, "clarity": 4}'),  # 7.5
    ("TCP建立连接的过程称为____。\nA\\. 两次握手\nB\\. 四次挥手\n", '{"accuracy": 2, "helpfulness": 2, "clarity": 4}'),  # 2.5
    (".*", '{"accuracy": 6, "helpfulness": 6, "clarity": 3}'),  # 5.25
]


def _run_ceval(tmp_path: Path, mode: str) -> tuple[Any, Sink, list[int]]:
    from evalkit.tasks import multiple_choice

    spec = load_task("ceval")
    assert isinstance(spec, multiple_choice.MultipleChoiceSpec)
    judge = _script(tmp_path / "judge.yaml", MC_VERDICTS)
    progress: list[int] = []
    sink = Sink()
    ctx = RunContext(limit=3, subsets=("computer_network",), num_fewshot=0, task_args={"mode": mode},
                     judge=JudgeConfig(models=(judge,)), set_total=lambda n: progress.append(-n),
                     advance=progress.append)
    backend = FakeBackend(name="student", replies=[(re.compile(m), [t]) for m, t in MC_ANSWERS])
    return multiple_choice.run(spec, backend, ctx, sink), sink, progress


def test_ceval_cot_answers_are_judged_beside_accuracy(tmp_path: Path) -> None:
    outcome, sink, progress = _run_ceval(tmp_path, "cot")
    m = outcome.metrics
    assert m["acc"] == pytest.approx(2 / 3)  # accuracy still comes from the extracted letter
    assert m["judge_score"] == pytest.approx((7.5 + 2.5 + 5.25) / 3, abs=1e-4) and m["judge_valid_rate"] == 1.0
    assert m["judge_clarity"] == pytest.approx((4 + 4 + 3) / 3, abs=1e-4)
    assert progress[:2] == [-3, -6] and sum(p for p in progress if p > 0) == 6
    assert outcome.info["judge"]["definition"] == "rubric-qa"
    assert [s["judge"]["score"] for s in sink.samples] == pytest.approx([7.5, 2.5, 5.25])


def test_ceval_loglikelihood_mode_is_not_judged_and_says_why(tmp_path: Path) -> None:
    outcome, sink, _ = _run_ceval(tmp_path, "loglikelihood")
    assert not any(k.startswith("judge") for k in outcome.metrics) and "acc" in outcome.metrics
    assert outcome.info["judge"].startswith("not run: mode=loglikelihood") and "judge" not in sink.samples[0]


def test_mc_judge_reference_carries_the_correct_option_and_the_explanation() -> None:
    from evalkit.tasks._mc_judge import mc_judge_inputs
    from evalkit.tasks.multiple_choice import Question

    q = Question(4, "传输层的作用是____。", ("路由", "端到端传输"), "B", {"explanation": "传输层负责端到端。"})
    [item] = mc_judge_inputs([q], [{"id": "x/4", "subset": "x", "answer": "选B"}], ["A", "B"])
    assert item.question == "传输层的作用是____。\nA. 路由\nB. 端到端传输"
    assert (item.answer, item.reference) == ("选B", "B. 端到端传输\n传输层负责端到端。")
