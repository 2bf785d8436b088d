"""CMB-Clin (`cmb_clin`): cases as multi-turn consultations with gold history, ROUGE-L / BLEU, bad cases."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from _sinks import ListSink as Sink

from evalkit.backends._fake import FakeBackend
from evalkit.tasks._cmb_clin import (
    CmbClinSpec,
    corpus_bleu,
    judge_items,
    load_cases,
    run,
    sentence_bleu,
    turn_conversation,
)
from evalkit.tasks._kind import RunContext
from evalkit.tasks._registry import load_task

DEMO = Path(__file__).resolve().parents[1] / "tasks" / "demo" / "cmb" / "CMB-Clin-demo.json"



def _spec() -> CmbClinSpec:
    spec = load_task("cmb_clin")
    assert isinstance(spec, CmbClinSpec)
    return spec


def test_real_cmb_clin_has_74_cases_and_208_questions(data_dir: Path) -> None:
    cases, origin, _, skipped = load_cases(_spec(), RunContext(data_dir=data_dir))
    assert (len(cases), sum(len(c.qa) for c in cases), origin, skipped) == (74, 208, "local", [])


def test_earlier_turns_carry_the_gold_answers() -> None:
    cases, *_ = load_cases(_spec(), RunContext())
    case = cases[0]
    conv = turn_conversation(_spec(), case, 2)
    assert [m.role for m in conv] == ["user", "assistant", "user", "assistant", "user"]
    assert conv[0].content == f"以下是一位病人的病例：\n{case.description}\n{case.qa[0][0]}"
    assert (conv[1].content, conv[3].content) == (case.qa[0][1], case.qa[1][1])
    assert conv[4].content == case.qa[2][0]


def test_reference_answers_score_one_and_samples_feed_the_judge() -> None:
    demo = json.loads(DEMO.read_text(encoding="utf-8"))
    replies = [(re.compile(re.escape(pair["question"]) + "$"), [pair["answer"]])
               for case in demo for pair in case["QA_pairs"]]
    sink = Sink()
    outcome = run(_spec(), FakeBackend(replies=replies), RunContext(), sink)
    assert outcome.n == 5 and outcome.info["cases"] == 2 and outcome.info["data_origin"] == "demo"
    assert outcome.metrics["rouge_l"] == pytest.approx(1.0) and outcome.metrics["bleu"] == pytest.approx(1.0)
    assert "rubric judge 'cmb_clin'" in outcome.info["judge"]
    items = judge_items(sink.samples)
    assert set(items[0]) == {"id", "description", "question", "reference", "prediction", "prompt"}
    assert items[0]["id"] == "0/1" and items[0]["reference"] == items[0]["prediction"]


def test_a_case_without_questions_is_skipped_with_file_and_row(tmp_path: Path) -> None:
    folder = tmp_path / "cmb"
    folder.mkdir()
    good = {"id": "a", "title": "t", "description": "病史", "QA_pairs": [{"question": "诊断？", "answer": "感冒"}]}
    rows = [good, {"id": "b", "title": "t", "description": "病史", "QA_pairs": []},
            {"id": "c", "title": "t", "description": "病史", "QA_pairs": [{"question": "诊断？", "solution": ""}]}]
    (folder / "CMB-Clin-qa.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    warnings: list[str] = []
    cases, _, location, skipped = load_cases(_spec(), RunContext(data_dir=tmp_path, warn=warnings.append))
    assert len(cases) == 1 and len(skipped) == 2
    assert warnings[0] == f"{location}:2: case has no questions (QA_pairs is missing or empty); case skipped (fix it to include it)"
    assert warnings[1].startswith(f"{location}:3: QA_pairs[1] has no reference answer")


def test_bleu_by_hand() -> None:
    # p1..p4 = 4/5, 3/4, 2/3, 1/2; equal lengths, no brevity penalty: (0.2) ** 0.25
    assert corpus_bleu([(["a", "b", "c", "d", "e"], ["a", "b", "c", "d", "f"])]) == pytest.approx(0.2 ** 0.25)
    # a short candidate is penalised: c = 2, r = 4
    assert corpus_bleu([(["a", "b"], ["a", "b", "c", "d"])], max_n=2) == pytest.approx(math.exp(1 - 4 / 2))
    assert corpus_bleu([(["x", "y"], ["a", "b"])]) == 0.0
    assert sentence_bleu([], ["a"]) == 0.0
    assert sentence_bleu(["a", "b", "c"], ["a", "b", "c"]) == pytest.approx(1.0)
    assert 0.0 < sentence_bleu(["a", "b", "x"], ["a", "b", "c"]) < 1.0


def test_max_tokens_option_is_checked() -> None:
    from evalkit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--task-args max_tokens=lots: give a positive whole number"):
        run(_spec(), FakeBackend(), RunContext(task_args={"max_tokens": "lots"}), Sink())


@pytest.mark.integration
def test_cmb_clin_on_the_embedded_model(data_dir: Path, tmp_path: Path) -> None:
    from evalkit.runner import RunOptions, execute

    run_dir = execute(RunOptions(model="smollm2", tasks="cmb_clin", limit=1, data_dir=data_dir, output=tmp_path,
                                 no_cache=True, quiet=True, task_args={"max_tokens": "48"}))
    task = json.loads((run_dir / "results.json").read_text())["tasks"]["cmb_clin"]
    assert task["n"] == 3 and task["info"]["data_origin"] == "local"  # the first real case has 3 questions
    assert 0.0 <= task["metrics"]["rouge_l"] <= 1.0 and 0.0 <= task["metrics"]["bleu"] <= 1.0
