"""vLLM on a GPU against the transformers backend on the same weights (a tiny random Llama saved to disk).

Skipped unless vLLM and CUDA are present (install the `[vllm]` extra on a GPU machine):

    pytest tests/test_openai_vllm_gpu.py -rs
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from evalkit.types import GenConfig, LoglikelihoodRequest, Message

pytestmark = pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed "
                                "(GPU machines only: pip install 'evalkit[vllm]')")

REQS = [LoglikelihoodRequest("问题：1+1等于几？\nA. 1\nB. 2\n答案：", f" {x}") for x in "AB"] + [
    LoglikelihoodRequest("The capital of France is", " Paris"), LoglikelihoodRequest("", "Hello world")]


def test_vllm_matches_transformers_on_the_same_weights(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from evalkit.backends import load_backend
    from evalkit.backends._vllm import create

    hf = load_backend("tiny-llama", {"hidden_size": "256", "intermediate_size": "512", "max_length": "512"})
    folder = tmp_path / "tiny"
    hf.model.save_pretrained(folder)  # type: ignore[attr-defined]
    hf.tokenizer.save_pretrained(folder)  # type: ignore[attr-defined]
    vllm = create(str(folder), {"dtype": "float32", "max_model_len": "512", "gpu_memory_utilization": "0.3",
                                "enforce_eager": "true"})
    want, got = hf.loglikelihood(REQS), vllm.loglikelihood(REQS)
    assert [g.logprob for g in got] == pytest.approx([w.logprob for w in want], abs=2e-3)
    assert [g.is_greedy for g in got] == [w.is_greedy for w in want]
    text = "WikiText style paragraph. " * 60  # longer than one 512-token window
    rolled_hf, rolled_vllm = hf.loglikelihood_rolling([text])[0], vllm.loglikelihood_rolling([text])[0]
    assert rolled_vllm.num_tokens == rolled_hf.num_tokens and rolled_vllm.windows >= 2
    assert rolled_vllm.total == pytest.approx(rolled_hf.total, rel=1e-3)
    done = vllm.generate([(Message("user", "hi"),)], GenConfig(max_tokens=5, n=2, temperature=0.8, seed=1))[0]
    assert len(done.texts) == 2 and done.usage.completion_tokens > 0
