"""The embedded model as a judge behind a real `evalkit serve` on 127.0.0.1, judged through the OpenAI backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

from evalkit.cli import main


@pytest.fixture(scope="module")
def served_smollm2() -> Iterator[str]:
    from evalkit.backends import load_backend
    from evalkit.server import create_app, serve_in_thread

    with serve_in_thread(create_app(load_backend("smollm2"), "smollm2-judge")) as url:
        yield url


def test_smollm2_judges_official_answers_through_serve(served_smollm2: str, data_dir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    judge = tmp_path / "short-judge.yaml"  # a short verdict budget keeps the CPU run quick
    judge.write_text("name: short-judge\nextends: mt-bench-single\nmax_tokens: 32\nmax_retries: 0\n", encoding="utf-8")
    code = main(["judge", "--answers", str(data_dir / "mt_bench" / "model_answer"), "--models", "gpt-4,alpaca-13b",
                 "--judge", str(judge), "--judge-model", "openai:smollm2-judge", "--judge-args",
                 f"base_url={served_smollm2}", "--data-dir", str(data_dir), "--limit", "1", "--turns", "1",
                 "-o", str(tmp_path / "runs"), "--no-cache"])
    assert code == 0
    run = Path(capsys.readouterr().out.strip().splitlines()[-1])
    results = json.loads((run / "results.json").read_text())
    assert results["judge"]["cost"]["calls"] == 2 and results["judge"]["cost"]["completion_tokens"] > 0
    samples = [json.loads(line) for line in next((run / "samples").glob("*.jsonl")).read_text().splitlines()]
    votes = [v for s in samples for v in s["votes"]]
    assert len(votes) == 2 and all(v.get("raw") or v.get("parts") for v in votes)
    for model in ("gpt-4", "alpaca-13b"):
        entry = results["scores"][model]
        sample = next(s for s in samples if s["models"] == [model])
        # an unparseable judgment is recorded as invalid and left out, never scored 0
        if sample["valid"]:
            assert entry["mean"] == sample["score"] and 1 <= sample["score"] <= 10 and entry["invalid"] == 0
        else:
            assert entry["mean"] is None and entry["invalid"] == 1


def test_smollm2_probability_judge_through_serve_agrees_with_the_direct_route(served_smollm2: str,
                                                                               data_dir: Path) -> None:
    """Probability mode over HTTP (top_logprobs after a prefilled "Rating: [[") against the same model read
    directly (rendered prompt + loglikelihood of each whole option): two readings of one distribution."""
    from evalkit.backends import load_backend
    from evalkit.backends._openai import OpenAIBackend
    from evalkit.backends._openai_http import RetryPolicy
    from evalkit.judges import JudgeItem, ProbabilityJudge, load_judge_definition
    from evalkit.tasks import load_questions

    question = next(q for q in load_questions(data_dir, hub=False) if q.category == "writing")
    answer = json.loads((data_dir / "mt_bench" / "model_answer" / "gpt-4.jsonl").read_text().splitlines()[0])
    item = JudgeItem(question.question_id, question.category, 1, question.turns[:1], ("gpt-4",),
                     ((answer["choices"][0]["turns"][0],),))
    definition = load_judge_definition("mt-bench-single-prob")
    client = OpenAIBackend("smollm2-judge", base_url=served_smollm2, policy=RetryPolicy(timeout=300))
    api = ProbabilityJudge(definition, client, name="api")
    direct = ProbabilityJudge(definition, load_backend("smollm2"), name="direct")
    assert api.route == "top_logprobs" and direct.route == "loglikelihood"
    [[over_http]], [[local]] = api.judge([item]), direct.judge([item])
    a, b = over_http.parts[0], local.parts[0]
    assert a.visible_mass is not None and 0 < a.valid_mass <= a.visible_mass <= 1 + 1e-6
    assert 1 <= over_http.value <= 10 and 1 <= local.value <= 10
    # the direct route also multiplies in P("]]" | option), so the two differ a little, not in kind
    tv = 0.5 * sum(abs(a.distribution[k] - b.distribution[k]) for k in a.distribution)
    assert tv < 0.25, (a.distribution, b.distribution)
