"""Scale: 30 models x 10 tasks with 2,480 samples must build in a few seconds, with small pages."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from types import ModuleType

import pytest

from evalkit.report import build_site, load_runs
from evalkit.report._model import discover_results

FIXTURES = Path(__file__).parent / "data" / "report"
# Loose on purpose: about 2 s on a busy 2-core machine; the bound only catches an order-of-magnitude slip.
BOUND_S = 30.0


def _fixtures() -> ModuleType:
    spec = importlib.util.spec_from_file_location("report_fixtures", FIXTURES / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.integration  # builds a 300-run site
def test_thirty_models_ten_tasks_build_fast(tmp_path: Path) -> None:
    _fixtures().write_synthetic_runs(tmp_path / "runs", models=30, tasks=10, samples=2480)
    started = time.perf_counter()
    runs = [run for p in discover_results([tmp_path / "runs"]) for run in load_runs(p)]
    summary = build_site(runs, tmp_path / "site")
    elapsed = time.perf_counter() - started
    print(f"report of 30 models x 10 tasks, 2,480 samples: {elapsed:.2f} s, {summary.pages} pages")
    assert summary.models == 30 and summary.tasks == 10 and summary.sample_pages == 30
    assert elapsed < BOUND_S
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert index.count('<td class="model"') == 30
    largest = max(p.stat().st_size for p in (tmp_path / "site").rglob("*.html"))
    assert largest < 1_500_000, f"largest page {largest} bytes"
