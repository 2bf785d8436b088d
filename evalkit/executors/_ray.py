"""`--executor ray`: one backend per Ray actor, each request list split into contiguous shards across them.

`RayBackend` implements the Backend protocol on the driver. Every call's requests are cut into contiguous,
near-equal shards, one per actor; each actor holds a backend built by `load_backend(spec, args)` (one per
worker, with `num_gpus` GPUs when the cluster has GPUs); the shards' results are gathered in request order.
The task kinds, aggregation, run directory and the response cache (which wraps this backend on the driver)
stay on the driver, so a Ray run writes the same results as a local one and resumes from the same cache.
Ray does the scheduling and placement (actors, resources, `ray.get`); nothing here schedules by hand.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from evalkit.backends._protocol import Backend, BackendBase, ModelIdentity
from evalkit.errors import BackendError, ConfigError, MissingDependency
from evalkit.types import (
    Completion,
    Conversation,
    GenConfig,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    TokenChoice,
    TokenLogprobs,
)

__all__ = ["RayBackend", "RaySettings", "shard"]

T = TypeVar("T")
# the capability flags a worker's backend declares; the driver's RayBackend declares the same
_FLAGS = ("can_score", "can_complete", "can_render_chat", "can_tokenize", "can_complete_logprobs",
          "can_chat_logprobs")


def shard(items: Sequence[T], parts: int, key: Callable[[T], Any] | None = None) -> list[list[T]]:
    """Split `items` into at most `parts` contiguous, near-equal, non-empty pieces (order kept).

    With `key`, a cut never falls between two neighbours with the same key (the choices of one question share
    a context: they stay on one worker, whose backend can then share the prefix).

    Examples:
        >>> shard([1, 2, 3, 4, 5], 2)
        [[1, 2, 3], [4, 5]]
        >>> shard(["q1", "q1", "q2", "q2", "q3", "q3"], 2, key=str)
        [['q1', 'q1', 'q2', 'q2'], ['q3', 'q3']]
        >>> shard([1], 3)
        [[1]]
    """
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    cuts, end = [], 0
    for i in range(parts - 1):
        end = max(end, sum(size + (1 if j < extra else 0) for j in range(i + 1)))
        while key is not None and 0 < end < len(items) and key(items[end]) == key(items[end - 1]):
            end += 1
        cuts.append(end)
    bounds = [0, *cuts, len(items)]
    return [list(items[a:b]) for a, b in itertools.pairwise(bounds) if b > a]


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependency("--executor ray", "ray", "ray") from None
    return ray


@dataclass(frozen=True)
class RaySettings:
    """Where and how wide: `workers` actors, each with `gpus_per_worker` GPUs and `cpus_per_worker` CPUs.

    `address=None` joins the cluster named by RAY_ADDRESS, else starts a local one; `"auto"` joins a cluster
    started with `ray start` on this machine; `"ray://host:10001"` connects through Ray Client.
    """

    workers: int | None = None
    address: str | None = None
    gpus_per_worker: float | None = None
    cpus_per_worker: float = 1.0

    @classmethod
    def from_env(cls, workers: int | None = None, address: str | None = None,
                 extra: dict[str, Any] | None = None) -> RaySettings:
        """Explicit values first, then `extra` (ray_workers, ray_gpus_per_worker, ...), then EVALKIT_RAY_* env."""
        extra = extra or {}

        def pick(key: str, given: Any) -> Any:
            value = given if given is not None else extra.get(f"ray_{key}")
            return value if value is not None else os.environ.get(f"EVALKIT_RAY_{key.upper()}")

        try:
            raw_workers, raw_gpus = pick("workers", workers), pick("gpus_per_worker", None)
            raw_cpus = pick("cpus_per_worker", None)
            settings = cls(workers=int(raw_workers) if raw_workers not in (None, "") else None,
                           address=pick("address", address) or None,
                           gpus_per_worker=float(raw_gpus) if raw_gpus not in (None, "") else None,
                           cpus_per_worker=float(raw_cpus) if raw_cpus not in (None, "") else 1.0)
        except ValueError as exc:
            raise ConfigError(f"--executor ray: {exc}; ray workers/GPUs/CPUs per worker must be numbers") from None
        if settings.workers is not None and settings.workers < 1:
            raise ConfigError(f"--executor ray: workers={settings.workers}; use 1 or more")
        return settings


class _Worker:
    """The actor body: one backend, built inside the worker process."""

    def __init__(self, spec: str, args: dict[str, str]) -> None:
        from evalkit.backends._adapt import as_base_backend
        from evalkit.backends._registry import load_backend

        self.backend = as_base_backend(load_backend(spec, args))

    def describe(self) -> dict[str, Any]:
        b = self.backend
        return {"identity": b.identity, "flags": {name: bool(getattr(b, name)) for name in _FLAGS},
                "max_length": b.max_length if b.can_tokenize else None, "cache_chunk_size": b.cache_chunk_size,
                "supports_prefill": b.supports_prefill, "max_connections": b.max_connections()}

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.backend, method)(*args, **kwargs)

    def stats(self) -> dict[str, Any]:
        return self.backend.stats_dict()


class RayBackend(BackendBase):
    """A Backend whose calls are sharded over Ray actors that each hold one backend instance.

    Args:
        spec: the model name or explicit spec, built in every worker with `load_backend(spec, args)`.
        args: the backend's --model-args.
        settings: workers, cluster address, GPUs/CPUs per worker.

    Raises:
        MissingDependency: ray is not installed.
        BackendError: the workers' backends disagree on the model identity.
    """

    def __init__(self, spec: str, args: dict[str, str], settings: RaySettings | None = None) -> None:
        ray = _import_ray()
        settings = settings or RaySettings()
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            ray.init(address=settings.address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        cluster_gpus = float(ray.cluster_resources().get("GPU", 0))
        gpus = settings.gpus_per_worker if settings.gpus_per_worker is not None else (1.0 if cluster_gpus else 0.0)
        workers = settings.workers or (max(1, int(cluster_gpus // gpus)) if gpus else 2)
        actor = ray.remote(num_cpus=settings.cpus_per_worker, num_gpus=gpus)(_Worker)
        self.actors = [actor.remote(spec, dict(args)) for _ in range(workers)]
        described = ray.get([a.describe.remote() for a in self.actors])
        identities = sorted({d["identity"].cache_key() for d in described})
        if len(identities) != 1:
            self.close()
            raise BackendError(f"--executor ray: the {workers} workers loaded different models "
                               f"({'; '.join(identities)}); pin a revision/seed in "
                               f"--model-args so every worker builds the same one")
        first = described[0]
        self._identity: ModelIdentity = first["identity"]
        for name, value in first["flags"].items():  # the workers' backend can do what it can, no more
            setattr(self, name, value)
        self._prefill = bool(first["supports_prefill"])
        self._connections = int(first["max_connections"]) * workers
        self._max_length = first["max_length"]
        chunk = first["cache_chunk_size"]
        # the cache hands over chunks; give every worker a full share of each one
        self.cache_chunk_size = int(chunk) if chunk else 32 * workers
        self.settings = RaySettings(workers, settings.address, gpus, settings.cpus_per_worker)

    @property
    def identity(self) -> ModelIdentity:
        """The workers' backend identity: a Ray run shares cache entries with a local run of the same model."""
        return self._identity

    @property
    def workers(self) -> int:
        return len(self.actors)

    def _sharded(self, method: str, items: Sequence[Any], *args: Any, key: Callable[[Any], Any] | None = None,
                 **kwargs: Any) -> list[Any]:
        if not items:
            return []
        ray = _import_ray()
        pieces = shard(items, len(self.actors), key)
        futures = [actor.call.remote(method, piece, *args, **kwargs) for actor, piece in zip(self.actors, pieces)]
        out: list[Any] = []
        for piece, result in zip(pieces, ray.get(futures)):
            if len(result) != len(piece):
                raise BackendError(f"--executor ray: a worker returned {len(result)} results for "
                                   f"{len(piece)} {method} requests")
            out.extend(result)
        return out

    def _first(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _import_ray().get(self.actors[0].call.remote(method, *args, **kwargs))

    # ---- the three methods ---------------------------------------------------------------------------------
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        """Sharded `loglikelihood`."""
        return self._sharded("loglikelihood", list(requests), key=lambda r: r.context)

    def loglikelihood_rolling(self, texts: Sequence[str], *, stride: int | None = None) -> list[TokenLogprobs]:
        """Sharded `loglikelihood_rolling`."""
        return self._sharded("loglikelihood_rolling", list(texts), stride=stride)

    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        """Sharded `generate`."""
        return self._sharded("generate", list(conversations), config)

    # ---- optional capabilities of the workers' backend (the flags say which it has) ----------------------
    @property
    def supports_prefill(self) -> bool:
        """The workers' backend's."""
        return self._prefill

    def max_connections(self) -> int:
        """The workers' connections together."""
        return self._connections

    @property
    def max_length(self) -> int:
        """The workers' context length (`can_tokenize`)."""
        if self._max_length is None:
            return super().max_length
        return int(self._max_length)

    def complete(self, prompts: Sequence[str], config: GenConfig) -> list[Completion]:
        """Sharded `complete` (`can_complete`)."""
        if not self.can_complete:
            return super().complete(prompts, config)
        return self._sharded("complete", list(prompts), config)

    def complete_logprobs(self, prompts: Sequence[str], config: GenConfig,
                          top_logprobs: int) -> list[list[tuple[TokenChoice, ...]]]:
        """Sharded `complete_logprobs` (`can_complete_logprobs`)."""
        if not self.can_complete_logprobs:
            return super().complete_logprobs(prompts, config, top_logprobs)
        return self._sharded("complete_logprobs", list(prompts), config, top_logprobs)

    def chat_logprobs(self, conversations: Sequence[Conversation], config: GenConfig, top_logprobs: int,
                      prefills: Sequence[str | None] | None = None) -> list[tuple[TokenChoice, ...]]:
        """`chat_logprobs` on the first worker (`can_chat_logprobs`; API judges, not worth sharding)."""
        if not self.can_chat_logprobs:
            return super().chat_logprobs(conversations, config, top_logprobs, prefills)
        return self._first("chat_logprobs", conversations, config, top_logprobs, prefills)

    def render_chat(self, conversation: Conversation, *, add_generation_prompt: bool = True) -> str:
        """The first worker's chat template text (`can_render_chat`)."""
        if not self.can_render_chat:
            return super().render_chat(conversation, add_generation_prompt=add_generation_prompt)
        return self._first("render_chat", conversation, add_generation_prompt=add_generation_prompt)

    def encode(self, text: str) -> list[int]:
        """The first worker's tokenizer (`can_tokenize`)."""
        if not self.can_tokenize:
            return super().encode(text)
        return self._first("encode", text)

    def decode(self, tokens: Sequence[int]) -> str:
        """The first worker's tokenizer (`can_tokenize`)."""
        if not self.can_tokenize:
            return super().decode(tokens)
        return self._first("decode", tokens)

    def stats(self) -> dict[str, int]:
        """The workers' numeric counters, summed."""
        ray = _import_ray()
        totals: dict[str, int] = {}
        for values in ray.get([a.stats.remote() for a in self.actors]):
            for key, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    totals[key] = totals.get(key, 0) + int(value)
        return totals

    def set_batch_size(self, batch_size: str | None) -> None:
        """`--batch-size` for every worker's backend."""
        ray = _import_ray()
        ray.get([a.call.remote("set_batch_size", batch_size) for a in self.actors])

    def close(self) -> None:
        """Stop the actors (and the local Ray instance this backend started)."""
        try:
            import ray
        except ImportError:
            return
        if not ray.is_initialized():
            return
        for actor in self.__dict__.get("actors", []):
            ray.kill(actor)
        self.actors = []
        if self.__dict__.get("_owns_ray"):
            ray.shutdown()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: nothing left to report to
            self.close()


def ray_backend(model: str | Backend, args: dict[str, str], *, workers: int | None = None,
                address: str | None = None, extra: dict[str, Any] | None = None,
                batch_size: str | None = None) -> RayBackend:
    """Build the RayBackend the runner uses for `--executor ray`.

    Raises:
        ConfigError: `model` is a backend object (workers must build their own from a name or spec).
    """
    if not isinstance(model, str):
        raise ConfigError("--executor ray needs a model name or spec that every worker can load "
                          "(e.g. 'smollm2', 'hf:<path>'), not a backend object; use --executor local")
    from evalkit.backends._registry import resolve

    resolve(model, args)  # fail fast on a bad name before starting Ray
    backend = RayBackend(model, args, RaySettings.from_env(workers, address, extra))
    if batch_size:
        backend.set_batch_size(batch_size)
    return backend
