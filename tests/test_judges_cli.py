"""`evalkit judge` through the real CLI entry point, with a scripted `fake:` judge model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.cli import main

SCRIPT = """
replies:
  - match: "(A's Answer - start\\\\]|### Assistant A:)\\\\nMODEL-X"
    texts: ["X is clearly better. [[A]]", "X. [[A]]", "Hmm. [[C]]"]
  - match: "(B's Answer - start\\\\]|### Assistant B:)\\\\nMODEL-X"
    texts: ["X is clearly better. [[B]]", "X. [[B]]", "Hmm. [[C]]"]
  - match: ".*"
    texts: ["Equal. [[C]]"]
"""


def _answers(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for model, answer in (("x", "MODEL-X says hi"), ("y", "MODEL-Y says hi"), ("z", "MODEL-Z says hi")):
        rows = [{"question_id": qid, "model_id": model, "choices": [{"index": 0, "turns": [answer, answer + " 2"]}]}
                for qid in ("d1", "d2", "d3", "d4")]
        (folder / f"{model}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return folder


@pytest.fixture()
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.delenv("EVALKIT_DATA_DIR", raising=False)
    script = tmp_path / "judge.yaml"
    script.write_text(SCRIPT)
    return _answers(tmp_path / "answers"), script


def test_dry_run_counts_calls(setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answers, script = setup
    data = _demo_data(tmp_path)
    code = main(["judge", "--answers", str(answers), "--judge", "mt-bench-pair", "--judge-model", f"fake:{script}",
                 "--judge-model", f"fake:{script}", "--judge-votes", "3", "--data-dir", str(data), "--dry-run",
                 "-o", str(tmp_path / "runs")])
    assert code == 0
    # 3 pairs x 4 questions x 2 turns = 24 items; x 2 orders x 3 votes x 2 judges = 288 calls
    assert "24 items" in capsys.readouterr().err and not (tmp_path / "runs").exists()
    code = main(["judge", "--answers", str(answers), "--judge", "mt-bench-pair", "--judge-model", f"fake:{script}",
                 "--data-dir", str(data), "--dry-run", "--judge-votes", "3", "--judge-model", f"fake:{script}"])
    assert "288 judge calls (up to 864 with retries)" in capsys.readouterr().err


def _demo_data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "mt_bench").mkdir(parents=True)
    rows = [{"question_id": q, "category": "writing", "turns": [f"Question {q}?", "And then?"]}
            for q in ("d1", "d2", "d3", "d4")]
    (data / "mt_bench" / "question.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return data


def test_pairwise_run_ranks_and_reports(setup: tuple[Path, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    answers, script = setup
    code = main(["judge", "--answers", str(answers), "--judge", "mt-bench-pair", "--judge-model", f"fake:{script}",
                 "--judge-votes", "3", "--reducer", "majority", "--data-dir", str(_demo_data(tmp_path)),
                 "-o", str(tmp_path / "runs")])
    assert code == 0
    run = Path(capsys.readouterr().out.strip().splitlines()[-1])
    results = json.loads((run / "results.json").read_text())
    assert results["ranking"][0]["model"] == "x"
    assert results["reliability"]["position_consistency"] == 1.0
    assert results["reliability"]["valid_rate"] == 1.0
    assert "between_votes" in results["reliability"]
    assert results["scores"]["x"]["score_rate"] > results["scores"]["y"]["score_rate"]
    rows = [json.loads(line) for line in (run / "samples" / "mt_bench.jsonl").read_text().splitlines()]
    assert len(rows) == 24 and all(len(r["votes"]) == 3 for r in rows)
    x_rows = [r for r in rows if "x" in r["models"]]
    # vote samples: seeds 0,1,2 pick "[[A]]", "[[A]]", "[[C]]" -> majority gives x the win
    assert all(r["verdict"] == ("A" if r["models"][0] == "x" else "B") for r in x_rows)


def test_user_errors_exit_2(setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answers, _ = setup
    data = str(_demo_data(tmp_path))
    assert main(["judge", "--answers", str(answers), "--judge", "no-such-judge", "--judge-model", "fake:echo",
                 "--data-dir", data]) == 2
    assert "unknown judge 'no-such-judge'" in capsys.readouterr().err
    assert main(["judge", "--answers", str(tmp_path / "missing"), "--judge", "mt-bench-single",
                 "--judge-model", "fake:echo", "--data-dir", data]) == 2
    assert main(["judge", "--answers", str(answers), "--judge", "mt-bench-single", "--data-dir", data]) == 2
    assert "--judge-model" in capsys.readouterr().err
    assert main(["judge", "--answers", str(answers), "--judge", "mt-bench-pair", "--judge-model", "fake:echo",
                 "--baseline", "nobody", "--data-dir", data]) == 2


def test_probability_mode_by_flag(setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answers, _ = setup
    script = tmp_path / "prob.yaml"
    script.write_text('loglikelihood:\n  "8]]": -0.2231\n  "4]]": -2.0\n')  # p(8) = 0.8, p(4) = 0.135
    code = main(["judge", "--answers", str(answers), "--judge", "mt-bench-single", "--judge-mode", "probability",
                 "--judge-model", f"fake:{script}", "--data-dir", str(_demo_data(tmp_path)), "--turns", "1",
                 "-o", str(tmp_path / "runs")])
    assert code == 0
    run = Path(capsys.readouterr().out.strip().splitlines()[-1])
    results = json.loads((run / "results.json").read_text())
    assert results["judge"]["mode"] == "probability"
    rel = results["reliability"]
    assert rel["valid_rate"] == 1.0 and rel["rules"] == {"probability": 12} and rel["low_confidence"] == 0
    # the other eight options get the fake's small hash-derived probabilities: the mean sits just below 8
    assert 7.0 < results["scores"]["x"]["mean"] < 8.0
    row = json.loads((run / "samples" / "mt_bench.jsonl").read_text().splitlines()[0])
    part = row["votes"][0]["parts"][0]
    assert set(part["distribution"]) == {str(k) for k in range(1, 11)} and part["valid_mass"] > 0.9


def test_judge_calls_are_cached_and_votes_stay_distinct(setup: tuple[Path, Path], tmp_path: Path) -> None:
    from evalkit.backends._fake import from_script
    from evalkit.judges import JudgeConfig
    from evalkit.judges._command import JudgeRunOptions, run_judge

    answers, _ = setup
    inner = from_script({"replies": [{"match": ".*", "texts": ["[[4]]", "[[6]]", "[[9]]"]}]})
    options = JudgeRunOptions(answers=answers, judge=JudgeConfig("mt-bench-single", models=("j",), votes=3),
                              data_dir=_demo_data(tmp_path), output=tmp_path / "runs", turns=(1,),
                              cache=tmp_path / "cache.sqlite", echo=lambda m: None, bootstrap_rounds=10)
    first = run_judge(options, backend_factory=lambda s, a: inner)
    calls = inner.calls["generate"]
    second = run_judge(options, backend_factory=lambda s, a: inner)
    assert calls == 3 * 12 and inner.calls["generate"] == calls  # the rerun was served from the cache
    for run in (first, second):
        assert run is not None
        rows = [json.loads(line) for line in (run / "samples" / "mt_bench.jsonl").read_text().splitlines()]
        assert all(sorted(v["value"] for v in r["votes"]) == [4.0, 6.0, 9.0] for r in rows)


def test_both_modes_vote_in_one_panel_and_are_compared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """--judge-mode generate,probability: the same judge model votes twice per item, once per mode, and the
    reliability report carries the agreement between the modes (κ on the discretised scores)."""
    monkeypatch.delenv("EVALKIT_DATA_DIR", raising=False)
    script = tmp_path / "both.yaml"
    script.write_text("replies:\n"
                      "  - match: 'MODEL-X'\n    texts: ['Good. Rating: [[7]]']\n"
                      "  - match: '.*'\n    texts: ['Poor. Rating: [[2]]']\n"
                      "loglikelihood: {'7]]': -0.1, '2]]': -3.0}\n")  # probability mode: ~7 for everyone
    code = main(["judge", "--answers", str(_answers(tmp_path / "answers")), "--judge", "mt-bench-single",
                 "--judge-model", f"fake:{script}", "--judge-mode", "generate,probability", "--turns", "1",
                 "--data-dir", str(_demo_data(tmp_path)), "-o", str(tmp_path / "runs"), "--no-cache"])
    assert code == 0
    run = Path(capsys.readouterr().out.strip().splitlines()[-1])
    results = json.loads((run / "results.json").read_text())
    rel = results["reliability"]
    modes = rel["between_modes"][f"fake:{script}"]
    # generate: x→7, y→2, z→2; probability rounds to 7 for all (other options at the fake's hash floor)
    samples = [json.loads(line) for line in next((run / "samples").glob("*.jsonl")).read_text().splitlines()]
    by_judge: dict[str, dict[str, float]] = {}
    for s in samples:
        for v in s["votes"]:
            by_judge.setdefault(v["judge"].rsplit("[", 1)[1], {})[s["id"]] = v["value"]
    assert set(by_judge) == {"generate]", "probability]"} and len(samples) == 12
    same = sum(round(by_judge["generate]"][k]) == round(by_judge["probability]"][k]) for k in by_judge["generate]"])
    assert modes["percent_agreement"] == pytest.approx(same / 12)
    assert 0 < same < 12  # the modes agree on x's answers only: a comparison that can tell them apart
