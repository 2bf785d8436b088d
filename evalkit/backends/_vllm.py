"""vLLM backend: `--model vllm:<hub id or path>` (extra `[vllm]`, needs a GPU).

In-process `vllm.LLM`: `generate` renders the chat template and samples with `SamplingParams`;
`loglikelihood` and `loglikelihood_rolling` read prompt logprobs (`prompt_logprobs=1`, one new token). vLLM
rejects a prompt that leaves no room for that token, so scored prompts hold at most `max_model_len - 1` ids.
The translation (sampling parameters, token splits, windows, logprob sums) is pure Python below, tested
without vLLM installed.

--model-args: tensor_parallel_size (1), enable_prefix_caching (true), dtype (auto), max_model_len,
gpu_memory_utilization (0.9), revision, trust_remote_code (false), seed (0).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from evalkit.backends._protocol import BackendBase, ModelIdentity
from evalkit.errors import ConfigError, MissingDependency
from evalkit.types import (
    Completion,
    Conversation,
    GenConfig,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    TokenLogprobs,
    Usage,
)

__all__ = [
    "VLLMBackend",
    "continuation_logprob",
    "create",
    "fit_prompt",
    "keep_right",
    "rolling_windows",
    "sampling_kwargs",
    "scoring_kwargs",
    "scoring_length",
    "split_request",
    "window_logprobs",
]

PromptLogprobs = Sequence[Mapping[int, Any] | None]  # vLLM's RequestOutput.prompt_logprobs


def sampling_kwargs(config: GenConfig) -> dict[str, Any]:
    """Keyword arguments of `vllm.SamplingParams` for a generation config.

    Examples:
        >>> sampling_kwargs(GenConfig(temperature=0.0, max_tokens=8, stop=("\\n",)))
        {'n': 1, 'temperature': 0.0, 'max_tokens': 8, 'stop': ['\\n']}
        >>> sampling_kwargs(GenConfig(temperature=0.7, top_p=0.9, top_k=40, n=3, seed=1))["seed"]
        1
    """
    kwargs: dict[str, Any] = {"n": config.n, "temperature": max(0.0, config.temperature),
                              "max_tokens": config.max_tokens}
    if config.top_p is not None:
        kwargs["top_p"] = config.top_p
    if config.top_k is not None:
        kwargs["top_k"] = config.top_k
    if config.stop:
        kwargs["stop"] = list(config.stop)
    if config.seed is not None:
        kwargs["seed"] = config.seed
    return kwargs


def scoring_kwargs() -> dict[str, Any]:
    """`SamplingParams` that only score the prompt: its logprobs with the top-1 alternative, one greedy token."""
    return {"n": 1, "temperature": 0.0, "max_tokens": 1, "prompt_logprobs": 1, "detokenize": False}


def scoring_length(max_model_len: int) -> int:
    """Most prompt ids a scoring request may hold: vLLM needs room for the one token it generates after it.

    Examples:
        >>> scoring_length(2048)
        2047
    """
    if max_model_len < 3:
        raise ConfigError(f"max_model_len={max_model_len} is too small to score text (use at least 3)")
    return max_model_len - 1


def split_request(encode: Callable[[str], list[int]], context: str, continuation: str, *,
                  prefix_token: int, max_length: int) -> tuple[list[int], int]:
    """Token ids of context+continuation and how many of them are context (lm-eval's split).

    The whole string is tokenised once and the context's own tokenisation decides where the continuation
    starts, so merges across the boundary are handled; trailing context spaces move to the continuation.
    An empty context gets `prefix_token`. Over-long inputs keep their right end (at most `max_length`).
    """
    spaces = len(context) - len(context.rstrip(" "))
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    if context:
        whole = encode(context + continuation)
        n_ctx = len(encode(context))
        if n_ctx >= len(whole):  # the continuation merged into the context's last token
            n_ctx = len(whole) - 1
    else:
        whole = [prefix_token, *encode(continuation)]
        n_ctx = 1
    return keep_right(whole, n_ctx, max_length)


def keep_right(token_ids: Sequence[int], n_ctx: int, max_length: int) -> tuple[list[int], int]:
    """Left-truncate a split request to `max_length` ids; at least one context id stays.

    Examples:
        >>> keep_right([1, 2, 3, 4, 5], 3, 4)
        ([2, 3, 4, 5], 2)
    """
    if len(token_ids) <= max_length:
        return list(token_ids), n_ctx
    cut = len(token_ids) - max_length
    return list(token_ids[cut:]), max(1, n_ctx - cut)


def fit_prompt(token_ids: Sequence[int], *, max_model_len: int, max_tokens: int) -> list[int]:
    """Keep a generation prompt's right end so that `max_tokens` new tokens fit (at least one prompt id stays).

    Examples:
        >>> fit_prompt([1, 2, 3, 4, 5], max_model_len=6, max_tokens=3)
        [3, 4, 5]
    """
    keep = max(1, max_model_len - max_tokens)
    return list(token_ids[-keep:])


def _logprob(entry: Any) -> float:
    return float(entry.logprob if hasattr(entry, "logprob") else entry)


def _is_top(entries: Mapping[int, Any], token: int) -> bool:
    rank = getattr(entries[token], "rank", None)
    if rank is not None:
        return int(rank) == 1
    return max(entries, key=lambda t: _logprob(entries[t])) == token


def continuation_logprob(prompt_logprobs: PromptLogprobs, token_ids: Sequence[int], n_ctx: int
                         ) -> LoglikelihoodResult:
    """Sum of the logprobs of `token_ids[n_ctx:]`, and whether each was vLLM's top-1 (rank 1).

    Examples:
        >>> plp = [None, {5: -0.1}, {7: -1.5, 9: -0.2}]
        >>> continuation_logprob(plp, [1, 5, 7], 1)
        LoglikelihoodResult(logprob=-1.6, is_greedy=False)
    """
    total, greedy = 0.0, True
    for pos in range(max(1, n_ctx), len(token_ids)):
        entries = prompt_logprobs[pos]
        if entries is None or token_ids[pos] not in entries:
            raise ValueError(f"vLLM returned no logprob for prompt position {pos}")
        total += _logprob(entries[token_ids[pos]])
        greedy = greedy and _is_top(entries, token_ids[pos])
    return LoglikelihoodResult(total, greedy)


def rolling_windows(token_ids: Sequence[int], *, max_length: int, stride: int | None,
                    prefix_token: int) -> list[tuple[list[int], int]]:
    """Windows that score every token of a text exactly once: (input ids, how many trailing ids to score).

    The first token is scored after `prefix_token`. With `stride=None` (or >= max_length) the scored spans
    are disjoint blocks of `max_length - 1` tokens; a smaller stride scores `stride` tokens per window. Every
    window is filled with as much left context as fits in `max_length` (so the last one may have more).

    Examples:
        >>> rolling_windows([10, 11, 12, 13, 14], max_length=3, stride=None, prefix_token=0)
        [([0, 10, 11], 2), ([11, 12, 13], 2), ([12, 13, 14], 1)]
    """
    if max_length < 2:
        raise ValueError("max_length must be at least 2")
    step = max_length - 1 if stride is None or stride >= max_length else max(1, stride)
    seq = [prefix_token, *token_ids]  # seq[k + 1] is token k
    windows = []
    for start in range(0, len(token_ids), step):
        end = min(len(token_ids), start + step)
        first = max(0, end + 1 - max_length)
        windows.append((list(seq[first:end + 1]), end - start))
    return windows


def window_logprobs(prompt_logprobs: PromptLogprobs, window: Sequence[int], n_score: int) -> list[float]:
    """The logprobs of the last `n_score` tokens of a window."""
    out = []
    for pos in range(len(window) - n_score, len(window)):
        entries = prompt_logprobs[pos]
        if entries is None or window[pos] not in entries:
            raise ValueError(f"vLLM returned no logprob for prompt position {pos}")
        out.append(_logprob(entries[window[pos]]))
    return out


class VLLMBackend(BackendBase):
    """A model loaded in-process by vLLM.

    Args:
        model: a hub id or local path.
        llm_kwargs: keyword arguments of `vllm.LLM` (tensor_parallel_size, enable_prefix_caching, ...).
    """

    can_complete = can_render_chat = can_tokenize = True

    def __init__(self, model: str, llm_kwargs: dict[str, Any]) -> None:
        try:
            import vllm
        except ImportError:
            raise MissingDependency("vLLM backend", "vllm", "vllm") from None
        self.model = model
        self._vllm = vllm
        self._kwargs = dict(llm_kwargs)
        self._llm = vllm.LLM(model=model, **llm_kwargs)
        self._tokenizer = self._llm.get_tokenizer()
        self._max_length = int(self._llm.llm_engine.model_config.max_model_len)
        self._score_length = scoring_length(self._max_length)
        self.truncated = 0  # requests left-truncated to fit max_model_len (the runner reports the count)
        bos = getattr(self._tokenizer, "bos_token_id", None)
        self._prefix = int(bos if bos is not None else self._tokenizer.eos_token_id)

    @property
    def identity(self) -> ModelIdentity:
        """`vllm|<model>|<revision>|dtype=...`."""
        return ModelIdentity("vllm", self.model, str(self._kwargs.get("revision") or ""),
                             {"dtype": str(self._kwargs.get("dtype", "auto"))})

    @property
    def max_length(self) -> int:
        """vLLM's max_model_len."""
        return self._max_length

    def stats(self) -> dict[str, int]:
        """Counters the runner reads: `truncated_requests`."""
        return {"truncated_requests": self.truncated}

    def encode(self, text: str) -> list[int]:
        """Token ids without special tokens."""
        return list(self._tokenizer.encode(text, add_special_tokens=False))

    def decode(self, tokens: Sequence[int]) -> str:
        """Text of token ids."""
        return str(self._tokenizer.decode(list(tokens)))

    def render_chat(self, conversation: Conversation, *, add_generation_prompt: bool = True) -> str:
        """The chat template's text for a conversation."""
        messages = [{"role": m.role, "content": m.content} for m in conversation]
        return str(self._tokenizer.apply_chat_template(messages, tokenize=False,
                                                       add_generation_prompt=add_generation_prompt))

    def _run(self, prompts: list[Any], params: dict[str, Any]) -> list[Any]:
        sampling = self._vllm.SamplingParams(**params)
        return list(self._llm.generate(prompts, sampling, use_tqdm=False))

    def _completions(self, prompts: list[list[int]], config: GenConfig) -> list[Completion]:
        fitted = [fit_prompt(ids, max_model_len=self._max_length, max_tokens=config.max_tokens) for ids in prompts]
        self.truncated += sum(len(a) != len(b) for a, b in zip(fitted, prompts))
        outputs = self._run([{"prompt_token_ids": ids} for ids in fitted], sampling_kwargs(config))
        return [Completion(tuple(o.text for o in out.outputs),
                           Usage(len(out.prompt_token_ids or ()), sum(len(o.token_ids) for o in out.outputs)),
                           tuple(str(o.finish_reason or "") for o in out.outputs)) for out in outputs]

    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        """Sample through the chat template (the rendered text already holds the BOS token)."""
        prompts = [list(self._tokenizer.encode(self.render_chat(c), add_special_tokens=False)) for c in conversations]
        return self._completions(prompts, config)

    def complete(self, prompts: Sequence[str], config: GenConfig) -> list[Completion]:
        """Continue raw text (no chat template; special tokens such as BOS added as vLLM itself would)."""
        return self._completions([list(self._tokenizer.encode(p)) for p in prompts], config)

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        """Continuation logprobs from prompt logprobs."""
        whole = [split_request(self.encode, r.context, r.continuation, prefix_token=self._prefix,
                               max_length=sys.maxsize) for r in requests]
        self.truncated += sum(len(ids) > self._score_length for ids, _ in whole)
        splits = [keep_right(ids, n_ctx, self._score_length) for ids, n_ctx in whole]
        outputs = self._run([{"prompt_token_ids": ids} for ids, _ in splits], scoring_kwargs())
        return [continuation_logprob(out.prompt_logprobs, ids, n_ctx) for out, (ids, n_ctx) in zip(outputs, splits)]

    def loglikelihood_rolling(self, texts: Sequence[str], *, stride: int | None = None) -> list[TokenLogprobs]:
        """Per-token logprobs of whole texts in windows of `max_model_len - 1` ids."""
        plans = [rolling_windows(self.encode(t), max_length=self._score_length, stride=stride,
                                 prefix_token=self._prefix) for t in texts]
        flat = [w for plan in plans for w in plan]
        outputs = self._run([{"prompt_token_ids": ids} for ids, _ in flat], scoring_kwargs())
        results, k = [], 0
        for plan in plans:
            values: list[float] = []
            for ids, n_score in plan:
                values.extend(window_logprobs(outputs[k].prompt_logprobs, ids, n_score))
                k += 1
            results.append(TokenLogprobs(tuple(values), windows=len(plan)))
        return results


def _bool(value: str, key: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"--model-args {key}={value}: use true or false")


def llm_kwargs(args: Mapping[str, str]) -> dict[str, Any]:
    """`vllm.LLM` keyword arguments from --model-args (pure; unknown keys are an error).

    Examples:
        >>> llm_kwargs({"tensor_parallel_size": "2", "enable_prefix_caching": "false"})["tensor_parallel_size"]
        2
    """
    ints = {"tensor_parallel_size", "max_model_len", "seed"}
    floats = {"gpu_memory_utilization"}
    bools = {"enable_prefix_caching", "trust_remote_code", "enforce_eager"}
    strings = {"dtype", "revision", "tokenizer", "quantization"}
    out: dict[str, Any] = {"tensor_parallel_size": 1, "enable_prefix_caching": True, "seed": 0}
    for key, value in args.items():
        try:
            if key in ints:
                out[key] = int(value)
            elif key in floats:
                out[key] = float(value)
            elif key in bools:
                out[key] = _bool(value, key)
            elif key in strings:
                out[key] = value
            elif key not in ("concurrency", "batch_size"):  # harmless options the runner may pass to any backend
                known = ", ".join(sorted(ints | floats | bools | strings))
                raise ConfigError(f"vllm backend: unknown --model-args {key}; known: {known}")
        except ValueError:
            raise ConfigError(f"--model-args {key}={value} is not a number") from None
    return out


def create(model: str, args: dict[str, str]) -> VLLMBackend:
    """Factory for `vllm:<hub id or path>`."""
    return VLLMBackend(model, llm_kwargs(args))
