"""An unreachable hub is found out by one short probe per process; then evalkit runs offline and says so once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from evalkit import _offline


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def fresh_probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("EVALKIT_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(name, "0")  # restored after the test, whatever the probe sets
    _offline.forget()
    yield
    _offline.forget()


def test_unreachable_hub_goes_offline_fast_and_says_so_once(fresh_probe: None, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EVALKIT_HUB_PROBE", f"127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    assert _offline.hub_reachable() is False
    assert _offline.hub_reachable() is False  # cached: no second probe, no second line
    assert time.monotonic() - started < _offline.PROBE_TIMEOUT_S + 0.5
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_DATASETS_OFFLINE"] == "1"
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "is not reachable; running offline" in lines[0] and "EVALKIT_OFFLINE=1" in lines[0]


def test_reachable_hub(fresh_probe: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        monkeypatch.setenv("EVALKIT_HUB_PROBE", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert _offline.hub_reachable() is True
    assert os.environ["HF_HUB_OFFLINE"] == "0"


def test_offline_asked_for_skips_the_probe(fresh_probe: None, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EVALKIT_OFFLINE", "1")
    monkeypatch.setattr(_offline, "_connects", lambda *a: pytest.fail("probed although offline was asked for"))
    assert _offline.hub_reachable() is False
    assert capsys.readouterr().err == ""
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_probe_target_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVALKIT_HUB_PROBE", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert _offline.probe_target() == ("huggingface.co", 443)
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.local:8080")
    assert _offline.probe_target() == ("mirror.local", 8080)
    monkeypatch.setenv("EVALKIT_HUB_PROBE", "10.0.0.1:9")
    assert _offline.probe_target() == ("10.0.0.1", 9)


@pytest.mark.integration
def test_hub_model_without_hub_fails_in_one_line_within_seconds(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "EVALKIT_OFFLINE", "EVALKIT_DATA_DIR")}
    env |= {"EVALKIT_HUB_PROBE": f"127.0.0.1:{_closed_port()}", "HF_HOME": str(tmp_path / "hf")}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "evalkit", "run", "--model", "llama", "--tasks", "cmmlu",
                             "--limit", "1", "--output", str(tmp_path / "runs")],
                            capture_output=True, text=True, env=env, timeout=300, check=False)
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    assert "Retrying" not in result.stderr and "Traceback" not in result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "cannot load model 'meta-llama/Llama-3.2-1B-Instruct'" in error[0]
    assert "EVALKIT_OFFLINE" in error[0]
    assert sum("is not reachable; running offline" in line for line in result.stderr.splitlines()) == 1
    assert elapsed < 90  # about 50 s of retries before; what is left is interpreter and torch start-up


@pytest.mark.integration
def test_data_without_hub_falls_back_to_the_demo_set_at_once(tmp_path: Path) -> None:
    """With `datasets` installed and no hub, a run used to wait ~23 s in retries before the demo set."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "EVALKIT_OFFLINE", "EVALKIT_DATA_DIR")}
    env |= {"EVALKIT_HUB_PROBE": f"127.0.0.1:{_closed_port()}", "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run([sys.executable, "-m", "evalkit", "run", "--model", "fake:echo", "--tasks",
                             "cmmlu:agronomy,ceval:computer_network", "--limit", "2", "--output", str(tmp_path / "runs")],
                            capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert sum("is not reachable; running offline" in line for line in lines) == 1
    assert not any("Retrying" in line or "Name or service" in line for line in lines)
    assert sum("DEMO set" in line for line in lines) == 2


def test_a_caller_with_its_own_error_can_leave_the_note_out(fresh_probe: None, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EVALKIT_HUB_PROBE", f"127.0.0.1:{_closed_port()}")
    assert _offline.hub_reachable(announce=False) is False
    assert capsys.readouterr().err == ""
    assert _offline.hub_reachable() is False  # a later caller still tells the user, once
    assert capsys.readouterr().err.count("not reachable") == 1
