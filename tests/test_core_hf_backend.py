"""The transformers backend on a tiny randomly initialised Llama: exactness of every fast path."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from evalkit.backends import load_backend
from evalkit.types import GenConfig, Message
from evalkit.types import LoglikelihoodRequest as R

# ~15-40 s: loads the tiny random Llama several times and compares every fast path with full forwards
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fast() -> Any:
    return load_backend("tiny-llama", {"seed": "3", "max_length": "256"})


@pytest.fixture(scope="module")
def plain() -> Any:
    return load_backend("tiny-llama", {"seed": "3", "max_length": "256", "prefix_cache": "false", "batch_size": "1"})


def _reference(backend: Any, context: str, continuation: str) -> tuple[float, bool]:
    """Straightforward full forward over ctx + cont tokens, as lm-eval splits them."""
    ctx, cont = backend._encode_pair(context, continuation)
    full = (ctx + cont)[-(backend.max_length + 1):]
    ids = torch.tensor([full[:-1]])
    with torch.no_grad():
        logp = torch.log_softmax(backend.model(ids).logits[0].float(), -1)
    tail = logp[-len(cont):]
    target = torch.tensor(cont)
    return float(tail[torch.arange(len(cont)), target].sum()), bool((tail.argmax(-1) == target).all())


def _mc_requests() -> list[R]:
    shots = "".join(f"Question {i}: what is {i} plus {i}?\nA. {i}\nB. {2 * i}\nAnswer: B\n\n" for i in range(6))
    out = []
    for q in range(5):
        ctx = shots + f"Question {q + 10}: name the colour of item {q}.\nA. red\nB. blue\nAnswer:"
        out += [R(ctx, " A"), R(ctx, " B"), R(ctx, " red and blue")]
    return out


def test_prefix_sharing_is_exact_and_saves_tokens(fast: Any, plain: Any) -> None:
    reqs = _mc_requests()
    a, b = fast.loglikelihood(reqs), plain.loglikelihood(reqs)
    assert max(abs(x.logprob - y.logprob) for x, y in zip(a, b)) < 1e-4
    assert [x.is_greedy for x in a] == [y.is_greedy for y in b]
    sa, sb = fast.stats(), plain.stats()
    assert sa["prefix_groups"] >= 1
    assert sa["tokens_processed"] < 0.5 * sb["tokens_processed"]


def test_letter_options_process_about_the_unique_tokens_only() -> None:
    backend = load_backend("tiny-llama", {"seed": "3", "max_length": "256"})
    backend.loglikelihood([r for r in _mc_requests() if r.continuation in (" A", " B")])
    stats = backend.stats()
    assert stats["unique_tokens"] <= stats["tokens_processed"] <= 1.1 * stats["unique_tokens"]


def test_matches_a_plain_full_forward(fast: Any) -> None:
    reqs = _mc_requests()[:6] + [R("The colour of the sky is", " blue"), R("", "hello there")]
    got = fast.loglikelihood(reqs)
    for req, res in zip(reqs, got):
        if req.context == "":
            continue
        ref, greedy = _reference(fast, req.context, req.continuation)
        assert res.logprob == pytest.approx(ref, abs=1e-4)
        assert res.is_greedy == greedy


def test_single_token_options_share_one_row(fast: Any) -> None:
    before = fast.stats()["rows"]
    ctx = "Pick one.\nAnswer:"
    fast.loglikelihood([R(ctx, " A"), R(ctx, " B"), R(ctx, " C"), R(ctx, " D")])
    assert fast.stats()["rows"] - before == 1


def test_trailing_space_moves_to_the_continuation(fast: Any) -> None:
    ctx, cont = fast._encode_pair("Answer: ", "B")
    ctx2, cont2 = fast._encode_pair("Answer:", " B")
    assert (ctx, cont) == (ctx2, cont2)


def test_left_truncation_is_counted_and_exact() -> None:
    backend = load_backend("tiny-llama", {"seed": "3", "max_length": "16"})
    long_ctx = " ".join(f"word{i}" for i in range(40))
    res = backend.loglikelihood([R(long_ctx, " end")])[0]
    ref, _ = _reference(backend, long_ctx, " end")
    assert res.logprob == pytest.approx(ref, abs=1e-4)
    assert backend.stats()["truncated_requests"] == 1


def test_rolling_scores_every_token_and_stride_gives_context(fast: Any) -> None:
    backend = load_backend("tiny-llama", {"seed": "3", "max_length": "32"})
    text = "The quick brown fox jumps over the lazy dog. " * 12
    tokens = backend.encode(text)
    disjoint = backend.loglikelihood_rolling([text])[0]
    strided = backend.loglikelihood_rolling([text], stride=8)[0]
    assert disjoint.num_tokens == strided.num_tokens == len(tokens)
    assert strided.windows > disjoint.windows > 1
    # first window is identical in both schemes: same prefix token, same first 32 tokens
    assert disjoint.logprobs[:32] == pytest.approx(strided.logprobs[:32], abs=1e-5)
    # an unsplit reference for the first window
    ids = torch.tensor([[backend.prefix_token_id, *tokens[:31]]])
    with torch.no_grad():
        logp = torch.log_softmax(backend.model(ids).logits[0].float(), -1)
    ref = logp[torch.arange(32), torch.tensor(tokens[:32])]
    assert disjoint.logprobs[:32] == pytest.approx(ref.tolist(), abs=1e-4)


def test_generation_honours_stop_and_seed(fast: Any) -> None:
    conv = (Message("user", "Count: one two three"),)
    greedy = fast.generate([conv], GenConfig(max_tokens=12))[0]
    assert greedy.usage.completion_tokens <= 12 and greedy.usage.prompt_tokens > 0
    sampled_a = fast.generate([conv], GenConfig(temperature=1.0, max_tokens=8, n=2, seed=7))[0]
    sampled_b = fast.generate([conv], GenConfig(temperature=1.0, max_tokens=8, n=2, seed=7))[0]
    assert sampled_a.texts == sampled_b.texts and len(sampled_a.texts) == 2
    if greedy.text:
        stop = greedy.text[len(greedy.text) // 2:][:2] or greedy.text[:1]
        cut = fast.generate([conv], GenConfig(max_tokens=12, stop=(stop,)))[0]
        assert stop not in cut.text and cut.finish_reasons == ("stop",)


def test_unknown_model_args_are_rejected() -> None:
    from evalkit.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown key.*colour"):
        load_backend("tiny-llama", {"colour": "blue"})


def test_grouped_query_sdpa_is_scoped_to_cpu_scoring(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    from types import SimpleNamespace

    from evalkit.backends._hf_scoring import _grouped_query_sdpa

    monkeypatch.delenv("TRANSFORMERS_SDPA_FORCE_GQA", raising=False)
    with _grouped_query_sdpa(SimpleNamespace(type="cpu")):
        assert os.environ["TRANSFORMERS_SDPA_FORCE_GQA"] == "1"
    assert "TRANSFORMERS_SDPA_FORCE_GQA" not in os.environ
    with _grouped_query_sdpa(SimpleNamespace(type="cuda")):
        assert "TRANSFORMERS_SDPA_FORCE_GQA" not in os.environ
    monkeypatch.setenv("TRANSFORMERS_SDPA_FORCE_GQA", "0")
    with _grouped_query_sdpa(SimpleNamespace(type="cpu")):
        assert os.environ["TRANSFORMERS_SDPA_FORCE_GQA"] == "0"
