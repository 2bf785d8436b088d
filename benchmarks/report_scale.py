"""Time `evalkit report` on a synthetic 30 models x 10 tasks with 2,480 samples (issue 7's scale).

    python benchmarks/report_scale.py [--models 30] [--tasks 10] [--samples 2480]

Prints the build time, page count and the largest page; the synthetic runs come from
tests/data/report/make_fixtures.py (invented numbers in evalkit's results.json shape).
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

from evalkit.report import build_site, load_runs
from evalkit.report._model import discover_results

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=30)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--samples", type=int, default=2480)
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("report_fixtures", ROOT / "tests/data/report/make_fixtures.py")
    assert spec is not None and spec.loader is not None
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)
    with tempfile.TemporaryDirectory() as tmp:
        fixtures.write_synthetic_runs(Path(tmp) / "runs", models=args.models, tasks=args.tasks, samples=args.samples)
        started = time.perf_counter()
        runs = [run for p in discover_results([Path(tmp) / "runs"]) for run in load_runs(p)]
        summary = build_site(runs, Path(tmp) / "site")
        elapsed = time.perf_counter() - started
        pages = list((Path(tmp) / "site").rglob("*.html"))
        largest = max(pages, key=lambda p: p.stat().st_size)
        print(f"{args.models} models x {args.tasks} tasks, {args.samples} samples: {elapsed:.2f} s, "
              f"{summary.pages} pages, largest {largest.name} {largest.stat().st_size / 1024:.0f} KiB, "
              f"index {(Path(tmp) / 'site' / 'index.html').stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
