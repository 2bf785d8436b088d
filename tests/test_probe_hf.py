"""`evalkit probe` passes against `evalkit serve` over a real transformers model (the tiny random Llama, built
offline from a config): its echoed prompt logprobs agree with the logprobs it reports when generating."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.server import create_app, serve_in_thread

pytestmark = pytest.mark.integration


def test_probe_passes_against_evalkit_serve_over_transformers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from evalkit.backends import load_backend

    monkeypatch.setenv("EVALKIT_PROBE_CACHE", str(tmp_path / "probes.json"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with serve_in_thread(create_app(load_backend("tiny-llama"), "tiny")) as url:
        code = main(["probe", "--model", "openai:tiny", "--base-url", url, "--model-args", "timeout=300"])
    out, err = capsys.readouterr()
    assert code == 0, err
    alignment = next(line for line in out.splitlines() if line.startswith("echo alignment"))
    assert " ok " in alignment and "aligned at" in alignment
    assert " ok " in next(line for line in out.splitlines() if line.startswith("text offsets"))
