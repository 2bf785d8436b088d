"""vLLM backend translation, tested without vLLM or a GPU: sampling parameters, token splits, rolling windows,
prompt-logprob sums, and the backend's glue against a stand-in `vllm` module."""

from __future__ import annotations

import itertools
import math
import random
import re
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from evalkit.backends._vllm import (
    continuation_logprob,
    create,
    fit_prompt,
    keep_right,
    llm_kwargs,
    rolling_windows,
    sampling_kwargs,
    scoring_length,
    split_request,
    window_logprobs,
)
from evalkit.errors import ConfigError, MissingDependency
from evalkit.types import GenConfig, LoglikelihoodRequest, Message


def test_sampling_params_translation() -> None:
    assert sampling_kwargs(GenConfig()) == {"n": 1, "temperature": 0.0, "max_tokens": 256}
    full = sampling_kwargs(GenConfig(temperature=0.7, top_k=50, top_p=0.95, max_tokens=64, stop=("\n\n", "Q:"),
                                     n=4, seed=11))
    assert full == {"n": 4, "temperature": 0.7, "top_k": 50, "top_p": 0.95, "max_tokens": 64,
                    "stop": ["\n\n", "Q:"], "seed": 11}


def _merge_encode(text: str) -> list[int]:
    """A toy tokenizer with merges: a space joins the character after it (" A" is one token)."""
    return [hash(piece) % 50_000 for piece in re.findall(r" ?\S|\s", text)]


def test_split_request_handles_merges_spaces_and_length() -> None:
    ids, n_ctx = split_request(_merge_encode, "答案：", " A", prefix_token=1, max_length=100)
    assert len(ids) == 4 and n_ctx == 3 and ids[3] == _merge_encode(" A")[0]
    moved = split_request(_merge_encode, "答案： ", "A", prefix_token=1, max_length=100)
    assert moved == (ids, n_ctx)  # the trailing space joins the continuation, as in lm-eval
    assert split_request(_merge_encode, "", "AB", prefix_token=1, max_length=100) == ([1, *_merge_encode("AB")], 1)
    long_ids, long_ctx = split_request(_merge_encode, "x" * 50, " yz", prefix_token=1, max_length=10)
    assert len(long_ids) == 10 and long_ids[-2:] == _merge_encode(" yz") and long_ctx == 8


@dataclass(frozen=True)
class Logprob:
    """vLLM's Logprob record (the fields evalkit reads)."""

    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


def test_continuation_logprob_sums_and_greediness() -> None:
    plp = [None, {5: Logprob(-0.5, 1)}, {7: Logprob(-1.0, 1)}, {8: Logprob(-2.0, 3), 9: Logprob(-0.1, 1)}]
    assert continuation_logprob(plp, [1, 5, 7, 8], 2) == (-3.0, False)
    assert continuation_logprob(plp, [1, 5, 7], 1) == (-1.5, True)
    assert continuation_logprob([None, {5: -0.25, 6: -2.0}], [1, 5], 1) == (-0.25, True)  # plain floats, no rank
    with pytest.raises(ValueError, match="position 1"):
        continuation_logprob([None, {6: Logprob(-1.0, 1)}], [1, 5], 1)


@pytest.mark.parametrize("seed", range(30))
def test_rolling_windows_score_every_token_once(seed: int) -> None:
    rng = random.Random(seed)
    n, max_length = rng.randint(1, 60), rng.randint(2, 12)
    stride = rng.choice([None, max_length, rng.randint(1, max_length)])
    ids = list(range(100, 100 + n))
    windows = rolling_windows(ids, max_length=max_length, stride=stride, prefix_token=0)
    scored = [tok for window, k in windows for tok in window[len(window) - k:]]
    assert scored == ids
    seq = [0, *ids]
    end = 0
    for window, k in windows:
        end += k
        assert len(window) == min(end + 1, max_length)  # as much left context as fits
        assert window == seq[end + 1 - len(window):end + 1]  # contiguous text ending at the last scored token
        step = max_length - 1 if stride is None or stride >= max_length else stride
        assert k <= step


# --- the backend's glue, against a stand-in vllm module ----------------------------------------------

def _lp(prev: int, tok: int) -> float:
    return -((prev * 31 + tok) % 7 + 1) / 10


class _Tokenizer:
    bos_token_id, eos_token_id = 1, 2

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(chr(i) for i in ids)

    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool, add_generation_prompt: bool) -> str:
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + ("<assistant>" if add_generation_prompt else "")


class _LLM:
    def __init__(self, model: str, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.llm_engine = types.SimpleNamespace(model_config=types.SimpleNamespace(max_model_len=8))
        self.prompts: list[Any] = []

    def get_tokenizer(self) -> _Tokenizer:
        return _Tokenizer()

    def generate(self, prompts: list[Any], params: Any, use_tqdm: bool = False) -> list[Any]:
        self.prompts.extend(prompts)
        outs = []
        for p in prompts:
            ids = p["prompt_token_ids"] if isinstance(p, dict) else [ord(c) for c in p]
            if len(ids) >= 8:  # vLLM's own check (input_processor._validate_prompt_len): room for one new token
                raise ValueError(f"The decoder prompt (length {len(ids)}) plus the number of requested output "
                                 "tokens (at least 1) is longer than the maximum model length of 8")
            plp = [None] + [{t: Logprob(_lp(a, t), 1 if t % 2 else 2)} for a, t in itertools.pairwise(ids)]
            texts = [f"s{params.kw.get('seed')}-{i}"[: params.kw["max_tokens"]] for i in range(params.kw["n"])]
            outputs = [types.SimpleNamespace(text=t, token_ids=list(t), finish_reason="length") for t in texts]
            outs.append(types.SimpleNamespace(prompt_token_ids=ids, prompt_logprobs=plp, outputs=outputs))
        return outs


class _SamplingParams:
    def __init__(self, **kw: Any) -> None:
        self.kw = kw


@pytest.fixture()
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("vllm")
    module.LLM = _LLM  # type: ignore[attr-defined]
    module.SamplingParams = _SamplingParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


def test_backend_glue_with_a_stand_in_vllm(fake_vllm: types.ModuleType) -> None:
    backend = create("org/model", {"tensor_parallel_size": "2", "enable_prefix_caching": "true",
                                   "dtype": "bfloat16"})
    assert backend._llm.kwargs["tensor_parallel_size"] == 2 and backend._llm.kwargs["enable_prefix_caching"]
    assert backend.identity.cache_key() == "vllm|org/model||dtype=bfloat16"
    result = backend.loglikelihood([LoglikelihoodRequest("abc", "de")])[0]
    assert result.logprob == pytest.approx(_lp(ord("c"), ord("d")) + _lp(ord("d"), ord("e")))
    assert result.is_greedy is False  # 'd' (100) is even: rank 2 in the stand-in
    text = "the quick brown fox jumps"
    rolled = backend.loglikelihood_rolling([text])[0]
    ids = [1, *map(ord, text)]
    assert rolled.logprobs == pytest.approx([_lp(a, b) for a, b in itertools.pairwise(ids)])
    assert rolled.windows == math.ceil(len(text) / 6)  # 7 prompt ids per window (8 - the generated token)
    long = backend.loglikelihood([LoglikelihoodRequest("x" * 20, "yz")])[0]  # left-truncated to 7 ids
    assert long.logprob == pytest.approx(_lp(ord("x"), ord("y")) + _lp(ord("y"), ord("z")))
    assert backend.stats() == {"truncated_requests": 1}
    done = backend.generate([(Message("user", "hi"),)], GenConfig(temperature=0.5, n=2, seed=3, max_tokens=5))[0]
    assert done.texts == ("s3-0", "s3-1")
    assert done.usage.prompt_tokens == 3  # "<user>hi<assistant>" kept its right end: 8 - 5 new tokens
    assert backend._llm.prompts[-1] == {"prompt_token_ids": [ord(c) for c in "nt>"]}
    assert backend.complete(["ab"], GenConfig(max_tokens=2))[0].usage.prompt_tokens == 2
    assert backend.stats() == {"truncated_requests": 2}


def test_fit_prompt_and_keep_right() -> None:
    assert fit_prompt(list(range(10)), max_model_len=8, max_tokens=3) == [5, 6, 7, 8, 9]
    assert fit_prompt([1, 2], max_model_len=8, max_tokens=3) == [1, 2]
    assert fit_prompt([1, 2, 3], max_model_len=4, max_tokens=10) == [3]  # one prompt id always stays
    assert keep_right([1, 2, 3], 2, 5) == ([1, 2, 3], 2)
    assert keep_right([1, 2, 3, 4, 5, 6], 5, 3) == ([4, 5, 6], 2)
    assert keep_right([1, 2, 3, 4, 5, 6], 2, 3) == ([4, 5, 6], 1)  # at least one context id


def test_scoring_length_leaves_room_for_the_generated_token() -> None:
    assert scoring_length(512) == 511
    with pytest.raises(ConfigError, match="too small"):
        scoring_length(2)


def test_missing_vllm_and_bad_args() -> None:
    if "vllm" in sys.modules or _importable("vllm"):
        pytest.skip("vllm is installed here")
    with pytest.raises(MissingDependency, match=r"evalkit\[vllm\]"):
        create("org/model", {})
    with pytest.raises(ConfigError, match="unknown --model-args tp"):
        llm_kwargs({"tp": "2"})
    with pytest.raises(ConfigError, match="true or false"):
        llm_kwargs({"enable_prefix_caching": "maybe"})
    assert window_logprobs([None, {5: -1.0}], [0, 5], 1) == [-1.0]


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
