"""evaluate(): a thin wrapper over the runner (RunOptions -> execute -> RunResult.load)."""

from __future__ import annotations

import json
import shutil
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import evalkit
from evalkit.api import RunResult, evaluate
from evalkit.errors import ConfigError

RUNS = Path(__file__).parent / "data" / "gate"
DEMO = Path(__file__).resolve().parents[1] / "tasks" / "demo"


@dataclass(frozen=True)
class _Options:
    model: Any
    tasks: str
    limit: int | None = None
    output: Path = Path("runs")
    data_dir: Path | None = None
    judge_models: tuple[str, ...] = field(default_factory=tuple)


@pytest.fixture()
def fake_runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Any]:
    """Replace evalkit.runner with a recorder whose execute() 'writes' a copy of the base run."""
    calls: list[Any] = []

    def execute(options: _Options) -> Path:
        calls.append(options)
        return Path(shutil.copytree(RUNS / "base", tmp_path / "run"))

    module = types.ModuleType("evalkit.runner")
    module.RunOptions = _Options  # type: ignore[attr-defined]
    module.execute = execute  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "evalkit.runner", module)
    return calls


def test_evaluate_builds_options_and_loads_the_run(fake_runner: list[Any], tmp_path: Path) -> None:
    result = evaluate("smollm2", ["cmmlu:agronomy", "ceval"], limit=5, output=str(tmp_path / "out"),
                      judge_models=["openai:a", "openai:b"])
    (options,) = fake_runner
    assert options == _Options(model="smollm2", tasks="cmmlu:agronomy,ceval", limit=5, output=tmp_path / "out",
                               judge_models=("openai:a", "openai:b"))
    assert isinstance(result, RunResult) and result.path == tmp_path / "run"
    # the loaded score is the one the copied run's samples give (200 rows, 120 correct), not a re-read of itself
    rows = [json.loads(line) for line in (result.path / "samples" / "cmmlu.jsonl").read_text("utf-8").splitlines()]
    assert len(rows) == 200 and result.score("cmmlu", "acc") == pytest.approx(sum(r["correct"] for r in rows) / 200)


def test_evaluate_passes_a_backend_object_through(fake_runner: list[Any]) -> None:
    backend = object()
    evalkit.evaluate(backend, "cmmlu")
    assert fake_runner[0].model is backend and fake_runner[0].tasks == "cmmlu"


def test_unknown_option_is_a_config_error(fake_runner: list[Any]) -> None:
    with pytest.raises(ConfigError, match="evaluate\\(\\).*colour"):
        evaluate("smollm2", "cmmlu", colour="blue")
    assert fake_runner == []


def test_evaluate_with_the_real_runner_on_the_demo_data(tmp_path: Path) -> None:
    result = evaluate("fake:echo", ["cmmlu"], data_dir=DEMO, output=tmp_path, limit=4, no_cache=True, quiet=True)
    assert 0.0 <= result.score("cmmlu", "acc") <= 1.0
    samples = result.samples("cmmlu")
    assert len(samples) == result.tasks["cmmlu"].n == 12  # 3 demo subjects x limit 4
    assert sum(s["correct"] for s in samples) / len(samples) == pytest.approx(result.score("cmmlu", "acc"))


def test_evaluate_accepts_a_loaded_backend_and_two_real_runs_gate_cleanly(tmp_path: Path) -> None:
    from evalkit.backends import load_backend
    from evalkit.gate import run_gate

    first = evaluate("fake:echo", "ceval", data_dir=DEMO, output=tmp_path, limit=3, no_cache=True, quiet=True)
    second = evaluate(load_backend("fake:echo"), "ceval", data_dir=DEMO, output=tmp_path, limit=3, no_cache=True,
                      quiet=True)
    assert second.score("ceval", "acc") == first.score("ceval", "acc")
    report = run_gate(second, baseline=first)  # same task spec, prompt and data: manifests agree
    assert report.passed and report.notes == ()
    (check,) = report.checks
    assert check.comparison is not None and check.comparison.n == 9 and check.comparison.p_value == 1.0
