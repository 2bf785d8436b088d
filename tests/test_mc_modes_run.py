"""Generative and CoT multiple choice through the runner: selectable mode, k samples, circular, calibration."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from evalkit.backends._fake import FakeBackend
from evalkit.cli import main
from evalkit.errors import ConfigError
from evalkit.records import load_record
from evalkit.runner import RunOptions, execute


def _run(tmp_path: Path, backend: FakeBackend, **task_args: str) -> Path:
    return execute(RunOptions(model=backend, tasks="cmmlu:computer_science", limit=4, output=tmp_path,
                              task_args=task_args, quiet=True, no_cache=True))


def test_cot_mode_is_recorded_with_extraction_stages(tmp_path: Path) -> None:
    backend = FakeBackend(replies=[(re.compile("队列"), ["先看A，再看C……都不对，所以选B。"]),
                                   (re.compile("."), ["让我想想。\n答案：A"])])
    record = load_record(_run(tmp_path, backend, mode="cot"))
    task = record.tasks["cmmlu"]
    assert task.info["mode"] == "cot" and task.info["max_tokens"] == 1024
    assert task.info["extraction_stages"] == {"strict": 3, "lenient": 1, "model": 0, "none": 0}
    assert task.metric("unextractable_rate").value == 0.0  # type: ignore[union-attr]
    assert not task.is_higher_better("unextractable_rate")


def test_repeats_give_k_sample_metrics(tmp_path: Path) -> None:
    backend = FakeBackend(replies=[(re.compile("."), ["答案：B"])])
    path = execute(RunOptions(model=backend, tasks="cmmlu:computer_science", limit=4, output=tmp_path, repeats=3,
                              task_args={"mode": "generate"}, quiet=True, no_cache=True))
    task = load_record(path).tasks["cmmlu"]
    assert task.info["repeats"] == 3 and task.info["seeds"] == [0, 1, 2]
    acc = task.metric("acc").value  # type: ignore[union-attr]
    # every sample answers B: majority, mean and pass@3 all equal the single-sample accuracy
    for name in ("maj@3", "mean@3", "pass@3"):
        assert task.metric(name).value == pytest.approx(acc)  # type: ignore[union-attr]


def test_circular_loglikelihood_reports_acc_circular_and_calibration(tmp_path: Path) -> None:
    record = load_record(_run(tmp_path, FakeBackend(), circular="true"))
    task = record.tasks["cmmlu"]
    assert task.info["mode"] == "loglikelihood" and task.info["circular"] is True
    circ = task.metric("acc_circular").value  # type: ignore[union-attr]
    assert circ is not None and circ <= task.metric("acc").value  # type: ignore[union-attr,operator]
    assert task.metric("ece") is not None and task.metric("brier") is not None
    assert not task.is_higher_better("ece") and not task.is_higher_better("brier")


@pytest.mark.parametrize(("args", "needle"), [
    ({"mode": "bogus"}, "mode=bogus"),
    ({"mode": "loglikelihood", "extractor": "smollm2"}, "extractor"),
    ({"repeats": "0"}, "repeats"),
])
def test_bad_mode_flags_are_one_line_errors(tmp_path: Path, args: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        _run(tmp_path, FakeBackend(), **args)


def test_cli_repeats_zero_and_unknown_extractor_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["run", "--model", "fake:echo", "--tasks", "cmmlu:computer_science", "--limit", "2", "--output",
            str(tmp_path)]
    assert main([*base, "--repeats", "0"]) == 2
    assert "--repeats 0" in capsys.readouterr().err
    assert main([*base, "--task-args", "mode=generate,extractor=nosuch:model"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "extractor=nosuch:model" in errors[0] and "evalkit models" in errors[0]


def test_run_page_shows_the_mode_and_extraction_stages(tmp_path: Path) -> None:
    from evalkit.report import build_site, load_runs

    backend = FakeBackend(replies=[(re.compile("队列"), ["我不知道。"]), (re.compile("."), ["答案：A"])])
    run = _run(tmp_path / "runs", backend, mode="generate")
    build_site(load_runs(run), tmp_path / "site")
    (page,) = list((tmp_path / "site" / "runs").glob("*.html"))
    text = page.read_text(encoding="utf-8")
    assert "How each task was scored" in text and "generate" in text
    assert "strict 3, lenient 0, model 0, none 1" in text
