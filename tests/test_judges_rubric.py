"""Rubric judges: aspects with their own scales, each parsed and range-checked on its own (an invalid aspect is
left out, never zeroed), per-aspect means and a weighted overall, and a rubric aspect without a scale."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from evalkit.backends._fake import from_script
from evalkit.cli import main
from evalkit.errors import TaskSpecError
from evalkit.judges import GenerativeJudge, JudgeConfig, JudgeItem, load_judge_definition
from evalkit.judges._command import JudgeRunOptions, run_judge
from evalkit.judges._rubric import parse_rubric

RUBRIC = load_judge_definition("rubric-qa")  # accuracy 1-10 (weight 2), helpfulness 1-10, clarity 1-5


@pytest.mark.parametrize(("text", "aspects", "value", "rule"), [
    # weighted: (2 * 8 + 6 + 4) / 4
    ('Fine. {"accuracy": 8, "helpfulness": 6, "clarity": 4}', {"accuracy": 8, "helpfulness": 6, "clarity": 4}, 6.5,
     "json"),
    # clarity 7 is off its 1-5 scale: left out, the overall is over the other two, (2 * 8 + 6) / 3
    ('{"accuracy": 8, "helpfulness": 6, "clarity": 7}', {"accuracy": 8, "helpfulness": 6}, 22 / 3, "json"),
    # the example quoted first, the judge's own object last; "Clarity" matches case-insensitively
    ('like {"accuracy": 1} ... {"Accuracy": 4, "helpfulness": "9", "Clarity": 5}',
     {"accuracy": 4, "helpfulness": 9, "clarity": 5}, 5.5, "json"),
    ('{"accuracy": "high", "helpfulness": 3}', {"helpfulness": 3}, 3.0, "json"),
    ("Accuracy: [[6]]\nHelpfulness: [[2]]\nclarity: [[5]]", {"accuracy": 6, "helpfulness": 2, "clarity": 5}, 4.75,
     "aspect_brackets"),
])
def test_each_aspect_is_checked_on_its_own(text: str, aspects: dict[str, float], value: float, rule: str) -> None:
    parsed = parse_rubric(text, RUBRIC.aspects)
    assert parsed.aspects == aspects and parsed.rule == rule
    assert parsed.value == pytest.approx(value, abs=1e-6)


def test_no_valid_aspect_is_an_invalid_judgment() -> None:
    parsed = parse_rubric('{"accuracy": 0, "clarity": 9}', RUBRIC.aspects)
    assert parsed.value is None and parsed.aspects is None
    assert parsed.error == ("aspect accuracy: rating 0 outside 1..10; aspect helpfulness: no rating; "
                            "aspect clarity: rating 9 outside 1..5")


def test_judge_keeps_aspects_on_the_attempt_and_retries_only_without_any() -> None:
    script = {"replies": [{"match": ".*", "texts": ["no verdict", '{"accuracy": 9, "clarity": 11}']}]}
    [[v]] = GenerativeJudge(RUBRIC, from_script(script), name="j").judge(
        [JudgeItem("1", "writing", 1, ("Q?",), ("m",), (("A.",),))])
    part = v.parts[0]
    assert part.tries == 2 and part.aspects == {"accuracy": 9.0} and v.value == 9.0
    assert part.error == "aspect helpfulness: no rating; aspect clarity: rating 11 outside 1..5"


def test_per_aspect_means_and_weighted_overall(data_dir: Path, tmp_path: Path) -> None:
    # gpt-4's answers are always rated {accuracy 9, helpfulness 8, clarity 5}; llama-13b's get accuracy 3,
    # helpfulness 2 and an off-scale clarity 6 (left out) on every question.
    gpt4 = {json.loads(line)["question_id"]: json.loads(line)["choices"][0]["turns"][0]
            for line in (data_dir / "mt_bench" / "model_answer" / "gpt-4.jsonl").read_text().splitlines()}

    class Scripted:
        def __call__(self, spec: str, args: dict[str, str]) -> object:
            rules = [{"match": re.escape(text[:40]), "texts": ['{"accuracy": 9, "helpfulness": 8, "clarity": 5}']}
                     for text in gpt4.values()]
            rules.append({"match": ".*", "texts": ['{"accuracy": 3, "helpfulness": 2, "clarity": 6}']})
            return from_script({"replies": rules})

    options = JudgeRunOptions(answers=data_dir / "mt_bench" / "model_answer", data_dir=data_dir, output=tmp_path,
                              judge=JudgeConfig("rubric-qa", models=("rubric-judge",)), models=("gpt-4", "llama-13b"),
                              limit=4, turns=(1,), categories=("writing",), hub=False, bootstrap_rounds=10,
                              echo=lambda m: None)
    run = run_judge(options, backend_factory=Scripted())
    assert run is not None
    scores = json.loads((run / "results.json").read_text())["scores"]
    assert scores["gpt-4"]["aspects"] == {"accuracy": {"mean": 9.0, "n": 4}, "helpfulness": {"mean": 8.0, "n": 4},
                                          "clarity": {"mean": 5.0, "n": 4}}
    assert scores["gpt-4"]["overall"] == pytest.approx((2 * 9 + 8 + 5) / 4)
    assert scores["llama-13b"]["aspects"] == {"accuracy": {"mean": 3.0, "n": 4}, "helpfulness": {"mean": 2.0, "n": 4}}
    assert scores["llama-13b"]["overall"] == pytest.approx((2 * 3 + 2) / 3, abs=1e-4)
    assert scores["llama-13b"]["invalid"] == 0  # a judgment with some valid aspects still counts
    rows = [json.loads(line) for line in (run / "samples" / "mt_bench.jsonl").read_text().splitlines()]
    assert {r["models"][0]: r["aspects"] for r in rows if r["question_id"] == rows[0]["question_id"]}["llama-13b"] == {
        "accuracy": 3.0, "helpfulness": 2.0}


def test_aspect_without_scale_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad-rubric.yaml"
    path.write_text("name: bad-rubric\ntype: single\naspects:\n  - name: accuracy\n    scale: [1, 10]\n"
                    "  - name: style\n    weight: 2\nprompts:\n  general:\n    template: '{question} {answer}'\n",
                    encoding="utf-8")
    with pytest.raises(TaskSpecError, match=rf"^{path}:6: rubric aspect 'style' has no valid scale; add scale"):
        load_judge_definition(str(path))
    code = main(["judge", "--answers", str(tmp_path), "--judge", str(path), "--judge-model", "fake:echo",
                 "--no-cache", "-o", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and f"{path}:6:" in err


def test_probability_mode_reads_each_aspect_on_its_own(data_dir: Path, tmp_path: Path) -> None:
    # The scripted judge's loglikelihoods: after a JSON key, "8," 0.6, "9," 0.2, each other "k," 0.025
    # (accuracy and helpfulness, 1..10); "4}" and "5}" 0.5 each (clarity, the last aspect, 1..5).
    # Expected: accuracy = helpfulness = 0.6*8 + 0.2*9 + 0.025*(1+2+3+4+5+6+7+10) = 7.55, clarity = 4.5,
    # overall = (2*7.55 + 7.55 + 4.5) / 4 = 6.7875.
    table = {f"{k},": math.log(0.025) for k in range(1, 11)} | {"8,": math.log(0.6), "9,": math.log(0.2)}
    table |= {f"{k}}}": math.log(1e-6) for k in range(1, 4)} | {"4}": math.log(0.5), "5}": math.log(0.5)}
    options = JudgeRunOptions(answers=data_dir / "mt_bench" / "model_answer", data_dir=data_dir, output=tmp_path,
                              judge=JudgeConfig("rubric-qa", models=("prob-judge",), mode="probability"),
                              models=("gpt-4",), limit=2, turns=(1,), hub=False, bootstrap_rounds=10,
                              echo=lambda m: None)
    run = run_judge(options, backend_factory=lambda spec, args: from_script({"loglikelihood": table}))
    assert run is not None
    results = json.loads((run / "results.json").read_text())
    entry = results["scores"]["gpt-4"]
    assert entry["aspects"]["accuracy"]["mean"] == pytest.approx(7.55, abs=1e-4)
    assert entry["aspects"]["helpfulness"]["mean"] == pytest.approx(7.55, abs=1e-4)
    assert entry["aspects"]["clarity"]["mean"] == pytest.approx(4.5, abs=1e-4)
    assert entry["overall"] == pytest.approx(6.7875, abs=1e-4) and entry["mean"] == pytest.approx(6.7875, abs=1e-4)
    assert results["judge"]["cost"]["loglikelihood_requests"] == 2 * (10 + 10 + 5)
    row = json.loads((run / "samples" / "mt_bench.jsonl").read_text().splitlines()[0])
    part = row["votes"][0]["parts"][0]
    assert part["distribution"]["accuracy=8"] == pytest.approx(0.6, abs=1e-6) and part["valid_mass"] < 1.01


@pytest.mark.integration
def test_smollm2_as_a_probability_mode_rubric_judge(data_dir: Path) -> None:
    """The embedded model reads an official answer on the three aspects, each from its own distribution."""
    from evalkit.backends import load_backend
    from evalkit.judges._rubric_probability import RubricProbabilityJudge
    from evalkit.tasks import load_questions

    question = next(q for q in load_questions(data_dir, hub=False) if q.category == "writing")
    answer = json.loads((data_dir / "mt_bench" / "model_answer" / "llama-13b.jsonl").read_text().splitlines()[0])
    item = JudgeItem(question.question_id, question.category, 1, question.turns[:1], ("llama-13b",),
                     ((answer["choices"][0]["turns"][0],),))
    judge = RubricProbabilityJudge(RUBRIC, load_backend("smollm2"), name="smollm2")
    [[v]] = judge.judge([item])
    part = v.parts[0]
    assert part.aspects is not None and set(part.aspects) == {"accuracy", "helpfulness", "clarity"}
    for aspect in RUBRIC.aspects:
        low, high = aspect.scale
        assert low <= part.aspects[aspect.name] <= high
        probs = [p for k, p in part.distribution.items() if k.startswith(f"{aspect.name}=")]
        assert len(probs) == high - low + 1 and sum(probs) == pytest.approx(1.0, abs=1e-4)
    assert 0 < part.valid_mass <= 1 and judge.stats.loglikelihood_requests == 25
    weighted = (2 * part.aspects["accuracy"] + part.aspects["helpfulness"] + part.aspects["clarity"]) / 4
    assert v.value == pytest.approx(weighted, abs=1e-5)


@pytest.mark.parametrize(("definition", "kind"), [("rubric-qa", "rubric"), ("listwise-vote", "listwise")])
def test_option_scoring_judges_refuse_a_top_logprobs_only_backend(definition: str, kind: str) -> None:
    from evalkit.backends._fake import FakeBackend
    from evalkit.errors import UnsupportedRequest
    from evalkit.judges._listwise_probability import ListwiseProbabilityJudge
    from evalkit.judges._rubric_probability import RubricProbabilityJudge

    class TopLogprobsOnly(FakeBackend):
        can_render_chat = False
        can_chat_logprobs = True

    judge_class = RubricProbabilityJudge if kind == "rubric" else ListwiseProbabilityJudge
    with pytest.raises(UnsupportedRequest, match=f"{kind} judge '{definition}' in probability mode needs a backend"):
        judge_class(load_judge_definition(definition), TopLogprobsOnly())
