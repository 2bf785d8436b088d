"""CLI behaviour: exit codes, one-line errors without tracebacks, fast listing, a full run on the fake backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.cli import main

DATA = Path(__file__).parent / "data" / "core"


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "EVALKIT_DATA_DIR"} | {"EVALKIT_OFFLINE": "1",
                                                                            "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "evalkit", *args], capture_output=True, text=True, cwd=cwd, env=env, check=False,
                          timeout=300)


def test_help_lists_commands_without_importing_torch() -> None:
    code = ("import sys; from evalkit.cli import main; rc = main(['--help']); "
            "print('HEAVY' if {'torch', 'transformers'} & set(sys.modules) else 'LIGHT')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert "run" in out.stdout and "tasks" in out.stdout and "models" in out.stdout
    assert out.stdout.strip().endswith("LIGHT")


def test_tasks_and_models_list_with_descriptions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "cmmlu" in out and "multiple_choice" in out and "67" in out
    assert main(["models"]) == 0
    assert "smollm2" in capsys.readouterr().out


@pytest.mark.parametrize("args,fragment", [
    (["run", "--model", "nosuch", "--tasks", "cmmlu"], "unknown model 'nosuch'"),
    (["run", "--model", "fake:echo", "--tasks", "nosuchtask"], "unknown task 'nosuchtask'"),
    (["run", "--model", "fake:echo", "--tasks", "cmmlu:nosubject"], "unknown subset(s) nosubject"),
    (["run", "--model", "fake:echo", "--tasks", "cmmlu", "--task-args", "prompt_style=weird"], "prompt_style=weird"),
    (["run", "--model", "fake:echo", "--tasks", "cmmlu", "--model-args", "novalue"], "not key=value"),
])
def test_user_errors_exit_2_with_one_line(tmp_path: Path, args: list[str], fragment: str) -> None:
    result = _cli(*args, "--output", str(tmp_path / "runs"))
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and fragment in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.integration  # a CLI subprocess that imports transformers
def test_unreachable_hub_model_is_a_one_line_error(tmp_path: Path) -> None:
    result = _cli("run", "--model", "hf:evalkit-test/no-such-model", "--tasks", "cmmlu", "--limit", "1",
                  "--output", str(tmp_path / "runs"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot load model 'evalkit-test/no-such-model'" in result.stderr


def test_missing_data_is_a_one_line_error_and_keeps_earlier_results(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nkind: multiple_choice\ndata: {local: 'nowhere/{subject}.csv'}\n"
                   "prompt_styles: {default: {doc_to_text: '{{ question }}'}}\n", encoding="utf-8")
    result = _cli("run", "--model", "fake:echo", "--tasks", f"cmmlu:agronomy,{bad}", "--limit", "2",
                  "--output", str(tmp_path / "runs"), "--no-cache", "--data-dir", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "bad: no data found" in result.stderr
    run_dir = next((tmp_path / "runs").iterdir())
    results = json.loads((run_dir / "results.json").read_text())
    assert "cmmlu" in results["tasks"]  # the demo-backed task finished before the failure and was kept


def test_full_run_on_the_fake_backend_writes_the_run_directory(tmp_path: Path) -> None:
    result = _cli("run", "--model", "fake:echo", "--tasks", "cmmlu,ceval,wikitext", "--limit", "3",
                  "--output", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    run_dir = next(p for p in (tmp_path / "runs").iterdir() if p.is_dir())
    results = json.loads((run_dir / "results.json").read_text())
    assert set(results["tasks"]) == {"cmmlu", "ceval", "wikitext"}
    cmmlu = results["tasks"]["cmmlu"]
    assert cmmlu["info"]["data_origin"] == "demo" and cmmlu["n"] == 9
    assert {"acc", "acc_stderr", "acc_macro"} <= set(cmmlu["metrics"])
    assert "wikitext" in results["timing"] and results["model"]["backend"] == "fake"
    sample = json.loads((run_dir / "samples" / "cmmlu.jsonl").read_text().splitlines()[0])
    assert {"id", "subset", "doc_index", "prompt", "target", "prediction", "correct", "choice_logprobs"} <= set(sample)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["tasks"]["cmmlu"]["spec_sha256"] and manifest["tasks"]["cmmlu"]["data_files"]
    assert "evalkit" in manifest["versions"] and manifest["seed"] == 0
    assert "cmmlu" in result.stdout and "acc" in result.stdout  # the results table
