"""Every CLI usage error and every bad option is one line on stderr and exit 2, before anything is loaded.

Runs `evalkit.cli.main` in-process (the same handler the console script uses), against the typer and click
actually installed; a subprocess check covers the console entry point itself.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.cli import main


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "Traceback" not in err
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(("args", "needle"), [
    (["run", "--limit", "abc"], "--limit"),
    (["run", "--bogus-flag"], "--bogus-flag"),
    (["bogus-command"], "bogus-command"),
    (["gate"], "Missing argument"),
    (["run", "--num-fewshot", "-3"], "--num-fewshot -3"),
    (["run", "--limit", "-5"], "--limit -5"),
    (["run", "--limit", "0"], "--limit 0"),
    (["run", "--batch-size", "0"], "--batch-size 0"),
    (["run", "--batch-size", "many"], "--batch-size many"),
    (["run", "--cache", "x.sqlite", "--no-cache"], "--no-cache"),
    (["run", "--judge-votes", "0"], "--judge-votes 0"),
    (["run", "--task-args", "oops"], "--task-args"),
    (["run", "--executor", "slurm"], "--executor slurm"),
    (["run", "--tasks", "wikitext", "--repeats", "3"], "wikitext (perplexity)"),
])
def test_usage_errors(args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra = ["--output", str(tmp_path / "runs")] if args[0] == "run" else []
    assert main([*args, *extra]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert needle in line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing was started


def test_task_args_error_shows_a_task_args_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--task-args", "oops"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "--task-args" in line.split("example:")[-1] and "--model-args" not in line


def test_data_dir_that_is_missing_or_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "data.txt"
    a_file.write_text("x", encoding="utf-8")
    for bad in (tmp_path / "nope", a_file):
        assert main(["run", "--model", "fake:echo", "--tasks", "cmmlu", "--data-dir", str(bad),
                     "--output", str(tmp_path / "runs")]) == 2
        assert str(bad) in _one_error_line(capsys.readouterr().err)


def test_output_under_a_file_names_the_output_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x", encoding="utf-8")
    assert main(["run", "--model", "fake:echo", "--tasks", "cmmlu:agronomy", "--limit", "1",
                 "--output", str(blocker / "runs")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "--output" in line and str(blocker / "runs") in line and "cache" not in line


def test_report_output_under_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    assert main(["run", "--model", "fake:echo", "--tasks", "cmmlu:agronomy", "--limit", "1", "--output",
                 str(runs)]) == 0
    capsys.readouterr()
    blocker = tmp_path / "blocker"
    blocker.write_text("x", encoding="utf-8")
    assert main(["report", str(runs), "-o", str(blocker / "site")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "report -o" in line and str(blocker / "site") in line


@pytest.mark.integration
def test_console_script_usage_error_has_no_traceback() -> None:
    proc = subprocess.run([sys.executable, "-m", "evalkit.cli", "run", "--limit", "abc"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 2
    _one_error_line(proc.stderr)


def test_warnings_are_not_hard_wrapped_when_stderr_is_not_a_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVALKIT_DATA_DIR", raising=False)  # the demo set's (long) warning is the one checked
    assert main(["run", "--model", "fake:echo", "--tasks", "cmmlu:agronomy", "--limit", "1",
                 "--output", str(tmp_path / "runs")]) == 0
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if x.startswith("warning: cmmlu: using evalkit's small DEMO set")]
    assert len(line) > 120 and line.rstrip().endswith("pass --data-dir for real numbers")  # one whole line
