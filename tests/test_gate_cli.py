"""`evalkit gate` end to end: exit codes 0/1/2, the table on stdout, JUnit XML."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from evalkit.cli import main

RUNS = Path(__file__).parent / "data" / "gate"


def _gate(*args: str) -> int:
    return main(["gate", *args])


def test_pass_exits_0_and_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    code = _gate(str(RUNS / "noise" / "results.json"), "--baseline", str(RUNS / "base"),
                 "--min", "cmmlu.acc=0.5", "--min", "cmmlu/STEM.acc=0.5")
    out = capsys.readouterr().out
    assert code == 0
    assert "cmmlu/STEM.acc" in out and "cmmlu.acc vs baseline" in out and "mcnemar" in out
    assert "FAIL" not in out and "gate passed: 5 of 5" in out


def test_threshold_failure_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert _gate(str(RUNS / "base"), "--min", "cmmlu.acc=0.65") == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "required at least 0.65" in out


def test_regression_exits_1_and_writes_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junit = tmp_path / "reports" / "gate.xml"
    code = _gate(str(RUNS / "drop"), "--baseline", str(RUNS / "base"), "--min", "cmmlu.acc=0.3",
                 "--junit", str(junit))
    assert code == 1
    assert "significant drop" in capsys.readouterr().out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("4", "3")
    cases = {c.get("name"): c.find("failure") is not None for c in suite.iter("testcase")}
    assert cases == {"cmmlu.acc >= 0.3": False, "regression cmmlu.acc": True,
                     "regression wikitext.word_perplexity": True, "regression longbench.score": True}
    failure = next(c for c in suite.iter("testcase") if c.get("name") == "regression cmmlu.acc").find("failure")
    assert failure is not None and "p=" in (failure.get("message") or "") and "95% CI" in (failure.text or "")


def test_max_drop_turns_a_small_significant_drop_into_a_pass() -> None:
    assert _gate(str(RUNS / "drop"), "--baseline", str(RUNS / "base"), "--task", "cmmlu", "--max-drop", "0.2") == 0
    args = [str(RUNS / "drop"), "--baseline", str(RUNS / "base"), "--max-drop", "0.2"]
    assert _gate(*args, "--max-drop", "wikitext=5") == 0
    assert _gate(*args, "--max-drop", "wikitext=1") == 1


@pytest.mark.parametrize("args,needle", [
    (["--baseline", str(RUNS / "base")], "prompt hash differs between the runs (prompt_sha256"),
    (["--min", "cmmlu.acc"], "TASK.METRIC=NUMBER"),
    (["--min", "cmmlu.nope=0.1"], "no metric 'nope'"),
    ([], "nothing to check"),
    (["--min", "cmmlu.acc=0.1", "--max-drop", "0.1"], "--max-drop needs --baseline"),
])
def test_usage_errors_exit_2_with_one_line(args: list[str], needle: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert _gate(str(RUNS / "prompt_changed"), *args) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and err.startswith("error:") and len(err.splitlines()) == 1


def test_missing_results_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _gate(str(tmp_path / "nope.json"), "--min", "cmmlu.acc=0.1") == 2
    assert "no such results file" in capsys.readouterr().err


@pytest.mark.integration  # several CLI subprocesses
def test_real_process_exit_codes() -> None:
    """Exit statuses of a real process (0 is covered in-process above); no traceback on 1 or 2."""
    script = "import sys; from evalkit.cli import main; sys.exit(main(sys.argv[1:]))"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", script, "gate", *args], capture_output=True, text=True,
                              timeout=120, check=False)

    failed = run(str(RUNS / "drop"), "--baseline", str(RUNS / "base"), "--task", "cmmlu", "--resamples", "1000")
    usage = run(str(RUNS / "prompt_changed"), "--baseline", str(RUNS / "base"))
    assert (failed.returncode, usage.returncode) == (1, 2)
    assert "Traceback" not in failed.stderr + usage.stderr
    assert "regression cmmlu.acc" not in failed.stdout and "cmmlu.acc vs baseline" in failed.stdout
