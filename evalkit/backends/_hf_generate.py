"""Batched, prefix-shared generation for transformers causal LMs (a decoding loop of our own).

* Rows (one prompt's token ids and its sampling settings; a prompt asked for `n` samples gives `n` rows) are
  sorted by their tokens. Runs of rows that share a long common token prefix (a subject's few-shot block, the
  chat template's system turn, an MT-Bench first turn under its second) form a group: the prefix's KV cache is
  computed once and expanded along the batch dimension (views), as the scorer does for multiple choice. The
  prefix is the longest common prefix of the rows' own token ids, so no BPE merge crosses the boundary.
* Within a group, rows are sorted by length and cut into batches under a token budget (rows x (prompt + new
  tokens)). Suffixes are left-padded; the attention mask hides the pads and explicit `position_ids` give every
  row the positions it would have alone, so a row's tokens do not depend on its batch mates. A batch's prompts
  are run in parts of near-equal length (padding under 5 % of their tokens) whose KV caches are then joined,
  zero-padded, into the batch's cache: decoding runs batched without the prompt pass computing padded positions.
* Every row stops on its own: an EOS token, one of its stop strings (found in the decoded text), or its own
  `max_new_tokens`. Finished rows leave the batch (their KV rows are dropped) so long answers do not drag
  short ones along.
* Greedy rows may carry prompt-lookup drafts (`_hf_draft`): tokens guessed from their own prompt, checked in
  the same forward as the row's next token. The argmax decides what stands, so tokens are those of one-token
  steps; answers that copy their prompt finish in a few steps.
* Greedy rows take the float32 argmax. Sampled rows draw from their own `torch.Generator` seeded with the
  row's `seed`, so a sample does not depend on which other rows share its batch. The model's
  `generation_config` contributes only its EOS ids (no repetition penalty or other processors).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from evalkit.backends._hf_cache import (
    ROOM,
    adopt_store,
    cache_argument,
    decoding_cache,
    empty_cache,
    expand_cache,
    output_cache,
    select_rows,
)
from evalkit.backends._hf_draft import DRAFT_ROWS, Backoff, DraftState, accepted, step_cap
from evalkit.backends._hf_kernels import decoding_kernels, pack_linears
from evalkit.backends._hf_scoring import _grouped_query_sdpa, left_padded
from evalkit.backends._stops import cut_at_stop
from evalkit.types import Completion, GenConfig, Usage

__all__ = ["GenOutput", "GenRow", "GenStats", "Generator", "RowGenerator", "RowState", "eos_ids", "generate_completions",
           "held_back", "plan_groups", "row_generator"]

OnText = Callable[[int, str], None]  # (row index, newly safe text)
OnBatch = Callable[[Sequence[int], Sequence["GenOutput"]], None]  # (row indices, their outputs)


class RowGenerator(Protocol):
    """What runs rows: the `Generator` itself, or the continuous batcher that `evalkit serve` puts before it."""

    def generate(self, rows: Sequence[GenRow], *, on_text: OnText | None = None,
                 on_batch: OnBatch | None = None) -> list[GenOutput]: ...


@dataclass(frozen=True)
class GenRow:
    """One sequence to generate: prompt token ids and its own settings (temperature <= 0 is greedy)."""

    tokens: tuple[int, ...]
    max_new_tokens: int
    stop: tuple[str, ...] = ()
    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int = 0


@dataclass(frozen=True)
class GenOutput:
    """The generated token ids (no EOS), the text cut before any stop string, and why generation ended."""

    tokens: tuple[int, ...]
    text: str
    finish_reason: str  # "stop" (EOS or a stop string) or "length" (max_new_tokens)


@dataclass
class GenStats:
    """Counters: prompt tokens actually run, prompt tokens in all rows, forward calls, prefix groups."""

    prompt_tokens_run: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    forward_calls: int = 0
    batches: int = 0
    prefix_groups: int = 0
    prefill_parts: int = 0  # unpadded prefill parts joined into a batch's cache
    draft_steps: int = 0  # decoding steps that checked prompt-lookup drafts
    draft_tokens: int = 0  # draft tokens checked
    draft_accepted: int = 0  # draft tokens the model's argmax agreed with

    def as_dict(self) -> dict[str, int]:
        return {f"gen_{k}": v for k, v in self.__dict__.items()}


def eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """EOS token ids: the model's generation config (an int or a list) plus the tokenizer's."""
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif isinstance(configured, (list, tuple)):
        ids.update(int(i) for i in configured)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return frozenset(ids)


def held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters of `text` could still start a stop string (not safe to stream yet).

    Examples:
        >>> held_back("The answer is [", ("[[",))
        1
        >>> held_back("Done.", ("[[",))
        0
    """
    keep = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), keep, -1):
            if text.endswith(stop[:size]):
                keep = size
                break
    return keep


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def plan_groups(rows: Sequence[GenRow], *, min_prefix: int, enabled: bool) -> list[tuple[int, list[int]]]:
    """Group row indices by a shared token prefix: [(prefix length, row indices)]; prefix 0 = no sharing.

    Every row keeps at least one token after the prefix (its last prompt token gives the first logits).
    """
    order = sorted(range(len(rows)), key=lambda i: rows[i].tokens)
    if not enabled:
        return [(0, order)] if order else []
    groups: list[tuple[int, list[int]]] = []
    loose: list[int] = []
    prefix, members, first = 0, list[int](), tuple[int, ...]()
    for i in order:
        tokens = rows[i].tokens
        shared = min(prefix, _lcp(first, tokens), len(tokens) - 1) if members else 0
        if members and shared >= min_prefix:
            prefix = shared
            members.append(i)
            continue
        if len(members) > 1:
            groups.append((prefix, members))
        else:
            loose.extend(members)
        prefix, members, first = len(tokens) - 1, [i], tokens
    if len(members) > 1:
        groups.append((prefix, members))
    else:
        loose.extend(members)
    if loose:
        groups.append((0, loose))
    return groups


_PAD_TOLERANCE = 0.05  # padded positions a prefill part may hold, as a fraction of its real tokens


def padding_parts(lengths: Sequence[int], tolerance: float) -> list[tuple[int, int]]:
    """Cut rows sorted longest first into runs [start, end) whose padding is at most `tolerance` of their tokens.

    Examples:
        >>> padding_parts([100, 98, 60, 59, 10], 0.05)
        [(0, 2), (2, 4), (4, 5)]
        >>> padding_parts([5, 5, 5], 0.0)
        [(0, 3)]
    """
    parts: list[tuple[int, int]] = []
    start = 0
    while start < len(lengths):
        end, total = start + 1, lengths[start]
        while end < len(lengths) and (end + 1 - start) * lengths[start] - (total + lengths[end]) \
                <= tolerance * (total + lengths[end]):
            total += lengths[end]
            end += 1
        parts.append((start, end))
        start = end
    return parts


def _plain_layers(cache: Any) -> bool:
    """True when every layer of `cache` is a plain full-attention dynamic layer (or the cache is still lazy)."""
    layers = getattr(cache, "layers", None)
    return layers is not None and all(type(layer).__name__ == "DynamicLayer" for layer in layers)


def join_caches(caches: Sequence[Any], p: int, room: int = ROOM) -> Any:
    """One decoding cache of the rows of `caches` (batches run apart after a shared `p`-token prefix), each
    part's suffix left-padded with zeros to the widest part's: the layout of one left-padded batch.

    The parts are written once into stores that keep `room` positions free, which the joined layers own
    (`adopt_store`): the first decoding step appends there instead of moving the whole cache again.
    """
    width = max(c.layers[0].keys.shape[-2] for c in caches)
    joined = copy.copy(caches[0])
    joined.layers = []
    for layers in zip(*(c.layers for c in caches)):
        layer = copy.copy(layers[0])
        stores = []
        for name in ("keys", "values"):
            parts = [getattr(part, name) for part in layers]
            first = parts[0]
            out = first.new_empty((sum(t.shape[0] for t in parts), *first.shape[1:-2], width + room, first.shape[-1]))
            row = 0
            for tensor in parts:  # each part written once into its rows: prefix, zeros, suffix
                rows, gap = slice(row, row + tensor.shape[0]), width - tensor.shape[-2]
                out[rows, ..., :p, :] = tensor[..., :p, :]
                out[rows, ..., p:p + gap, :] = 0
                out[rows, ..., p + gap:width, :] = tensor[..., p:, :]
                row += tensor.shape[0]
            stores.append(out)
        adopt_store(layer, stores[0], stores[1], width, room)
        joined.layers.append(layer)
    return joined


@dataclass
class RowState:
    """Decoding state of one row in a running batch."""

    index: int
    request: GenRow
    generator: Any
    tokens: list[int] = field(default_factory=list)
    emitted: str = ""
    finish: str = ""
    text: str = ""
    draft: DraftState = field(default_factory=DraftState)


PACK_AFTER_STEPS = 32  # multi-row decoding steps before `packed_decode=auto` packs the weights


class Generator:
    """Runs `GenRow`s through a causal LM in prefix-shared, left-padded batches."""

    def __init__(self, model: Any, tokenizer: Any, *, pad_id: int, rows_per_batch: int, token_budget: int,
                 prefix_cache: bool = True, min_prefix: int = 8, packing: str = "false",
                 prompt_lookup: bool = True) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.base = model.get_decoder()
        self.lm_head = model.get_output_embeddings()
        self.softcap = getattr(model.config, "final_logit_softcapping", None)
        self.cache_arg = cache_argument(self.base)
        self.pad_id = pad_id
        self.eos = eos_ids(model, tokenizer)
        self.rows_per_batch = max(1, rows_per_batch)
        self.token_budget = max(1, token_budget)
        self.prefix_cache = prefix_cache
        self.min_prefix = max(1, min_prefix)
        self.joinable = _plain_layers(empty_cache(model.config))  # prefill parts can be joined (no sliding layers)
        self.drafting = prompt_lookup and self.joinable  # masked-out rejected drafts would shift sliding windows
        self.stats = GenStats()
        self.packing = packing  # `pack_linears` mode still to apply ("" once applied): see `_pack_when_due`
        self.packed_layers = 0
        self.wide_steps = 0  # decoding steps of more than one row so far

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def generate(self, rows: Sequence[GenRow], *, on_text: OnText | None = None,
                 on_batch: OnBatch | None = None) -> list[GenOutput]:
        """Generate every row; `on_text` streams safe text per row, `on_batch` fires as each batch ends."""
        import torch

        results = {i: GenOutput((), "", "length") for i, r in enumerate(rows) if r.max_new_tokens <= 0}
        todo = [r if r.max_new_tokens > 0 else GenRow(r.tokens, 0) for r in rows]
        groups = [(p, [i for i in members if i not in results])
                  for p, members in plan_groups(todo, min_prefix=self.min_prefix, enabled=self.prefix_cache)]
        if results and on_batch is not None:
            on_batch(sorted(results), [results[i] for i in sorted(results)])
        self.stats.prompt_tokens += sum(len(r.tokens) for r in rows)
        with torch.inference_mode(), _grouped_query_sdpa(self.device):
            for prefix, members in groups:
                if members:
                    self._run_group(rows, prefix, members, results, on_text, on_batch)
        return [results[i] for i in range(len(rows))]

    def _run_group(self, rows: Sequence[GenRow], p: int, members: list[int], results: dict[int, GenOutput],
                   on_text: OnText | None, on_batch: OnBatch | None) -> None:
        cache = self.prefix_cache_of(rows[members[0]].tokens[:p]) if p > 0 else None
        members = sorted(members, key=lambda i: (-len(rows[i].tokens), i))
        start = 0
        while start < len(members):
            size = self._batch_size(rows, members, start)
            batch = members[start:start + size]
            outputs = self._run_batch([RowState(i, rows[i], row_generator(rows[i], self.device)) for i in batch],
                                      p, cache, on_text)
            results.update(zip(batch, outputs))
            self.stats.batches += 1
            if on_batch is not None:
                on_batch(batch, outputs)
            start += size

    def prefix_cache_of(self, prefix: Sequence[int]) -> Any:
        """The KV cache of a shared prefix (one row), to be expanded over the rows that share it."""
        import torch

        self.stats.prefix_groups += 1
        ids = torch.tensor([list(prefix)], dtype=torch.long, device=self.device)
        out = self.base(input_ids=ids, use_cache=True, **{self.cache_arg: empty_cache(self.model.config)})
        self.stats.prompt_tokens_run += len(prefix)
        self.stats.forward_calls += 1
        return output_cache(out)

    def _batch_size(self, rows: Sequence[GenRow], members: list[int], start: int) -> int:
        """Rows for the next batch: within the row limit and rows x longest (prompt + new tokens) <= budget."""
        longest = 0
        size = 0
        while start + size < len(members) and size < self.rows_per_batch:
            row = rows[members[start + size]]
            candidate = max(longest, len(row.tokens) + row.max_new_tokens)
            if size > 0 and (size + 1) * candidate > self.token_budget:
                break
            longest = candidate
            size += 1
        return max(1, size)

    def _run_batch(self, batch: list[RowState], p: int, prefix_cache: Any, on_text: OnText | None) -> list[GenOutput]:
        import torch

        device = self.device
        suffixes = [row.request.tokens[p:] for row in batch]
        mask = left_padded(suffixes, p, self.pad_id)[1].to(device)
        room = min(ROOM, max(row.request.max_new_tokens for row in batch))  # what decoding can add
        logits, cache = self.prefill(suffixes, p, prefix_cache, room=room)
        active = list(batch)
        next_pos = torch.tensor([[p + len(s)] for s in suffixes], dtype=torch.long, device=device)
        news = [[t] for t in self.choose(logits, active)]  # each row's new tokens; the last is the next input
        gate = Backoff()  # the batch's drafting in steps of more than DRAFT_ROWS rows
        while True:
            keep = [k for k, row in enumerate(active) if not self.advance_all(row, news[k], on_text)]
            if not keep:
                break
            if len(keep) < len(active):
                index = torch.tensor(keep, dtype=torch.long, device=device)
                select_rows(cache, index)
                mask, next_pos, news = mask[index], next_pos[index], [news[k] for k in keep]
                active = [active[k] for k in keep]
            drafts = self.drafts(active, gate)
            width = 1 + max(map(len, drafts))
            ids = [[new[-1], *draft] + [self.pad_id] * (width - 1 - len(draft)) for new, draft in zip(news, drafts)]
            mask = torch.cat([mask, mask.new_tensor([[1] * (1 + len(d)) + [0] * (width - 1 - len(d))
                                                     for d in drafts])], dim=1)
            step = torch.tensor(ids, dtype=torch.long, device=device)
            logits = self.forward(step, mask, next_pos + torch.arange(width, device=device), cache, every=True)
            news = self.verify(logits, active, drafts, gate)
            start = mask.shape[1] - width  # this step's first column
            for k, (new, draft) in enumerate(zip(news, drafts)):  # rejected draft positions: masked from now on
                if len(new) <= len(draft):
                    mask[k, start + len(new):start + 1 + len(draft)] = 0
            next_pos = next_pos + next_pos.new_tensor([[len(new)] for new in news])
        return [GenOutput(tuple(row.tokens), row.text, row.finish) for row in batch]

    def prefill(self, suffixes: Sequence[Sequence[int]], p: int, prefix_cache: Any,
                room: int = ROOM) -> tuple[Any, Any]:
        """Run the prompts' suffixes after the `p` prefix tokens: each row's last logits and the batch's KV cache.

        Rows (longest first) are run in parts whose padding stays under `_PAD_TOLERANCE` of their tokens; the
        parts' caches are then joined, left-padded with zeros, into the one cache the decoding steps extend (in
        place, `room` positions at a time: `decoding_cache`). The pads are masked, so a row's values are those
        of a padded batch, without computing a padded batch's positions. Models whose cache layers are not
        plain (sliding-window layers) take one padded forward.
        """
        import torch

        parts = padding_parts([len(s) for s in suffixes], _PAD_TOLERANCE) if self.joinable else [(0, len(suffixes))]
        device = self.device
        logits, caches = [], []
        for start, end in parts:
            ids, mask, pos = left_padded(suffixes[start:end], p, self.pad_id)
            cache = expand_cache(prefix_cache, end - start) if prefix_cache is not None \
                else empty_cache(self.model.config)
            logits.append(self.forward(ids.to(device), mask.to(device), pos.to(device), cache))
            caches.append(cache)
        self.stats.prompt_tokens_run += sum(len(s) for s in suffixes)
        if len(caches) == 1:
            return logits[0], decoding_cache(caches[0], room)
        self.stats.prefill_parts += len(caches)
        return torch.cat(logits), join_caches(caches, p, room)

    def forward(self, ids: Any, mask: Any, pos: Any, cache: Any, every: bool = False) -> Any:
        """One forward over the cache; float32 logits of each row's last position (of every position: `every`)."""
        import torch

        if self.packing:
            self._pack_when_due(ids)
        with decoding_kernels():
            out = self.base(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                            **{self.cache_arg: cache})
            logits = self.lm_head(out.last_hidden_state if every else out.last_hidden_state[:, -1]).float()
        self.stats.forward_calls += 1
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits

    def _pack_when_due(self, ids: Any) -> None:
        """Apply `packed_decode`: `true` and `false` at the first forward, `auto` after `PACK_AFTER_STEPS`.

        Packing costs about what `PACK_AFTER_STEPS` decoding steps of several rows save (SmolLM2 on one core:
        0.7 s against 20-40 ms a step), so `auto` waits until that many have run: a generation of short answers
        (a letter, a number) never pays for it, and one that runs longer loses at most about the packing's cost.
        Scoring never reaches this.
        """
        if self.packing == "auto" and ids.shape[1] == 1 and ids.shape[0] > 1:
            self.wide_steps += 1
        if self.packing != "auto" or self.wide_steps >= PACK_AFTER_STEPS:
            self.packed_layers, self.packing = pack_linears(self.model, self.packing), ""

    def drafts(self, active: list[RowState], gate: Backoff) -> list[list[int]]:
        """Each row's prompt-lookup draft for the next step ([] for sampled rows, and for every row when the
        step is too wide, or wider than `DRAFT_ROWS` rows while the batch's `gate` waits after poor drafts)."""
        cap = step_cap(len(active)) if self.drafting else 0
        if cap == 0 or (len(active) > DRAFT_ROWS and not gate.ready()):
            return [[] for _ in active]
        return [row.draft.propose(row.request.tokens, row.tokens, min(cap, row.request.max_new_tokens - len(row.tokens) - 1))
                if row.request.temperature <= 0 else [] for row in active]

    def verify(self, logits: Any, active: list[RowState], drafts: list[list[int]], gate: Backoff) -> list[list[int]]:
        """Each row's new tokens from a decoding step's logits (rows x positions x vocabulary): its next token
        (`choose`) and, for a greedy row, the draft tokens the argmax let through with the argmax after them.
        A step of more than `DRAFT_ROWS` rows in which less than half the draft tokens held closes the batch's
        `gate` for a while."""
        firsts = self.choose(logits[:, 0], active)
        drafted = sum(map(len, drafts))
        if not drafted:
            return [[t] for t in firsts]
        argmax = logits.argmax(dim=-1).tolist()
        news = [accepted(draft, argmax[k]) if draft else [firsts[k]] for k, draft in enumerate(drafts)]
        for row, draft, new in zip(active, drafts, news):
            row.draft.record(len(draft), len(new) - 1)
        taken = sum(map(len, news)) - len(news)
        if len(active) > DRAFT_ROWS:
            gate.record(2 * taken >= drafted)
        self.stats.draft_steps += 1
        self.stats.draft_tokens += drafted
        self.stats.draft_accepted += taken
        return news

    def advance_all(self, row: RowState, tokens: list[int], on_text: OnText | None) -> bool:
        """Append `tokens` to `row` in order until it finishes; True when it has."""
        return any(self.advance(row, token, on_text) for token in tokens)

    def choose(self, logits: Any, active: list[RowState]) -> list[int]:
        """The next token of every active row: the argmax for greedy rows, a draw from its generator else."""
        chosen = logits.argmax(dim=-1).tolist()
        for k, row in enumerate(active):
            if row.request.temperature > 0:
                chosen[k] = _sample(logits[k], row.request, row.generator)
        return [int(t) for t in chosen]

    def advance(self, row: RowState, token: int, on_text: OnText | None) -> bool:
        """Append `token` to `row`; True when the row has finished."""
        req = row.request
        if token in self.eos:
            row.finish = "stop"
        else:
            row.tokens.append(token)
            self.stats.generated_tokens += 1
            if len(row.tokens) >= req.max_new_tokens:
                row.finish = "length"
        if not (row.finish or req.stop or on_text):
            return False
        text, stopped = cut_at_stop(self.tokenizer.decode(row.tokens, skip_special_tokens=True), req.stop)
        if stopped:
            row.finish = "stop"
        row.text = text
        if on_text is not None:
            safe = text if row.finish else text.rstrip("\ufffd")
            safe = safe if row.finish else safe[:len(safe) - held_back(safe, req.stop)]
            if len(safe) > len(row.emitted) and safe.startswith(row.emitted):
                on_text(row.index, safe[len(row.emitted):])
                row.emitted = safe
        return bool(row.finish)


def row_generator(row: GenRow, device: Any) -> Any:
    """A row's own random generator (None for greedy rows)."""
    import torch

    if row.temperature <= 0:
        return None
    generator = torch.Generator(device=device)
    generator.manual_seed(row.seed)
    return generator


def _sample(logits: Any, req: GenRow, generator: Any) -> int:
    """Draw one token from temperature / top-k / top-p filtered logits (HF's filtering rules)."""
    import torch

    scores = logits / req.temperature
    if req.top_k is not None and 0 < req.top_k < scores.shape[-1]:
        kth = torch.topk(scores, req.top_k).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if req.top_p is not None and req.top_p < 1.0:
        ordered, order = torch.sort(scores, descending=False)
        cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
        remove = cumulative <= (1 - req.top_p)
        remove[-1] = False  # keep at least the most likely token
        scores = scores.masked_fill(remove.scatter(0, order, remove), float("-inf"))
    probs = scores.softmax(dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator).item())


OnResults = Callable[[Sequence[int], Sequence[Completion]], None]  # (request indices, their completions)
OnStream = Callable[[int, int, str], None]  # (request index, sample index, newly safe text)


def generate_completions(generator: RowGenerator, prompts: Sequence[Sequence[int]], configs: Sequence[GenConfig],
                         *, base_seed: int, on_text: OnStream | None = None,
                         on_results: OnResults | None = None,
                         progress: Callable[[int], None] | None = None) -> list[Completion]:
    """One `Completion` per prompt (token ids) with its own `GenConfig`, generated in shared batches.

    Sample j of a prompt is a row seeded with `(config.seed if set, else base_seed) + j`: the same seed
    gives the same sample whatever else is in the batch. `on_results` receives each request as soon as the
    batch that finishes its last sample ends.
    """
    rows: list[GenRow] = []
    owner: list[tuple[int, int]] = []
    for i, (ids, config) in enumerate(zip(prompts, configs)):
        seed = base_seed if config.seed is None else config.seed
        for j in range(config.n):
            rows.append(GenRow(tuple(ids), config.max_tokens, tuple(config.stop), config.temperature,
                               config.top_k, config.top_p, seed + j))
            owner.append((i, j))
    outputs: dict[int, list[GenOutput | None]] = {i: [None] * c.n for i, c in enumerate(configs)}
    done: dict[int, Completion] = {}

    def finish_batch(indices: Sequence[int], results: Sequence[GenOutput]) -> None:
        ready = []
        for index, result in zip(indices, results):
            i, j = owner[index]
            outputs[i][j] = result
            if all(o is not None for o in outputs[i]):
                done[i] = _completion(len(prompts[i]), [o for o in outputs[i] if o is not None])
                ready.append(i)
        if ready and on_results is not None:
            on_results(ready, [done[i] for i in ready])
        if ready and progress is not None:
            progress(len(ready))

    stream: OnText | None = None
    if on_text is not None:
        def stream(index: int, text: str) -> None:
            on_text(owner[index][0], owner[index][1], text)
    generator.generate(rows, on_text=stream, on_batch=finish_batch)
    for i, config in enumerate(configs):  # n = 0 asks for nothing
        done.setdefault(i, _completion(len(prompts[i]), []))
    return [done[i] for i in range(len(prompts))]


def _completion(prompt_tokens: int, outputs: Sequence[GenOutput]) -> Completion:
    return Completion(tuple(o.text for o in outputs), Usage(prompt_tokens, sum(len(o.tokens) for o in outputs)),
                      tuple(o.finish_reason for o in outputs))
