"""vLLM on a GPU against the transformers backend on the same weights (a tiny random Llama saved to disk).

Skipped unless vLLM and CUDA are present (install the `[vllm]` extra on a GPU machine):

    pytest tests/test_openai_vllm_gpu.py -rs -s     # -s shows the compared numbers
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from evalkit.types import GenConfig, LoglikelihoodRequest, Message

pytestmark = pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed "
                                "(GPU machines only: pip install 'evalkit[vllm]')")

REQS = [LoglikelihoodRequest("问题：1+1等于几？\nA. 1\nB. 2\n答案：", f" {x}") for x in "AB"] + [
    LoglikelihoodRequest("The capital of France is", " Paris"), LoglikelihoodRequest("", "Hello world"),
    LoglikelihoodRequest("Answer: ", "yes")]  # trailing context space moves into the continuation


def test_vllm_matches_transformers_on_the_same_weights(tmp_path: Path) -> None:
    import torch

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
    assert vllm.max_length == 512
    want, got = hf.loglikelihood(REQS), vllm.loglikelihood(REQS)
    delta = max(abs(g.logprob - w.logprob) for g, w in zip(got, want))
    print(f"\nloglikelihood hf   {[round(w.logprob, 5) for w in want]} greedy {[w.is_greedy for w in want]}")
    print(f"loglikelihood vllm {[round(g.logprob, 5) for g in got]} greedy {[g.is_greedy for g in got]}")
    print(f"loglikelihood max |delta| {delta:.3g}")
    assert [g.logprob for g in got] == pytest.approx([w.logprob for w in want], abs=2e-3)
    assert [g.is_greedy for g in got] == [w.is_greedy for w in want]
    short = "A short paragraph that fits in one window. " * 8
    one_hf, one_vllm = hf.loglikelihood_rolling([short])[0], vllm.loglikelihood_rolling([short])[0]
    per_token = max(abs(a - b) for a, b in zip(one_vllm.logprobs, one_hf.logprobs))
    print(f"rolling, one window: tokens {one_vllm.num_tokens}/{one_hf.num_tokens} per-token max |delta| "
          f"{per_token:.3g}")
    assert one_vllm.num_tokens == one_hf.num_tokens and one_vllm.windows == 1
    assert per_token < 2e-3
    text = "WikiText style paragraph. " * 200  # about 1000 tokens: longer than one 512-token window
    for stride in (None, 128):  # window boundaries differ by design (vLLM scores 511 of 512 ids), so compare totals
        rolled_hf = hf.loglikelihood_rolling([text], stride=stride)[0]
        rolled_vllm = vllm.loglikelihood_rolling([text], stride=stride)[0]
        print(f"rolling stride={stride}: tokens {rolled_vllm.num_tokens}/{rolled_hf.num_tokens} windows "
              f"{rolled_vllm.windows}/{rolled_hf.windows} total vllm {rolled_vllm.total:.4f} hf "
              f"{rolled_hf.total:.4f}")
        assert rolled_vllm.num_tokens == rolled_hf.num_tokens and rolled_vllm.windows >= 2
        assert rolled_vllm.total == pytest.approx(rolled_hf.total, rel=1e-3)
    long = vllm.loglikelihood([LoglikelihoodRequest("word " * 700, " end")])[0]  # left-truncated to 511 ids
    print(f"left-truncated request: logprob {long.logprob:.4f}")
    assert -100 < long.logprob < 0 and vllm.stats() == {"truncated_requests": 1}
    chat = [(Message("user", "word " * 700),)]  # a prompt longer than max_model_len: both keep its right end
    cut_vllm = vllm.generate(chat, GenConfig(max_tokens=4))[0]
    cut_hf = hf.generate(chat, GenConfig(max_tokens=4))[0]
    print(f"over-long chat prompt: prompt tokens vllm {cut_vllm.usage.prompt_tokens} hf {cut_hf.usage.prompt_tokens}, "
          f"completion tokens {cut_vllm.usage.completion_tokens}")
    assert cut_vllm.usage.prompt_tokens == cut_hf.usage.prompt_tokens == 508
    done = vllm.generate([(Message("user", "hi"),)], GenConfig(max_tokens=5, n=2, temperature=0.8, seed=1))[0]
    print(f"generate n=2: {done.texts!r} finish {done.finish_reasons} usage {done.usage}")
    assert len(done.texts) == 2 and done.usage.completion_tokens > 0
    greedy = vllm.generate([(Message("user", "hi"),)], GenConfig(max_tokens=6, temperature=0.0))[0]
    reference = hf.generate([(Message("user", "hi"),)], GenConfig(max_tokens=6, temperature=0.0))[0]
    print(f"greedy vllm {greedy.texts!r} hf {reference.texts!r}; prompt tokens {greedy.usage.prompt_tokens}/"
          f"{reference.usage.prompt_tokens}")
    assert greedy.usage.prompt_tokens == reference.usage.prompt_tokens  # same chat rendering, one BOS
