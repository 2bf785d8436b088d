"""The judge step of any generative task: CMB-Clin's four-aspect rubric judge and LongBench summarisation judged by
the scripted fake judge (exact figures), the response cache, an unknown judge in a task YAML, and a backend that
cannot generate."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from _sinks import ListSink as Sink

from evalkit.backends._fake import FakeBackend
from evalkit.backends._protocol import BackendBase, ModelIdentity
from evalkit.errors import TaskSpecError, UnsupportedRequest
from evalkit.judges import JudgeConfig
from evalkit.tasks import _cmb_clin, longcontext
from evalkit.tasks._kind import RunContext
from evalkit.tasks._registry import load_task
from evalkit.tasks._spec import load_spec_file

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "tasks" / "demo" / "cmb" / "CMB-Clin-demo.json"

# judge verdicts per demo question (the judge prompt shows "问题：<question>")
CLIN_VERDICTS = [
    ("问题：该患者最可能的诊断", '{"fluency": 5, "relevance": 5, "completeness": 4, "proficiency": 4}'),  # 4.5
    ("问题：还需要做哪些检查", 'ok {"fluency": 4, "relevance": 3, "completeness": 2, "proficiency": 7}'),  # 3.0
    ("问题：简述治疗原则", "fluency: [[3]]\nrelevance: [[3]]\ncompleteness: [[3]]\nproficiency: [[3]]"),  # 3.0
    ("问题：请给出诊断", "I cannot rate this."),  # invalid on every try: left out
    (".*", '{"fluency": 2, "relevance": 2, "completeness": 1, "proficiency": 1}'),  # 1.5
]



def _judge_script(path: Path, verdicts: list[tuple[str, str]]) -> str:
    path.write_text(yaml.safe_dump({"replies": [{"match": m, "texts": [t]} for m, t in verdicts]},
                                   allow_unicode=True), encoding="utf-8")
    return f"fake:{path}"


def _clin_model() -> FakeBackend:
    demo = json.loads(DEMO.read_text(encoding="utf-8"))
    replies = [(re.compile(re.escape(pair["question"]) + "$"), [f"<think>想一想</think>{pair['answer']}"])
               for case in demo for pair in case["QA_pairs"]]
    return FakeBackend(name="clinician", replies=replies)


def _run_clin(config: JudgeConfig, **ctx_args: Any) -> tuple[Any, Sink]:
    sink = Sink()
    spec = load_task("cmb_clin")
    assert isinstance(spec, _cmb_clin.CmbClinSpec)
    return _cmb_clin.run(spec, _clin_model(), RunContext(judge=config, **ctx_args), sink), sink


def test_cmb_clin_rubric_judge_exact_figures(tmp_path: Path) -> None:
    judge = _judge_script(tmp_path / "judge.yaml", CLIN_VERDICTS)
    progress: list[int] = []
    outcome, sink = _run_clin(JudgeConfig(models=(judge,)), set_total=lambda n: progress.append(-n),
                              advance=progress.append)
    assert progress[0] == -10 and sum(progress[1:]) == 10  # 5 answers generated, then 5 judged
    m = outcome.metrics
    assert m["rouge_l"] == pytest.approx(1.0)  # the judge-free companions stay
    assert m["judge_score"] == pytest.approx((4.5 + 3.0 + 3.0 + 1.5) / 4)
    assert m["judge_valid_rate"] == pytest.approx(4 / 5)
    assert (m["judge_fluency"], m["judge_relevance"], m["judge_completeness"]) == pytest.approx((3.5, 3.25, 2.5))
    assert m["judge_proficiency"] == pytest.approx((4 + 3 + 1) / 3, abs=1e-4)  # the off-scale 7 is left out
    assert m["judge_score_ci_low"] <= m["judge_score"] <= m["judge_score_ci_high"]
    info = outcome.info["judge"]
    assert info["definition"] == "cmb_clin" and info["scores"]["invalid"] == 1
    by_id = {s["id"]: s for s in sink.samples}
    assert by_id["0/2"]["judge"]["aspects"] == {"fluency": 4.0, "relevance": 3.0, "completeness": 2.0}
    assert by_id["0/2"]["judge"]["score"] == pytest.approx(3.0) and by_id["1/1"]["judge"]["valid"] is False
    assert len(by_id["1/1"]["judge"]["responses"]) == 3  # the first try and two retries, all kept
    assert "<think>" not in by_id["0/1"]["prediction"]


def test_cmb_clin_probability_mode_reads_each_aspect_on_its_own(tmp_path: Path) -> None:
    # fluency, relevance, completeness close with "," and put half their mass on 4 and half on 5; proficiency,
    # the last aspect, closes with "}" and puts 1/4 on 2 and 3/4 on 3; every other rating gets e^-30
    table = {f"{r}{close}": -30.0 for r in range(1, 6) for close in (",", "}")}
    table.update({"4,": math.log(0.5), "5,": math.log(0.5), "2}": math.log(0.25), "3}": math.log(0.75)})
    script = tmp_path / "prob.yaml"
    script.write_text(yaml.safe_dump({"loglikelihood": table}), encoding="utf-8")
    outcome, sink = _run_clin(JudgeConfig(models=(f"fake:{script}",), mode="probability"))
    m = outcome.metrics
    assert (m["judge_fluency"], m["judge_relevance"], m["judge_completeness"]) == pytest.approx((4.5,) * 3, abs=1e-4)
    assert m["judge_proficiency"] == pytest.approx(2.75, abs=1e-4)
    assert m["judge_score"] == pytest.approx((3 * 4.5 + 2.75) / 4, abs=1e-4) and m["judge_valid_rate"] == 1.0
    assert outcome.info["judge"]["mode"] == "probability"
    assert outcome.info["judge"]["reliability"]["low_confidence"] == 0
    part = sink.samples[0]["judge"]["votes"][0]["parts"][0]
    assert part["distribution"]["proficiency=3"] == pytest.approx(0.75, abs=1e-4)


def test_judge_prompt_carries_case_question_reference_and_answer_without_thinking() -> None:
    samples = [{"id": "0/1", "subset": "t", "description": "病史甲", "question": "诊断？", "prediction": "感冒",
                "reference": "上呼吸道感染"}]
    [item] = _cmb_clin.judge_inputs(samples)
    assert (item.question, item.answer, item.reference) == ("病例：病史甲\n问题：诊断？", "感冒", "上呼吸道感染")


def test_judge_calls_go_through_the_response_cache(tmp_path: Path) -> None:
    script = tmp_path / "judge.yaml"
    cache = tmp_path / "cache.sqlite"
    judge = _judge_script(script, CLIN_VERDICTS)
    first, _ = _run_clin(JudgeConfig(models=(judge,), cache=str(cache)))
    _judge_script(script, [(".*", '{"fluency": 1, "relevance": 1, "completeness": 1, "proficiency": 1}')])
    again, _ = _run_clin(JudgeConfig(models=(judge,), cache=str(cache)))
    assert again.metrics["judge_score"] == first.metrics["judge_score"] == pytest.approx(3.0)
    fresh, _ = _run_clin(JudgeConfig(models=(judge,)))
    assert fresh.metrics["judge_score"] == pytest.approx(1.0)


def test_yaml_judge_defaults_and_run_flags(tmp_path: Path) -> None:
    judge = _judge_script(tmp_path / "judge.yaml", CLIN_VERDICTS)
    outcome, sink = _run_clin(JudgeConfig(models=(judge,), votes=2))
    assert outcome.info["judge"]["votes"] == 2 and len(sink.samples[0]["judge"]["votes"]) == 2


def test_longbench_summarisation_is_judged_and_other_datasets_are_not(tmp_path: Path) -> None:
    judge = _judge_script(tmp_path / "judge.yaml", [(".*", '{"accuracy": 8, "helpfulness": 6, "clarity": 4}')])
    spec = load_spec_file(ROOT / "tasks" / "longbench.yaml")
    sink = Sink()
    ctx = RunContext(task_args={"source": "demo"}, subsets=("multi_news", "trec"), judge=JudgeConfig(models=(judge,)))
    outcome = longcontext.run(spec, FakeBackend(name="summariser", max_length=8192), ctx, sink)
    assert outcome.metrics["judge_score"] == pytest.approx((2 * 8 + 6 + 4) / 4)  # rubric-qa weights accuracy 2
    assert outcome.metrics["judge_accuracy"] == 8.0 and outcome.metrics["judge_valid_rate"] == 1.0
    assert outcome.info["judge"]["definition"] == longcontext.SUMMARY_JUDGE
    judged = {s["subset"] for s in sink.samples if "judge" in s}
    assert judged == {"multi_news"} and {s["subset"] for s in sink.samples} == {"multi_news", "trec"}
    plain = longcontext.run(spec, FakeBackend(name="summariser", max_length=8192),
                            RunContext(task_args={"source": "demo"}, subsets=("multi_news",)), Sink())
    assert "judge" not in plain.info and not any(k.startswith("judge") for k in plain.metrics)


def test_unknown_judge_in_a_task_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "clin.yaml"
    path.write_text("name: my_clin\nkind: cmb_clin\ndata:\n  demo: demo/cmb/CMB-Clin-demo.json\n"
                    "judge:\n  definition: no-such-judge\n  votes: 3\n", encoding="utf-8")
    with pytest.raises(TaskSpecError) as err:
        load_spec_file(path)
    message = str(err.value)
    assert message.startswith(f"{path}:6: field 'judge.definition'") and "unknown judge 'no-such-judge'" in message
    assert "\n" not in message
    path.write_text("name: my_clin\nkind: cmb_clin\ndata:\n  demo: demo/cmb/CMB-Clin-demo.json\n"
                    "judge: {definition: cmb_clin, votes: 3}\n", encoding="utf-8")
    spec = load_spec_file(path)
    assert spec.judge is not None and (spec.judge.definition, spec.judge.votes) == ("cmb_clin", 3)


@dataclass
class _ScoreOnly(BackendBase):
    @property
    def identity(self) -> ModelIdentity:
        return ModelIdentity(backend="scoreonly", model="m", revision="1")


def test_judged_task_on_a_backend_that_cannot_generate(tmp_path: Path) -> None:
    judge = _judge_script(tmp_path / "judge.yaml", CLIN_VERDICTS)
    spec = load_task("cmb_clin")
    assert isinstance(spec, _cmb_clin.CmbClinSpec)
    with pytest.raises(UnsupportedRequest) as err:
        _cmb_clin.run(spec, _ScoreOnly(), RunContext(judge=JudgeConfig(models=(judge,))), Sink())
    assert "cannot generate" in str(err.value) and "\n" not in str(err.value)


def make_score_only(model: str, args: dict[str, str]) -> _ScoreOnly:
    return _ScoreOnly()


def test_cli_judged_task_on_a_backend_that_cannot_generate_exits_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from evalkit.backends import _registry
    from evalkit.cli import main

    monkeypatch.setitem(_registry._KINDS, "scoreonly", f"{__name__}:make_score_only")
    judge = _judge_script(tmp_path / "judge.yaml", CLIN_VERDICTS)
    code = main(["run", "--model", "scoreonly:m", "--tasks", "cmb_clin", "--limit", "1", "--judge-model", judge,
                 "-o", str(tmp_path / "runs"), "--no-cache"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot generate" in err and "Traceback" not in err


@pytest.mark.integration
def test_evalkit_run_cmb_clin_with_the_embedded_model_as_probability_judge(tmp_path: Path) -> None:
    from evalkit.cli import main

    # one real case cut to its first question: one answer of 8 tokens and 4 aspects x 5 ratings scored by the
    # judge, instead of the first case's three turns (the run, the probability judge and the records are the same)
    [case, *_] = json.loads(DEMO.read_text(encoding="utf-8"))
    (tmp_path / "data" / "cmb").mkdir(parents=True)
    (tmp_path / "data" / "cmb" / "CMB-Clin-qa.json").write_text(
        json.dumps([{**case, "QA_pairs": case["QA_pairs"][:1]}], ensure_ascii=False), encoding="utf-8")
    code = main(["run", "--model", "smollm2", "--tasks", "cmb_clin", "--limit", "1", "--task-args", "max_tokens=8",
                 "--judge-model", "smollm2", "--judge-mode", "probability", "--data-dir", str(tmp_path / "data"),
                 "-o", str(tmp_path / "runs"), "--no-cache"])
    assert code == 0
    [run] = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    task = json.loads((run / "results.json").read_text())["tasks"]["cmb_clin"]
    metrics = task["metrics"]
    assert metrics["judge_valid_rate"] == 1.0 and 1.0 <= metrics["judge_score"] <= 5.0
    assert all(1.0 <= metrics[f"judge_{a}"] <= 5.0 for a in ("fluency", "relevance", "completeness", "proficiency"))
    assert task["info"]["judge"]["definition"] == "cmb_clin" and task["info"]["judge"]["mode"] == "probability"
    assert task["info"]["data_origin"] == "local"
    rows = [json.loads(line) for line in (run / "samples" / "cmb_clin.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and all(len(r["judge"]["aspects"]) == 4 and r["judge"]["votes"] for r in rows)
