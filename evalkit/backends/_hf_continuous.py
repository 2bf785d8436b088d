"""Continuous batching for `evalkit serve` on the transformers backend: requests join a running batch.

`Generator.generate` runs the rows of one call to completion. A server's requests do not come as one call:
they arrive while others are being answered, and a request that waits for a whole batch to finish before it
may start leaves the batch shrinking as its rows end. `ContinuousBatcher` keeps one batch running on a worker
thread and lets rows in between decoding steps:

* Rows queued since the last step (from any number of requests) are prefilled together, as `Generator` would
  (prefix-shared groups, parts of near-equal length), get their first token, and their KV caches are joined to
  the running batch's, left-padded with zeros to a common width. As rows finish they leave the batch, and
  columns that no remaining row attends to are cut off, so the cache stays as wide as its widest live row.
* Each step feeds every running row its last token in one batched forward.
* A row's tokens do not depend on which rows share its batch or when it joined: pads are masked, every row has
  its own `position_ids`, and sampled rows draw from their own seeded generator.
* Rows are admitted first come, first served, while the batch stays within the generator's row limit and its
  token budget (rows x longest prompt + new tokens); the rest wait for rows to finish. When nothing runs, the
  first row waits `window_s` for others to arrive, so a burst is prefilled as one batch.
* The worker holds the service lock for one step at a time: scoring and other backend calls run between steps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit.backends._hf_cache import drop_columns, select_rows
from evalkit.backends._hf_generate import (
    Generator,
    GenOutput,
    GenRow,
    OnBatch,
    OnStream,
    OnText,
    RowState,
    generate_completions,
    join_caches,
    plan_groups,
    row_generator,
)
from evalkit.backends._hf_scoring import _grouped_query_sdpa, left_padded
from evalkit.types import Completion, GenConfig

__all__ = ["ContinuousBatcher", "ContinuousGeneration"]


@dataclass
class _Call:
    """One `generate` call: its rows, callbacks and results."""

    rows: Sequence[GenRow]
    on_text: OnText | None
    on_batch: OnBatch | None
    outputs: dict[int, GenOutput] = field(default_factory=dict)
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)
    arrived: float = field(default_factory=time.monotonic)


@dataclass
class _Slot:
    """A row in the running batch: its decoding state, its call, and the token it feeds next."""

    state: RowState
    call: _Call
    pending: int = 0


@dataclass
class _Batch:
    """The running batch: slots, their KV cache, attention mask (rows x cache columns) and next positions."""

    slots: list[_Slot]
    cache: Any
    mask: Any
    pos: Any


class ContinuousBatcher:
    """Runs `GenRow`s of concurrent callers through `generator` in one continuously refilled batch."""

    def __init__(self, generator: Generator, lock: threading.Lock, *, window_s: float = 0.005,
                 max_rows: int | None = None) -> None:
        self.generator = generator
        self.lock = lock
        self.window_s = max(0.0, window_s)
        self.max_rows = max(1, min(generator.rows_per_batch, max_rows or generator.rows_per_batch))
        self.steps = 0  # decoding steps run
        self.joins = 0  # times new rows joined (or started) the batch
        self.peak_rows = 0  # the most rows one decoding step ran
        self._queue: list[tuple[_Call, int]] = []
        self._cond = threading.Condition()
        self._batch: _Batch | None = None
        self._worker: threading.Thread | None = None

    def generate(self, rows: Sequence[GenRow], *, on_text: OnText | None = None,
                 on_batch: OnBatch | None = None) -> list[GenOutput]:
        """Generate `rows` (blocking); `on_text` and `on_batch` are called from the worker thread, per row."""
        call = _Call(rows, on_text, on_batch)
        empty = [i for i, row in enumerate(rows) if row.max_new_tokens <= 0]
        for i in empty:
            self._finish(call, i, GenOutput((), "", "length"))
        if len(empty) < len(rows):
            with self._cond:
                if self._worker is None:
                    self._worker = threading.Thread(target=self._loop, daemon=True, name="evalkit-serve-decoder")
                    self._worker.start()
                self._queue.extend((call, i) for i, row in enumerate(rows) if row.max_new_tokens > 0)
                self._cond.notify_all()
            call.done.wait()
        if call.error is not None:
            raise call.error
        return [call.outputs[i] for i in range(len(rows))]

    # ---- the worker ----------------------------------------------------------------------------------
    def _loop(self) -> None:
        import torch

        while True:
            admitted = self._admit()
            try:
                with self.lock, torch.inference_mode(), _grouped_query_sdpa(self.generator.device):
                    if admitted:
                        self._join(admitted)
                    if self._batch is not None:
                        self._step()
            except Exception as exc:  # noqa: BLE001  every caller with a row in flight gets the error
                self._fail(exc, admitted)

    def _fail(self, exc: BaseException, admitted: list[tuple[_Call, int]]) -> None:
        """Every call with a row in flight gets `exc`; its queued rows are dropped; the batch starts afresh."""
        slots = self._batch.slots if self._batch is not None else []
        self._batch = None
        failed = {id(c): c for c in [s.call for s in slots] + [c for c, _ in admitted]}
        with self._cond:
            self._queue = [(c, i) for c, i in self._queue if id(c) not in failed]
        for call in failed.values():
            call.error = exc
            call.done.set()

    def _admit(self) -> list[tuple[_Call, int]]:
        """Rows to let in now: waits for work when idle (and `window_s` for a burst to gather)."""
        with self._cond:
            running = self._batch.slots if self._batch is not None else []
            if not running:
                while not self._queue:
                    self._cond.wait()
                deadline = self._queue[0][0].arrived + self.window_s
                while len(self._queue) < self.max_rows and time.monotonic() < deadline:
                    self._cond.wait(max(0.0, deadline - time.monotonic()))
            taken: list[tuple[_Call, int]] = []
            longest = max((_span(s.state.request) for s in running), default=0)
            while self._queue and len(running) + len(taken) < self.max_rows:
                call, i = self._queue[0]
                candidate = max(longest, _span(call.rows[i]))
                if (running or taken) and (len(running) + len(taken) + 1) * candidate > self.generator.token_budget:
                    break
                taken.append(self._queue.pop(0))
                longest = candidate
            return taken

    def _join(self, admitted: list[tuple[_Call, int]]) -> None:
        """Prefill the admitted rows, choose their first tokens and join the survivors to the running batch."""
        gen = self.generator
        rows = [call.rows[i] for call, i in admitted]
        gen.stats.prompt_tokens += sum(len(r.tokens) for r in rows)
        self.joins += 1
        for p, members in plan_groups(rows, min_prefix=gen.min_prefix, enabled=gen.prefix_cache):
            members = sorted(members, key=lambda k: -len(rows[k].tokens))
            suffixes = [rows[k].tokens[p:] for k in members]
            prefix = gen.prefix_cache_of(rows[members[0]].tokens[:p]) if p > 0 else None
            logits, cache = gen.prefill(suffixes, p, prefix)
            gen.stats.batches += 1
            _, mask, _ = left_padded(suffixes, p, gen.pad_id)
            pos = mask.new_tensor([[p + len(s)] for s in suffixes])
            slots = [_Slot(RowState(i, rows[k], row_generator(rows[k], gen.device)), call)
                     for k in members for call, i in [admitted[k]]]
            joined = self._take_step(_Batch(slots, cache, mask.to(logits.device), pos.to(logits.device)), logits)
            if joined is not None:
                self._batch = joined if self._batch is None else _merge(self._batch, joined)
                _drop_dead_columns(self._batch)

    def _step(self) -> None:
        """One decoding step of the running batch."""
        import torch

        batch = self._batch
        assert batch is not None
        ids = torch.tensor([[s.pending] for s in batch.slots], dtype=torch.long, device=batch.mask.device)
        batch.mask = torch.cat([batch.mask, batch.mask.new_ones((len(batch.slots), 1))], dim=1)
        logits = self.generator.forward(ids, batch.mask, batch.pos, batch.cache)
        batch.pos = batch.pos + 1
        self.steps += 1
        self.peak_rows = max(self.peak_rows, len(batch.slots))
        self._batch = self._take_step(batch, logits)  # until it returns, a failure still finds every row's call
        if self._batch is not None:
            _drop_dead_columns(self._batch)

    def _take_step(self, batch: _Batch, logits: Any) -> _Batch | None:
        """Choose each slot's next token from `logits`: finished rows are delivered, the batch of the rest is
        returned (None when every row finished)."""
        import torch

        gen = self.generator
        chosen = gen.choose(logits, [s.state for s in batch.slots])
        keep = []
        for k, slot in enumerate(batch.slots):
            if gen.advance(slot.state, chosen[k], slot.call.on_text):
                state = slot.state
                self._finish(slot.call, state.index, GenOutput(tuple(state.tokens), state.text, state.finish))
            else:
                slot.pending = chosen[k]
                keep.append(k)
        if not keep:
            return None
        if len(keep) < len(batch.slots):
            index = torch.tensor(keep, dtype=torch.long, device=batch.mask.device)
            select_rows(batch.cache, index)
            batch.slots = [batch.slots[k] for k in keep]
            batch.mask, batch.pos = batch.mask[index], batch.pos[index]
        return batch

    def _finish(self, call: _Call, i: int, output: GenOutput) -> None:
        call.outputs[i] = output
        if call.on_batch is not None:
            call.on_batch([i], [output])
        if len(call.outputs) == len(call.rows):
            call.done.set()


class ContinuousGeneration:
    """Prompt texts in, completions out, through a `ContinuousBatcher` (the transformers backend's serve path)."""

    def __init__(self, batcher: ContinuousBatcher, encode: Callable[[str, GenConfig, bool], list[int]],
                 base_seed: int) -> None:
        self.batcher = batcher
        self.encode = encode  # (prompt, config, templated) -> token ids, cut to fit the context
        self.base_seed = base_seed

    def generate_many(self, prompts: Sequence[str], configs: Sequence[GenConfig], *, templated: bool,
                      on_text: OnStream | None = None) -> list[Completion]:
        """Like the backend's `generate_many`, but rows join whatever batch is running (callable from any thread)."""
        with self.batcher.lock:  # the tokenizer is shared with the worker's decoding
            ids = [self.encode(prompt, config, templated) for prompt, config in zip(prompts, configs)]
        return generate_completions(self.batcher, ids, configs, base_seed=self.base_seed, on_text=on_text)


def _span(row: GenRow) -> int:
    return len(row.tokens) + row.max_new_tokens


def _merge(a: _Batch, b: _Batch) -> _Batch:
    """One batch of the rows of `a` and `b`, the narrower left-padded (masked zeros) to the wider's columns."""
    import torch

    width = max(a.mask.shape[1], b.mask.shape[1])

    def widened(mask: Any) -> Any:
        gap = width - mask.shape[1]
        return torch.cat([mask.new_zeros((mask.shape[0], gap)), mask], dim=1) if gap else mask

    return _Batch(a.slots + b.slots, join_caches([a.cache, b.cache], 0),
                  torch.cat([widened(a.mask), widened(b.mask)]), torch.cat([a.pos, b.pos]))


def _drop_dead_columns(batch: _Batch) -> None:
    """Cut the leading cache columns that every row masks (left over from rows that left)."""
    live = batch.mask.any(dim=0).nonzero()
    start = int(live[0]) if len(live) else 0
    if start > 0:
        drop_columns(batch.cache, start)
        batch.mask = batch.mask[:, start:]
