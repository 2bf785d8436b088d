"""Exact, fast loglikelihood scoring for transformers causal LMs.

Three ideas, each exact:

* Shared prefixes. Rows (token sequences to run) are sorted; runs of rows that share a long common token
  prefix (the few-shot block of a subject) form a group. The prefix's KV cache is computed once and the
  suffixes are scored in batches over that cache expanded along the batch dimension. Because the prefix is
  the longest common prefix of the rows' *own* token ids, no BPE merge can cross the boundary.
* One forward per question. Requests with the same input whose continuations are single tokens (the option
  letters) become one row; every letter is read from the same position.
* Logits only where scored. The LM head runs on the hidden states of the scored positions only (chunked),
  and log-softmax is taken in float32 there.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit.backends._hf_cache import cache_argument, empty_cache, expand_cache, output_cache

__all__ = ["Row", "ScoreStats", "Scored", "Scorer", "left_padded"]

Scored = tuple[float, bool, tuple[float, ...]]  # (logprob, is_greedy, per-token logprobs) of one target

_LOGIT_CHUNK = 512
_EQUAL_LENGTH_FROM = 256  # rows at least this long are batched only with rows of the same length (no padding)
_PAD_TOLERANCE = 0.05  # padded positions allowed in a batch, as a fraction of its real tokens


@dataclass(frozen=True)
class Row:
    """One model input and what to read from it.

    `targets[j] = (key, tokens)`: `tokens` are scored at the last len(tokens) positions of `tokens_in`
    (position p predicts tokens_in[p + 1], or the target token after the end).
    """

    tokens_in: tuple[int, ...]
    targets: tuple[tuple[int, tuple[int, ...]], ...]

    @property
    def keep(self) -> int:
        return max(len(t) for _, t in self.targets)


@dataclass
class ScoreStats:
    """Counters for the benchmark: tokens the model actually ran versus distinct tokens."""

    tokens_processed: int = 0
    unique_tokens: int = 0
    forward_calls: int = 0
    rows: int = 0
    prefix_groups: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass
class _Group:
    prefix_len: int
    rows: list[tuple[int, Row]] = field(default_factory=list)


def plan_groups(rows: Sequence[Row], *, min_prefix: int, enabled: bool) -> tuple[list[_Group], int]:
    """Group rows by shared token prefix; return (groups, unique token count over all rows)."""
    order = sorted(range(len(rows)), key=lambda i: rows[i].tokens_in)
    unique = 0
    prev: tuple[int, ...] = ()
    for i in order:
        unique += len(rows[i].tokens_in) - _lcp(prev, rows[i].tokens_in)
        prev = rows[i].tokens_in
    if not enabled:
        return [_Group(0, [(i, rows[i]) for i in order])], unique
    groups: list[_Group] = []
    loose: list[tuple[int, Row]] = []
    current: _Group | None = None
    first: tuple[int, ...] = ()
    for i in order:
        row = rows[i]
        limit = len(row.tokens_in) - row.keep  # scored positions must lie in the suffix
        if current is not None:
            shared = min(current.prefix_len, _lcp(first, row.tokens_in), limit)
            if shared >= min_prefix:
                current.prefix_len = shared
                current.rows.append((i, row))
                continue
        current, first = _Group(limit, [(i, row)]), row.tokens_in
        groups.append(current)
    kept = []
    for group in groups:
        if len(group.rows) > 1:
            kept.append(group)
        else:
            loose.extend(group.rows)
    if loose:
        kept.append(_Group(0, loose))
    return kept, unique


def left_padded(suffixes: Sequence[Sequence[int]], p: int, pad_id: int) -> tuple[Any, Any, Any]:
    """Left-padded ids, the attention mask over prefix + suffix, and every row's own positions."""
    import torch

    width = max(len(s) for s in suffixes)
    n = len(suffixes)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n, p + width), dtype=torch.long)
    mask[:, :p] = 1
    pos = torch.full((n, width), p, dtype=torch.long)
    for i, suffix in enumerate(suffixes):
        pad = width - len(suffix)
        ids[i, pad:] = torch.tensor(suffix, dtype=torch.long)
        mask[i, p + pad:] = 1
        pos[i, pad:] = torch.arange(p, p + len(suffix))
    return ids, mask, pos


class Scorer:
    """Runs rows through a causal LM and returns {target key: (logprob, is_greedy, per-token logprobs)}."""

    def __init__(self, model: Any, *, pad_id: int, rows_per_batch: int, token_budget: int,
                 prefix_cache: bool = True, min_prefix: int = 8) -> None:
        self.model = model
        self.base = model.get_decoder()
        self.lm_head = model.get_output_embeddings()
        self.softcap = getattr(model.config, "final_logit_softcapping", None)
        self.pad_id = pad_id
        self.rows_per_batch = max(1, rows_per_batch)
        self.token_budget = max(1, token_budget)
        self.prefix_cache = prefix_cache
        self.min_prefix = min_prefix
        self.stats = ScoreStats()

    def score(self, rows: Sequence[Row], advance: Callable[[int], None] | None = None,
              on_batch: Callable[[dict[int, Scored]], None] | None = None) -> dict[int, Scored]:
        """Score every target of `rows`, grouped by shared prefix and batched.

        Args:
            rows: model inputs and their targets (target keys must be unique across rows).
            advance: called with the number of targets each batch scored (progress).
            on_batch: called as each batch finishes with that batch's {target key: result}, so a caller
                can store partial results while later batches still run.

        Returns:
            {target key: (logprob, is_greedy, per-token logprobs)} for every target.
        """
        import torch

        groups, unique = plan_groups(rows, min_prefix=self.min_prefix, enabled=self.prefix_cache)
        self.stats.unique_tokens += unique
        self.stats.rows += len(rows)
        results: dict[int, Scored] = {}

        def finished(batch: list[Row]) -> None:
            keys = [key for row in batch for key, _ in row.targets]
            if advance is not None:
                advance(len(keys))
            if on_batch is not None:
                on_batch({key: results[key] for key in keys})

        with torch.inference_mode(), _grouped_query_sdpa(self._device):
            for group in groups:
                self._score_group(group, results, finished)
        return results

    def _score_group(self, group: _Group, results: dict[int, Scored],
                     finished: Callable[[list[Row]], None]) -> None:
        import torch

        p = group.prefix_len
        cache = None
        if p > 0:
            self.stats.prefix_groups += 1
            prefix = torch.tensor([group.rows[0][1].tokens_in[:p]], dtype=torch.long, device=self._device)
            cache = output_cache(self.base(input_ids=prefix, use_cache=True,
                                           **{cache_argument(self.base): empty_cache(self.model.config)}))
            self.stats.tokens_processed += p
            self.stats.forward_calls += 1
        members = sorted(group.rows, key=lambda item: -len(item[1].tokens_in))
        start = 0
        while start < len(members):
            size = self._batch_size(members, start, p)
            batch = [row for _, row in members[start:start + size]]
            self._score_batch(batch, p, cache, results)
            finished(batch)
            start += size

    def _batch_size(self, members: list[tuple[int, Row]], start: int, p: int) -> int:
        """Rows for the next batch (members are sorted longest first): within the row and token budgets,
        and stopping before padding would exceed `_PAD_TOLERANCE` of the real tokens."""
        longest = len(members[start][1].tokens_in) - p
        limit = max(1, min(self.rows_per_batch, self.token_budget // max(1, longest + p)))
        real = longest
        size = 1
        while size < limit and start + size < len(members):
            length = len(members[start + size][1].tokens_in) - p
            if p == 0 and longest >= _EQUAL_LENGTH_FROM and length != longest:
                break  # long rows without a shared prefix (perplexity windows): no padding mask at all
            if (size + 1) * longest > (1 + _PAD_TOLERANCE) * (real + length):
                break
            real += length
            size += 1
        return size

    @property
    def _device(self) -> Any:
        return next(self.model.parameters()).device

    def _score_batch(self, batch: list[Row], p: int, cache: Any, results: dict[int, Scored]) -> None:
        import torch

        suffixes = [row.tokens_in[p:] for row in batch]
        width = max(len(s) for s in suffixes)
        n = len(batch)
        ids, mask, pos = left_padded(suffixes, p, self.pad_id)
        device = self._device
        kwargs: dict[str, Any] = {"input_ids": ids.to(device)}
        if p > 0 or any(len(s) != width for s in suffixes):
            kwargs.update(attention_mask=mask.to(device), position_ids=pos.to(device))
        if cache is not None:
            kwargs[cache_argument(self.base)] = expand_cache(cache, n)
            kwargs["use_cache"] = True
        else:
            kwargs["use_cache"] = False
        hidden = self.base(**kwargs).last_hidden_state
        self.stats.forward_calls += 1
        self.stats.tokens_processed += sum(len(s) for s in suffixes)
        picked = torch.cat([hidden[i, width - row.keep:] for i, row in enumerate(batch)], dim=0)
        logprobs, greedy = self._gather(picked, batch)
        for (key, value, per_token), is_greedy in zip(logprobs, greedy):
            results[key] = (value, is_greedy, per_token)

    def _gather(self, hidden: Any, batch: list[Row]) -> tuple[list[tuple[int, float, tuple[float, ...]]], list[bool]]:
        """Float32 log-probabilities of the targets at the kept positions only, in chunks."""
        import torch

        offsets, at = [], 0
        for row in batch:
            offsets.append(at)
            at += row.keep
        index_rows: list[int] = []
        index_tokens: list[int] = []
        spans: list[tuple[int, int, int]] = []  # (key, start in flat list, length)
        for row, off in zip(batch, offsets):
            for key, tokens in row.targets:
                start = off + row.keep - len(tokens)
                spans.append((key, len(index_rows), len(tokens)))
                index_rows.extend(range(start, start + len(tokens)))
                index_tokens.extend(tokens)
        values = torch.empty(len(index_rows), dtype=torch.float32)
        is_max = torch.empty(len(index_rows), dtype=torch.bool)
        rows_t = torch.tensor(index_rows, dtype=torch.long)
        toks_t = torch.tensor(index_tokens, dtype=torch.long)
        for c in range(0, hidden.shape[0], _LOGIT_CHUNK):
            sel = (rows_t >= c) & (rows_t < c + _LOGIT_CHUNK)
            if not bool(sel.any()):
                continue
            logits = self.lm_head(hidden[c:c + _LOGIT_CHUNK]).float()
            if self.softcap:
                logits = torch.tanh(logits / self.softcap) * self.softcap
            # every row of `hidden` is a scored position, so one log-sum-exp per row serves all its targets;
            # log p(t) = (logit_t - max) - log Σ exp(logit - max), done in place on the chunk: no second
            # [positions, vocab] tensor is written
            top, best = logits.max(dim=-1, keepdim=True)
            local = (rows_t[sel] - c).to(logits.device)
            targets = toks_t[sel].to(logits.device)
            logits.sub_(top)
            picked = logits[local, targets]
            lse = logits.exp_().sum(dim=-1).log_()
            values[sel] = (picked - lse[local]).cpu()
            is_max[sel] = (best[local, 0] == targets).cpu()
        out, greedy = [], []
        for key, start, length in spans:
            span = values[start:start + length]
            out.append((key, float(span.double().sum()), tuple(span.tolist())))
            greedy.append(bool(is_max[start:start + length].all()))
        return out, greedy


@contextlib.contextmanager
def _grouped_query_sdpa(device: Any) -> Iterator[None]:
    """On CPU, let SDPA read grouped KV heads directly even under a padding mask.

    transformers otherwise repeats each KV head for its query heads whenever a mask is passed (copies of
    [batch, heads, prefix + suffix, dim] per layer), which every prefix-shared suffix batch has. PyTorch's CPU
    kernels take `enable_gqa` with a mask and give identical values (measured: 0.0 difference on 80 CMMLU
    questions, 2-3 % less time). CUDA keeps transformers' own choice; a value the user set wins.
    """
    key = "TRANSFORMERS_SDPA_FORCE_GQA"
    if getattr(device, "type", "cpu") != "cpu" or key in os.environ:
        yield
        return
    os.environ[key] = "1"
    try:
        yield
    finally:
        os.environ.pop(key, None)
