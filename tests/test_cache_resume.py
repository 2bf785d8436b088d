"""Kill -9 a real `evalkit run` mid-way, rerun: completed requests come from the cache, the results equal an
uninterrupted run, and a third run makes no backend calls at all."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from evalkit import runner
from evalkit.backends._fake import FakeBackend

# A FakeBackend that is slow (so the run can be killed mid-way) and has the same identity as fake:echo.
_SLOW_MODULE = '''
import time
from evalkit.backends._fake import FakeBackend

class SlowFake(FakeBackend):
    def loglikelihood(self, requests):
        time.sleep(0.03 * len(requests))
        return super().loglikelihood(requests)

def create(model, args):
    return SlowFake()
'''
_DRIVER = ("import sys; from evalkit.backends import register_backend_kind; "
           "register_backend_kind('slowfake', 'slowfake_mod:create'); "
           "from evalkit.cli import main; sys.exit(main(sys.argv[1:]))")


def _rows(cache: Path) -> int:
    if not cache.exists():
        return 0
    try:
        with sqlite3.connect(str(cache), timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
    except sqlite3.Error:
        return 0  # the schema is not there yet


def _run_in_process(backend: FakeBackend, out: Path, data: Path, **kw: Any) -> dict[str, Any]:
    from evalkit.store import read_results

    path = runner.execute(runner.RunOptions(model=backend, tasks="cmmlu", data_dir=data, output=out, quiet=True,
                                            **kw))
    results = read_results(path)
    samples = (path / "samples" / "cmmlu.jsonl").read_text(encoding="utf-8")
    return {"tasks": results["tasks"], "samples": samples}


@pytest.mark.integration  # kills and reruns a CLI subprocess
def test_kill_9_then_rerun_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):  # no hub look-ups: the demo set is local
        monkeypatch.setenv(name, "1")
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "slowfake_mod.py").write_text(_SLOW_MODULE, encoding="utf-8")
    data = tmp_path / "no-data"  # empty: the run uses evalkit's bundled demo questions, offline
    data.mkdir()
    cache, out = tmp_path / "cache.sqlite", tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": f"{tmp_path / 'mods'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "EVALKIT_DATA_DIR": str(data)}
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER, "run", "--model", "slowfake:echo", "--tasks", "cmmlu",
                             "--data-dir", str(data), "--cache", str(cache), "-o", str(out)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while _rows(cache) == 0:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the first run ended before writing the cache: {proc.stderr.read() if proc.stderr else ''!r}")
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    done_before_kill = _rows(cache)

    reference = FakeBackend()
    uninterrupted = _run_in_process(reference, tmp_path / "ref", data, no_cache=True)
    total = reference.calls["loglikelihood"]
    assert 0 < done_before_kill < total  # it really was killed mid-way

    resumed_backend = FakeBackend()
    resumed = _run_in_process(resumed_backend, out, data, cache=cache)
    assert resumed_backend.calls["loglikelihood"] == total - done_before_kill  # nothing recomputed
    assert resumed == uninterrupted

    third = FakeBackend()
    assert _run_in_process(third, out, data, cache=cache) == uninterrupted
    assert third.calls == {"loglikelihood": 0, "rolling": 0, "generate": 0}
