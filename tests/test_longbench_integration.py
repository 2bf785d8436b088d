"""LongBench on the embedded SmolLM2 through the transformers backend (slow: marked integration)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from evalkit.metrics import _longbench as lb
from evalkit.tasks._kind import RunContext
from evalkit.tasks._spec import load_spec_file
from evalkit.tasks.longcontext import run

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


class _Sink:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def write(self, samples: Sequence[dict[str, Any]]) -> None:
        self.rows.extend(samples)


@pytest.fixture(scope="module")
def smollm2() -> Any:
    from evalkit.backends import load_backend

    return load_backend("smollm2")


def test_local_datasets_on_smollm2(data_dir: Path, smollm2: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = load_spec_file(ROOT / "tasks" / "longbench.yaml")
    sink = _Sink()
    ctx = RunContext(data_dir=data_dir, limit=1, subsets=("multifieldqa_zh", "multi_news", "passage_retrieval_zh"),
                     task_args={"max_length": "768", "max_new_tokens": "16", "full_prompts": "true"})
    out = run(spec, smollm2, ctx, sink)
    assert out.n == 3 and set(out.subtasks) == set(ctx.subsets)
    for s in sink.rows:
        assert s["truncated"] and s["kept_tokens"] == 768 and s["prompt_tokens"] > 768
        # the decoded halves re-encode to about the budget (token boundaries may shift by a few)
        assert abs(len(smollm2.encode(s["prompt"])) - 768) <= 8
        assert isinstance(s["prediction"], str) and s["chat_template"]
        assert s["score"] == lb.score_item(s["subset"], s["prediction"], s["target"])
    zh = next(s for s in sink.rows if s["subset"] == "multifieldqa_zh")
    assert zh["prompt"].startswith("阅读以下文字") and zh["prompt"].endswith("回答：")
    assert 0.0 <= out.metrics["score"] <= 100.0


def test_memory_benchmark_small_context(tmp_path: Path) -> None:
    """The benchmark's verdict logic, at a small context: the generate step stays far below full logits.

    It runs in a fresh process, as the benchmark is meant to: in this one, memory freed by earlier tests is
    reused by the allocator and the resident set does not grow when a tensor is made.
    """
    import json
    import subprocess
    import sys

    out = tmp_path / "mem.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "longbench_memory.py"), "--context", "2048", "--new-tokens", "2",
         "--control", "--control-context", "2048", "--json", str(out)],
        check=False, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert result["context_tokens"] == 2048
    assert result["step_delta_mb"] < result["full_vocab_logits_fp32_mb"] / 2
    # the control forward does show a full logits tensor, so the measurement can see one
    assert result["control_peak_delta_mb"] > 0.8 * result["control_full_logits_mb"]
