"""KV-cache plumbing shared by the scorer and the generator, across transformers versions.

transformers 5.24 renamed the forward argument `past_key_values` to `cache` (the old name warns and goes in
5.40). The name is read from the installed model's `forward` signature, so the same code runs on versions
that know only `past_key_values`.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

__all__ = ["cache_argument", "empty_cache", "expand_cache", "output_cache", "select_rows"]


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
