"""Request batching for `evalkit serve`: backend calls of concurrent HTTP requests become one batch.

A request's work item waits in a queue; the batch worker takes the oldest item, waits until `window_s` has
passed since it arrived (or `max_items` are queued), and runs every queued item of the same kind together in
one backend call. Items queued while a batch runs go into the next one. Backend calls stay serial (the
service's lock), so a backend need not be thread-safe.

Kinds of work and what may share a batch:

* generation on the transformers backend: continuous batching (`continuous_generation`, see
  `backends/_hf_continuous.py`). A request's rows join the batch being decoded at the next step, whatever
  their stop strings, sampling settings and max_tokens, and leave it when they finish; streamed text comes
  back per row as it is decoded. (A backend with only `generate_many` batches such requests per window.)
* generation on any other backend: requests with identical settings (one `generate`/`complete` call takes
  one `GenConfig`); streaming then sends each answer as one piece when it is done.
* scoring: echoed prompt logprobs (exact splits, or rolling with the same stride) in one `loglikelihood` or
  `loglikelihood_rolling` call.

A greedy answer never depends on its batch mates: each row keeps its own positions, mask and stops.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit.server._scoring import EchoScore, score_rolling_many, score_splits
from evalkit.types import Completion, Conversation, GenConfig

__all__ = ["BatchedBackend", "MicroBatcher", "Stream"]

Stream = Callable[[int, int, str], None]  # (prompt index, sample index, new text)


@dataclass
class _Job:
    key: Hashable
    item: Any
    run: Callable[[list[Any]], Sequence[Any]]
    arrived: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class MicroBatcher:
    """Runs items submitted from many threads in batches: one call of `run` per key and batch."""

    def __init__(self, lock: threading.Lock, *, window_s: float = 0.005, max_items: int = 64) -> None:
        self.lock = lock
        self.window_s = max(0.0, window_s)
        self.max_items = max(1, max_items)
        self.batches = 0
        self._queue: list[_Job] = []
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None

    def run_many(self, key: Hashable, items: Sequence[Any], run: Callable[[list[Any]], Sequence[Any]]) -> list[Any]:
        """Queue `items` (results of `run(batch)` align with the batch) and wait for their results."""
        jobs = [_Job(key, item, run) for item in items]
        with self._cond:
            if self._worker is None:
                self._worker = threading.Thread(target=self._loop, daemon=True, name="evalkit-serve-batcher")
                self._worker.start()
            self._queue.extend(jobs)
            self._cond.notify_all()
        for job in jobs:
            job.done.wait()
            if job.error is not None:
                raise job.error
        return [job.result for job in jobs]

    def _next_batch(self) -> list[_Job]:
        with self._cond:
            while not self._queue:
                self._cond.wait()
            first = self._queue[0]
            deadline = first.arrived + self.window_s
            while len(self._queue) < self.max_items and time.monotonic() < deadline:
                self._cond.wait(max(0.0, deadline - time.monotonic()))
            batch = [job for job in self._queue if job.key == first.key][:self.max_items]
            taken = {id(job) for job in batch}
            self._queue = [job for job in self._queue if id(job) not in taken]
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            try:
                with self.lock:
                    results = list(batch[0].run([job.item for job in batch]))
                self.batches += 1
                if len(results) != len(batch):
                    raise RuntimeError(f"a batch of {len(batch)} items gave {len(results)} results")
                for job, result in zip(batch, results):
                    job.result = result
            except Exception as exc:  # noqa: BLE001  every waiting request gets the error; the worker goes on
                for job in batch:
                    job.error = exc
            for job in batch:
                job.done.set()


class BatchedBackend:
    """The backend calls of `evalkit serve`, merged across concurrent requests by a `MicroBatcher`."""

    def __init__(self, backend: Any, lock: threading.Lock, *, window_s: float = 0.005, max_items: int = 64) -> None:
        self.backend = backend
        self.batcher = MicroBatcher(lock, window_s=window_s, max_items=max_items)
        # only a backend's own class method counts: a wrapper (the response cache) forwarding it would bypass
        # its cache, so wrapped backends batch through their generate/complete instead
        self.mixed = callable(getattr(type(backend), "generate_many", None))
        # a backend that decodes continuously takes rows into its running batch between steps (no waiting for
        # the batch to finish); it locks each step itself
        factory = getattr(type(backend), "continuous_generation", None)
        self.continuous = backend.continuous_generation(lock, window_s=window_s, max_rows=max_items) \
            if callable(factory) else None

    def generate(self, conversation: Conversation, config: GenConfig, stream: Stream | None = None) -> Completion:
        """One chat completion (the backend's chat template)."""
        if self.mixed:
            prompt = self.backend.render_chat(conversation, add_generation_prompt=True)
            return self._mixed([prompt], config, stream, templated=True)[0]
        return self._grouped("generate", [conversation], config, stream)[0]

    def complete(self, prompts: Sequence[str], config: GenConfig, stream: Stream | None = None) -> list[Completion]:
        """Raw-text continuations (one item per prompt: prompts of one request may share a batch)."""
        if self.mixed:
            return self._mixed(list(prompts), config, stream, templated=False)
        return self._grouped("complete", list(prompts), config, stream)

    def score_splits(self, prompts: Sequence[str], hints: Sequence[int]) -> list[EchoScore]:
        """Exact context/continuation scores of echoed prompts."""
        return self.batcher.run_many(("splits",), list(zip(prompts, hints)), lambda items: score_splits(
            self.backend, [p for p, _ in items], [h for _, h in items]))

    def score_rolling(self, prompts: Sequence[str], stride: int | None) -> list[EchoScore]:
        """Per-token scores of whole echoed prompts."""
        return self.batcher.run_many(("rolling", stride), list(prompts),
                                     lambda items: score_rolling_many(self.backend, items, stride=stride))

    def _mixed(self, prompts: list[str], config: GenConfig, stream: Stream | None, *,
               templated: bool) -> list[Completion]:
        if self.continuous is not None:
            return self.continuous.generate_many(prompts, [config] * len(prompts), templated=templated,
                                                 on_text=stream)
        def run(items: list[tuple[str, GenConfig, Callable[[int, str], None] | None]]) -> list[Completion]:
            streams = [s for _, _, s in items]

            def on_text(i: int, j: int, text: str) -> None:
                target = streams[i]
                if target is not None:
                    target(j, text)

            return list(self.backend.generate_many([p for p, _, _ in items], [c for _, c, _ in items],
                                                   templated=templated,
                                                   on_text=on_text if any(streams) else None))

        items = [(p, config, None if stream is None else _for_prompt(stream, i)) for i, p in enumerate(prompts)]
        return self.batcher.run_many(("mixed", templated), items, run)

    def _grouped(self, method: str, items: list[Any], config: GenConfig, stream: Stream | None) -> list[Completion]:
        call = getattr(self.backend, method)
        done: list[Completion] = self.batcher.run_many((method, config), items, lambda batch: call(batch, config))
        if stream is not None:
            for i, completion in enumerate(done):
                for j, text in enumerate(completion.texts):
                    if text:
                        stream(i, j, text)
        return done


def _for_prompt(stream: Stream, i: int) -> Callable[[int, str], None]:
    return lambda j, text: stream(i, j, text)
