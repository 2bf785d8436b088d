"""Generative multiple choice on the embedded model: in-process, and through a real `evalkit serve` on 127.0.0.1
with the OpenAI backend at concurrency 8 — the same extracted letters (serve's batching must not change a greedy
answer)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

from evalkit.backends import load_backend
from evalkit.runner import RunOptions, execute
from evalkit.server import create_app, serve_in_thread

_TASK_ARGS = {"mode": "generate", "max_tokens": "16"}


def _letters(run: Path) -> list[tuple[str, Any, str]]:
    rows = [json.loads(line) for line in (run / "samples" / "ceval.jsonl").read_text(encoding="utf-8").splitlines()]
    return [(r["id"], r["prediction"], r["extraction_stage"]) for r in rows]


def test_generate_mode_in_process_and_through_serve_agree(data_dir: Path, tmp_path: Path) -> None:
    common = {"tasks": "ceval:computer_network", "limit": 6, "num_fewshot": 2, "data_dir": data_dir,
              "task_args": dict(_TASK_ARGS), "quiet": True, "no_cache": True}
    backend = load_backend("smollm2")
    direct = execute(RunOptions(model=backend, output=tmp_path / "direct", **common))
    with serve_in_thread(create_app(backend, "smollm2")) as url:
        served = execute(RunOptions(model="openai:smollm2", base_url=url, concurrency=8, output=tmp_path / "api",
                                    **common))
    assert _letters(direct) == _letters(served)
    results = json.loads((served / "results.json").read_text(encoding="utf-8"))
    assert results["tasks"]["ceval"]["info"]["mode"] == "generate"
    assert results["backend_stats"]["requests"] >= 6
