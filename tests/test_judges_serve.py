"""A judge behind `evalkit serve` (OpenAI-compatible HTTP on loopback), with a scripted backend inside."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalkit.backends._fake import from_script
from evalkit.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def judge_url() -> Iterator[str]:
    from evalkit.server import create_app, serve_in_thread

    backend = from_script({"replies": [{"match": "MODEL-X", "texts": ["Detailed. Rating: [[8]]"]},
                                       {"match": ".*", "texts": ["Weak. Rating: [[3]]"]}],
                           # top_logprobs where a prefilled verdict starts (probability mode)
                           "next_tokens": {"<|assistant|>\nRating: [[": {"8": math.log(0.7), "3": math.log(0.2)}}},
                          name="judge")
    with serve_in_thread(create_app(backend, "served-judge")) as url:
        yield url


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    answers, data = tmp_path / "answers", tmp_path / "data" / "mt_bench"
    answers.mkdir()
    data.mkdir(parents=True)
    for model in ("x", "y"):
        row = {"question_id": "d1", "model_id": model, "choices": [{"index": 0, "turns": [f"MODEL-{model.upper()}"]}]}
        (answers / f"{model}.jsonl").write_text(json.dumps(row) + "\n")
    (data / "question.jsonl").write_text(json.dumps({"question_id": "d1", "category": "writing",
                                                     "turns": ["Say who you are."]}) + "\n")
    return answers, data.parent


def _judge(judge: str, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, dict[str, Any]]:
    """`evalkit judge` with the served judge; the run folder and its results.json."""
    answers, data = _setup(tmp_path)
    code = main(["judge", "--answers", str(answers), "--judge", judge, "--judge-model", "openai:served-judge",
                 "--judge-args", f"base_url={url}", "--data-dir", str(data), "--turns", "1",
                 "-o", str(tmp_path / "runs"), "--no-cache"])
    assert code == 0
    run = Path(capsys.readouterr().out.strip().splitlines()[-1])
    return run, json.loads((run / "results.json").read_text())


def test_generative_judge_through_evalkit_serve(judge_url: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    _, results = _judge("mt-bench-single", judge_url, tmp_path, capsys)
    assert results["scores"]["x"]["mean"] == 8.0 and results["scores"]["y"]["mean"] == 3.0
    assert results["ranking"][0]["model"] == "x"
    assert results["judge"]["cost"]["calls"] == 2 and results["judge"]["cost"]["completion_tokens"] > 0


def test_probability_mode_through_evalkit_serve(judge_url: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    run, results = _judge("mt-bench-single-prob", judge_url, tmp_path, capsys)
    expected = (8 * 0.7 + 3 * 0.2) / 0.9  # renormalised over the two visible verdicts
    assert results["scores"]["x"]["mean"] == pytest.approx(expected, abs=1e-4)  # results.json rounds to 4
    samples = [json.loads(line) for line in (run / "samples" / "mt_bench.jsonl").read_text().splitlines()]
    [part] = samples[1]["votes"][0]["parts"]
    assert samples[1]["score"] == pytest.approx(expected) and part["rule"] == "probability"
    assert part["visible_mass"] == pytest.approx(0.9) and part["distribution"]["8"] == pytest.approx(0.7 / 0.9, abs=1e-6)
