"""KV-cache plumbing shared by the scorer and the generator, across transformers versions.

transformers 5.24 renamed the forward argument `past_key_values` to `cache` (the old name warns and goes in
5.40). The name is read from the installed model's `forward` signature, so the same code runs on versions
that know only `past_key_values`.
"""

from __future__ import annotations

import copy
import functools
import inspect
from typing import Any

__all__ = ["ROOM", "adopt_store", "cache_argument", "decoding_cache", "drop_columns", "empty_cache", "expand_cache", "output_cache", "select_rows"]


def cache_argument(module: Any) -> str:
    """The keyword `module.forward` takes its KV cache under: "cache" where supported, else "past_key_values"."""
    try:
        params = inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def output_cache(output: Any) -> Any:
    """The KV cache a forward returned (`cache` on new transformers, `past_key_values` on older ones)."""
    value = getattr(output, "cache", None)
    return value if value is not None else output.past_key_values


def empty_cache(config: Any) -> Any:
    """A fresh dynamic cache for `config`'s model."""
    from transformers import DynamicCache

    try:
        return DynamicCache(config=config)
    except TypeError:  # versions whose DynamicCache takes no config
        return DynamicCache()


ROOM = 256  # positions a decoding cache keeps free at most, at each growth


def decoding_cache(cache: Any, room: int = ROOM) -> Any:
    """Make `cache` (after the prompt's forward) append each decoding step's keys and values into room kept free
    at the end of its full-attention layers (`room` more positions at every regrowth), instead of concatenating
    new tensors, which copies the whole cache on every token. Sliding-window layers stay as they are."""
    for layer in getattr(cache, "layers", []):
        _grow(layer, room)
    return cache


def _grow(layer: Any, room: int) -> None:
    """Turn a plain dynamic layer into a growing one keeping `room` free positions (other layers stay)."""
    grower = _growing_layer()
    if type(layer) is grower.__base__:
        layer.__class__ = grower
        layer.room = room  # the instance's own, over the class default


@functools.cache
def _growing_layer() -> Any:
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        """`keys`/`values` are views of the first positions of a larger store this layer owns. Anything that
        sets them to other tensors (row selection, joins, a shallow copy of the layer) makes the next update
        move them into a new store of their own, so a store is never written through two layers."""

        room = ROOM
        keys: Any
        values: Any
        _store: tuple[Any, ...] = ()

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            length = self.keys.shape[-2] if self.keys.numel() else 0
            end = length + key_states.shape[-2]
            if not self._owns_views() or self._store[0].shape[-2] < end:
                self._move((key_states, value_states), length, end + self.room)
            for store, new in zip(self._store, (key_states, value_states)):
                store[..., length:end, :] = new
            self.own(self._store, end)
            return self.keys, self.values

        def batch_select_indices(self, indices: Any) -> None:
            kept = indices.tolist()
            if not (self._owns_views() and self.get_seq_length() > 0 and kept == sorted(set(kept))):
                super().batch_select_indices(indices)
                return
            # Rows that stay move down in place (ascending, so none is overwritten before it moves), and only
            # their filled positions: no new store, no copy of the room kept for later tokens.
            length = self.keys.shape[-2]
            for store in self._store:
                for to, source in enumerate(kept):
                    if to != source:
                        store[to, ..., :length, :] = store[source, ..., :length, :]
            self.own(tuple(store[:len(kept)] for store in self._store), length)

        def own(self, stores: tuple[Any, ...], length: int) -> None:
            """Take `stores` (keys, values) as this layer's own, its keys and values their first `length`
            positions: later updates append into the rest of them."""
            self._store = stores
            self.keys, self.values = stores[0][..., :length, :], stores[1][..., :length, :]
            self._owner = (id(self), self.keys, self.values)

        def _owns_views(self) -> bool:
            owner = getattr(self, "_owner", None)
            return owner is not None and owner[0] == id(self) and owner[1] is self.keys and owner[2] is self.values

        def _move(self, like: tuple[Any, Any], length: int, capacity: int) -> None:
            stores = []
            for old, new in zip((self.keys, self.values), like):
                store = new.new_empty((*new.shape[:-2], capacity, new.shape[-1]))
                if length:
                    store[..., :length, :] = old
                stores.append(store)
            self._store = tuple(stores)

    return GrowingLayer


def adopt_store(layer: Any, keys: Any, values: Any, length: int, room: int) -> None:
    """Make `layer` a growing layer whose keys and values are the first `length` positions of the stores `keys`
    and `values` (which keep `room` more): its next decoding steps append there, with no move to a new store."""
    _grow(layer, room)
    layer.room = room  # also when `layer` was growing already (a merge of running batches)
    layer.own((keys, values), length)


def expand_cache(cache: Any, n: int) -> Any:
    """A shallow copy of a prefix cache whose layers see the prefix `n` times (views, no copies)."""
    new = copy.copy(cache)
    new.layers = []
    for layer in cache.layers:
        clone = copy.copy(layer)
        clone.keys = layer.keys.expand(n, *layer.keys.shape[1:])
        clone.values = layer.values.expand(n, *layer.values.shape[1:])
        new.layers.append(clone)
    return new


def select_rows(cache: Any, index: Any) -> None:
    """Keep only the batch rows `index` (a LongTensor) of `cache`, in place."""
    if hasattr(cache, "batch_select_indices"):
        cache.batch_select_indices(index)
        return
    for layer in cache.layers:
        layer.keys = layer.keys.index_select(0, index.to(layer.keys.device))
        layer.values = layer.values.index_select(0, index.to(layer.values.device))


def drop_columns(cache: Any, start: int) -> None:
    """Drop the first `start` positions (columns no row attends to any more) of every layer of `cache`, in place."""
    for layer in cache.layers:
        layer.keys = layer.keys[..., start:, :]
        layer.values = layer.values[..., start:, :]
