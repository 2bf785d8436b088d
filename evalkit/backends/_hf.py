"""The transformers backend: loglikelihood (prefix-shared, batched), rolling perplexity windows, generation."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from evalkit.backends._hf_continuous import ContinuousBatcher, ContinuousGeneration
from evalkit.backends._hf_generate import Generator, OnResults, OnStream, generate_completions
from evalkit.backends._hf_load import LoadedModel, load_model
from evalkit.backends._hf_rolling import plan_windows, score_rolling
from evalkit.backends._hf_scoring import Row, Scored, Scorer
from evalkit.backends._protocol import BackendBase, ModelIdentity, ResultCallback, WindowStore
from evalkit.backends._stops import cut_at_stop, cut_choices_at_stop, token_pieces
from evalkit.errors import ConfigError
from evalkit.types import (
    Completion,
    Conversation,
    GenConfig,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    TokenChoice,
    TokenLogprobs,
    Usage,
)

__all__ = ["HFBackend", "create", "from_model", "rolling_windows"]

_TRUE = ("1", "true", "yes", "on")
_KNOWN_ARGS = {"dtype", "device", "revision", "trust_remote_code", "batch_size", "prefix_cache", "max_length",
               "add_bos_token", "seed", "hidden_size", "intermediate_size", "layers", "min_prefix",
               "token_budget", "threads", "gen_batch", "peft", "peft_revision", "merge", "packed_decode",
               "prompt_lookup"}


def rolling_windows(tokens: Sequence[int], prefix_token: int, max_length: int,
                    stride: int | None = None) -> list[tuple[tuple[int, ...], int]]:
    """Split a token list into (model input, number of trailing positions scored) windows.

    Every token is scored once. `stride=None` (or >= max_length) reproduces lm-eval's disjoint windows: the
    first window is the prefix token plus the first max_length-1 tokens; each later window scores the next
    max_length tokens, and the last (partial) one keeps left context up to max_length. A smaller stride
    advances by `stride` tokens and gives each window max_length - stride tokens of context.

    Examples:
        >>> rolling_windows([5, 6, 7, 8, 9], prefix_token=1, max_length=2)
        [((1, 5), 2), ((6, 7), 2), ((7, 8), 1)]
    """
    seq = [prefix_token, *tokens]  # position i of seq predicts seq[i + 1]
    n = len(tokens)
    windows: list[tuple[tuple[int, ...], int]] = []
    if n == 0:
        return windows
    step = max_length if stride is None or stride >= max_length else max(1, stride)
    done = 0  # tokens scored so far
    first = True
    while done < n:
        take = min(max_length if first else step, n - done)
        end = done + take  # tokens[:end] scored after this window
        start = max(0, end - max_length)  # input seq[start:end] predicts seq[start+1:end+1]
        windows.append((tuple(seq[start:end]), take))
        done = end
        first = False
    return windows


class HFBackend(BackendBase):
    """A transformers causal LM behind the three-method contract."""

    can_complete = can_render_chat = can_tokenize = can_complete_logprobs = True

    # the response cache hands requests over in chunks; prefix sharing works within a call, so make it large.
    # Results still reach the cache batch by batch: every method streams them through `on_results`.
    cache_chunk_size = 4096
    streams_results = True

    def __init__(self, loaded: LoadedModel, args: dict[str, str]) -> None:
        import torch

        unknown = set(args) - _KNOWN_ARGS
        if unknown:
            raise ConfigError(f"--model-args: unknown key(s) {', '.join(sorted(unknown))} for the hf backend; "
                              f"known: {', '.join(sorted(_KNOWN_ARGS))}")
        if "threads" in args:
            torch.set_num_threads(int(args["threads"]))
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        device = args.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(device)
        self.model.eval()
        self.device = device
        packing = args.get("packed_decode", "auto").lower()
        if packing not in ("auto", "true", "false"):
            raise ConfigError(f"--model-args packed_decode={args['packed_decode']}: use auto, true or false")
        self.seed = int(args.get("seed", "0"))
        self._max_length = int(args["max_length"]) if "max_length" in args else self._model_max_length()
        self.add_bos_token = args["add_bos_token"].lower() in _TRUE if "add_bos_token" in args else None
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        self.pad_id = int(pad)
        rows, budget = self._batch_limits(args.get("batch_size", "auto"), args.get("token_budget"))
        self.scorer = Scorer(self.model, pad_id=self.pad_id, rows_per_batch=rows, token_budget=budget,
                             prefix_cache=args.get("prefix_cache", "true").lower() in _TRUE,
                             min_prefix=int(args.get("min_prefix", "8")))
        # gen_batch=1: today's sequential transformers `generate`, one prompt at a time (the reference)
        self.gen_batch = int(args.get("gen_batch", "32"))
        self.generator = Generator(self.model, self.tokenizer, pad_id=self.pad_id, rows_per_batch=self.gen_batch,
                                   token_budget=budget, prefix_cache=self.scorer.prefix_cache,
                                   min_prefix=int(args.get("min_prefix", "8")), packing=packing,
                                   prompt_lookup=args.get("prompt_lookup", "true").lower() in _TRUE)
        self.truncated = 0
        self.scoring_seconds = 0.0
        self.progress: Callable[[int], None] | None = None
        self.dtype = str(next(self.model.parameters()).dtype).replace("torch.", "")

    # ---- identity and tokenizer -------------------------------------------------------------------------
    @property
    def identity(self) -> ModelIdentity:
        return ModelIdentity("hf", self.loaded.source, self.loaded.revision,
                             {"dtype": self.dtype, "max_length": str(self._max_length), **self.loaded.details})

    @property
    def max_length(self) -> int:
        return self._max_length

    def _model_max_length(self) -> int:
        config = self.model.config
        for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
            value = getattr(config, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        tok_max = getattr(self.tokenizer, "model_max_length", 2048)
        return tok_max if tok_max < 10**7 else 2048

    def _batch_limits(self, batch_size: str, token_budget: str | None) -> tuple[int, int]:
        if token_budget is not None:
            budget = int(token_budget)
        else:
            budget = _auto_token_budget(self.model)
        if batch_size == "auto":
            return 64, budget
        try:
            return int(batch_size), budget
        except ValueError:
            raise ConfigError(f"batch_size={batch_size}: use a positive integer or 'auto'") from None

    def set_batch_size(self, batch_size: str | None) -> None:
        """Apply the run's --batch-size (N or auto)."""
        if batch_size:
            rows, budget = self._batch_limits(batch_size, None)
            self.scorer.rows_per_batch, self.scorer.token_budget = rows, budget

    @property
    def prefix_token_id(self) -> int:
        tok = self.tokenizer
        for value in (tok.bos_token_id, tok.eos_token_id):
            if value is not None:
                return int(value)
        return self.pad_id

    def encode(self, text: str) -> list[int]:
        """Tokenise as lm-eval's HF model does (the tokenizer's default special tokens unless add_bos_token)."""
        kwargs: dict[str, Any] = {}
        if self.add_bos_token is not None:
            kwargs["add_special_tokens"] = self.add_bos_token
        bos = self.tokenizer.bos_token
        if bos and text.startswith(bos):
            kwargs["add_special_tokens"] = False
        return list(self.tokenizer.encode(text, **kwargs))

    def decode(self, tokens: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(tokens), skip_special_tokens=True))

    def render_chat(self, conversation: Conversation, *, add_generation_prompt: bool = True) -> str:
        messages = [{"role": m.role, "content": m.content} for m in conversation]
        if getattr(self.tokenizer, "chat_template", None):
            return str(self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                           add_generation_prompt=add_generation_prompt))
        # no template: plain concatenation, the usual fallback for base models
        text = "\n\n".join(m.content for m in conversation)
        return text + ("\n\n" if add_generation_prompt else "")

    def stats(self) -> dict[str, int]:
        """Scorer counters, truncations, and `scoring_ms`: wall time inside loglikelihood(_rolling)."""
        return {**self.scorer.stats.as_dict(), **self.generator.stats.as_dict(), "truncated_requests": self.truncated,
                "scoring_ms": round(self.scoring_seconds * 1000)}

    # ---- loglikelihood -------------------------------------------------------------------------------------
    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        if context == "":
            cont = list(self.tokenizer.encode(continuation, add_special_tokens=False))
            if cont and cont[0] == self.prefix_token_id:
                return cont[:1], cont[1:]
            return [self.prefix_token_id], cont
        spaces = len(context) - len(context.rstrip())
        if spaces:  # trailing whitespace belongs to the continuation (word-boundary tokenisation)
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        whole = self.encode(context + continuation)
        ctx = self.encode(context)
        return ctx, whole[len(ctx):]

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest], *,
                      on_results: ResultCallback | None = None) -> list[LoglikelihoodResult]:
        """Prefix-shared, batched scoring; `on_results` gets each batch's requests as it finishes."""
        started = time.perf_counter()
        try:
            return self._loglikelihood(requests, on_results)
        finally:
            self.scoring_seconds += time.perf_counter() - started

    def _loglikelihood(self, requests: Sequence[LoglikelihoodRequest],
                       on_results: ResultCallback | None) -> list[LoglikelihoodResult]:
        by_input: dict[tuple[int, ...], list[tuple[int, tuple[int, ...]]]] = {}
        multi: list[Row] = []
        for key, req in enumerate(requests):
            ctx, cont = self._encode_pair(req.context, req.continuation)
            if not cont:
                raise ConfigError(f"request {key}: the continuation {req.continuation!r} encodes to no tokens")
            full = ctx + cont
            if len(full) > self._max_length + 1:
                self.truncated += 1
                full = full[-(self._max_length + 1):]
            tokens_in, target = tuple(full[:-1]), tuple(cont[-len(full) + 1:] if len(cont) >= len(full) else cont)
            if len(target) == 1:
                by_input.setdefault(tokens_in, []).append((key, target))
            else:
                multi.append(Row(tokens_in, ((key, target),)))
        rows = [Row(t, tuple(targets)) for t, targets in by_input.items()] + multi

        def on_batch(part: dict[int, Scored]) -> None:  # target keys are request indices
            if on_results is not None:
                on_results(list(part), [LoglikelihoodResult(v[0], v[1]) for v in part.values()])

        scored = self.scorer.score(rows, self.progress, on_batch)
        return [LoglikelihoodResult(scored[k][0], scored[k][1]) for k in range(len(requests))]

    def loglikelihood_rolling(self, texts: Sequence[str], *, stride: int | None = None,
                              on_results: ResultCallback | None = None,
                              windows: WindowStore | None = None) -> list[TokenLogprobs]:
        """Per-token logprobs in windows; `on_results` gets each text once its last window is scored, and
        `windows` keeps (and gives back) the finished windows of texts that span several."""
        started = time.perf_counter()
        try:
            plan = plan_windows([self.encode(text) for text in texts],
                                lambda tokens: rolling_windows(tokens, self.prefix_token_id, self._max_length,
                                                               stride), windows)
            return score_rolling(self.scorer, plan, on_results=on_results, store=windows, progress=self.progress)
        finally:
            self.scoring_seconds += time.perf_counter() - started

    # ---- generation --------------------------------------------------------------------------------------
    def generate(self, conversations: Sequence[Conversation], config: GenConfig, *,
                 on_results: ResultCallback | None = None) -> list[Completion]:
        """Chat-templated generation; `on_results` gets each finished batch of conversations."""
        prompts = [self.render_chat(conv) for conv in conversations]
        return self.generate_many(prompts, [config] * len(prompts), templated=True, on_results=on_results)

    def complete(self, prompts: Sequence[str], config: GenConfig, *,
                 on_results: ResultCallback | None = None) -> list[Completion]:
        """Raw-text continuation; `on_results` gets each finished batch of prompts."""
        return self.generate_many(list(prompts), [config] * len(prompts), templated=False, on_results=on_results)

    def generate_many(self, prompts: Sequence[str], configs: Sequence[GenConfig], *, templated: bool,
                      on_text: OnStream | None = None, on_results: OnResults | None = None) -> list[Completion]:
        """Continue prompt texts, each with its own settings, in shared batches (what `evalkit serve` batches).

        Args:
            prompts: rendered chat prompts (`templated=True`: no special tokens added) or raw text.
            configs: one `GenConfig` per prompt (stop strings, sampling, max_tokens, n, seed).
            templated: whether the prompts come from the chat template.
            on_text: streaming: `(prompt index, sample index, new text)` as text becomes final.
            on_results: `(prompt indices, completions)` as each batch finishes a prompt's samples.
        """
        if self.gen_batch <= 1 and on_text is None:
            return self._generate_sequential(prompts, configs, templated=templated, on_results=on_results)
        ids = [self._prompt_ids(prompt, config, templated=templated) for prompt, config in zip(prompts, configs)]
        return generate_completions(self.generator, ids, configs, base_seed=self.seed, on_text=on_text,
                                    on_results=on_results, progress=self.progress)

    def continuous_generation(self, lock: threading.Lock, *, window_s: float = 0.005,
                              max_rows: int | None = None) -> ContinuousGeneration | None:
        """Generation for `evalkit serve`: requests join the batch being decoded between steps, each step under
        `lock`. None where it does not apply (one row at a time, or a cache with sliding-window layers)."""
        if self.gen_batch <= 1 or not self.generator.joinable:
            return None
        batcher = ContinuousBatcher(self.generator, lock, window_s=window_s, max_rows=max_rows)
        return ContinuousGeneration(batcher, lambda prompt, config, templated: self._prompt_ids(
            prompt, config, templated=templated), self.seed)

    def _prompt_ids(self, prompt: str, config: GenConfig, *, templated: bool) -> list[int]:
        """The prompt's token ids, cut from the left so that prompt + max_tokens fits the context."""
        ids = self.tokenizer.encode(prompt, add_special_tokens=False) if templated else self.encode(prompt)
        if len(ids) + config.max_tokens > self._max_length:
            self.truncated += 1
            ids = ids[-max(1, self._max_length - config.max_tokens):]
        return list(ids)

    def complete_logprobs(self, prompts: Sequence[str], config: GenConfig,
                          top_logprobs: int) -> list[list[tuple[TokenChoice, ...]]]:
        """Continue raw prompts; every generated token with its logprob and `top_logprobs` alternatives.

        Logprobs are the model's own (log-softmax of the raw logits in float32), before temperature or
        top-k/top-p reshape the sampling distribution, as vLLM and OpenAI report them.
        """
        import torch

        out: list[list[tuple[TokenChoice, ...]]] = []
        for prompt in prompts:
            ids, input_ids, gen_kwargs = self._generation_inputs(prompt, config, templated=True)
            with torch.inference_mode():
                output = self.model.generate(input_ids, output_logits=True, return_dict_in_generate=True,
                                             **gen_kwargs)
            # logits[step] is [n, vocab]; sequences[j] is prompt + generated tokens of sample j
            steps = [torch.log_softmax(step.float(), dim=-1) for step in output.logits]
            sequences = []
            for j, seq in enumerate(output.sequences):
                new = seq[len(ids):].tolist()[:len(steps)]
                sequences.append(self._token_choices(new, [step[j] for step in steps], top_logprobs, config))
            out.append(sequences)
            if self.progress is not None:
                self.progress(1)
        return out

    def _token_choices(self, new: list[int], logprobs: list[Any], top: int,
                       config: GenConfig) -> tuple[TokenChoice, ...]:
        import torch

        eos = self.tokenizer.eos_token_id
        new = new[:new.index(eos)] if eos in new else new
        pieces = token_pieces(self.decode, new) or [self.decode([token]) for token in new]
        choices: list[TokenChoice] = []
        for i, (token, piece) in enumerate(zip(new, pieces)):
            alternatives: tuple[tuple[str, float], ...] = ()
            if top > 0:
                values, indices = torch.topk(logprobs[i], min(top, logprobs[i].shape[-1]))
                alternatives = tuple((self.tokenizer.decode([int(k)]), float(v))
                                     for v, k in zip(values.tolist(), indices.tolist()))
            choices.append(TokenChoice(piece, float(logprobs[i][token]), alternatives))
        return cut_choices_at_stop(tuple(choices), config.stop)

    def _generation_inputs(self, prompt: str, config: GenConfig, *, templated: bool) -> tuple[list[int], Any, dict[str, Any]]:
        import torch

        ids = self._prompt_ids(prompt, config, templated=templated)
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": config.max_tokens, "num_return_sequences": config.n,
            "pad_token_id": self.pad_id, "attention_mask": torch.ones_like(input_ids)}
        if config.greedy:
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            gen_kwargs.update(do_sample=True, temperature=config.temperature, top_p=config.top_p,
                              top_k=config.top_k if config.top_k is not None else 0)
        if config.stop:
            gen_kwargs.update(stop_strings=list(config.stop), tokenizer=self.tokenizer)
        torch.manual_seed(self.seed if config.seed is None else config.seed)
        return ids, input_ids, gen_kwargs

    def _generate_sequential(self, prompts: Sequence[str], configs: Sequence[GenConfig], *, templated: bool,
                             on_results: ResultCallback | None = None) -> list[Completion]:
        """One prompt at a time through transformers' own `generate` (`gen_batch=1`, the reference path)."""
        import torch

        out: list[Completion] = []
        for prompt, config in zip(prompts, configs):
            ids, input_ids, gen_kwargs = self._generation_inputs(prompt, config, templated=templated)
            with torch.inference_mode():
                output = self.model.generate(input_ids, **gen_kwargs)
            texts, reasons, completion_tokens = [], [], 0
            for seq in output:
                new = seq[len(ids):].tolist()
                while new and new[-1] == self.pad_id and self.pad_id == self.tokenizer.eos_token_id:
                    new.pop()
                completion_tokens += len(new)
                text = self.tokenizer.decode(new, skip_special_tokens=True)
                text, stopped = cut_at_stop(text, config.stop)
                texts.append(text)
                reasons.append("stop" if stopped or len(new) < config.max_tokens else "length")
            out.append(Completion(tuple(texts), Usage(len(ids), completion_tokens), tuple(reasons)))
            if on_results is not None:  # one prompt is one batch here
                on_results([len(out) - 1], out[-1:])
            if self.progress is not None:
                self.progress(1)
        return out


def _auto_token_budget(model: Any) -> int:
    """Tokens per forward batch that fit comfortably in a quarter of the free memory."""
    import torch

    config = model.config
    hidden = int(getattr(config, "hidden_size", 1024))
    inter = int(getattr(config, "intermediate_size", 4 * hidden))
    layers = int(getattr(config, "num_hidden_layers", 12))
    per_token = 4 * (hidden * 6 + inter * 3) + 4 * 2 * hidden * layers  # activations + KV, float32
    if torch.cuda.is_available():
        free = torch.cuda.mem_get_info()[0]
    else:
        try:
            import psutil

            free = psutil.virtual_memory().available
        except ImportError:
            free = 4 << 30
    return int(max(2048, min(free // 4 // per_token, 1 << 17)))


def create(model: str, args: dict[str, str]) -> HFBackend:
    """Factory for `hf:<path-or-id>` and the catalog's embedded models."""
    load_args = {k: v for k, v in args.items() if k in ("dtype", "revision", "trust_remote_code", "seed",
                                                        "hidden_size", "intermediate_size", "layers",
                                                        "max_length", "peft", "peft_revision", "merge")}
    if os.environ.get("EVALKIT_OFFLINE"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return HFBackend(load_model(model, load_args), args)


def from_model(model: Any, tokenizer: Any, *, name: str = "in-memory", revision: str = "", **args: str) -> HFBackend:
    """Wrap an already-loaded transformers model (a training checkpoint in memory) as a backend.

    The caller's model is left as it is: its layers get packed decoding weights only with
    `packed_decode=auto|true`.
    """
    loaded = LoadedModel(model, tokenizer, name, "<memory>", revision or f"mem-{id(model):x}")
    return HFBackend(loaded, {"packed_decode": "false", **{k: str(v) for k, v in args.items()}})
