"""Backends: the three-method contract and the registry that builds them from model names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalkit._lazy import lazy_getattr

if TYPE_CHECKING:
    from evalkit.backends._adapt import as_base_backend
    from evalkit.backends._protocol import (
        Backend,
        BackendBase,
        ChatLogprobs,
        ChatRendering,
        LogprobCompletion,
        ModelIdentity,
        RawCompletion,
        TokenizerAccess,
    )
    from evalkit.backends._registry import (
        CatalogEntry,
        catalog,
        load_backend,
        parse_kv,
        register_backend_kind,
        resolve,
    )

# Names load on first use: a command module under evalkit.backends (imported on every CLI start) stays cheap.
_HOMES = {
    "evalkit.backends._adapt": ("as_base_backend",),
    "evalkit.backends._protocol": ("Backend", "BackendBase", "ChatLogprobs", "ChatRendering", "LogprobCompletion",
                                   "ModelIdentity", "RawCompletion", "TokenizerAccess"),
    "evalkit.backends._registry": ("CatalogEntry", "catalog", "load_backend", "parse_kv", "register_backend_kind",
                                   "resolve"),
}
__getattr__ = lazy_getattr("evalkit.backends", {n: module for module, names in _HOMES.items() for n in names},
                           globals())

__all__ = [
    "Backend",
    "BackendBase",
    "CatalogEntry",
    "ChatLogprobs",
    "ChatRendering",
    "LogprobCompletion",
    "ModelIdentity",
    "RawCompletion",
    "TokenizerAccess",
    "as_base_backend",
    "catalog",
    "hf_backend",
    "load_backend",
    "parse_kv",
    "register_backend_kind",
    "resolve",
]


def hf_backend(model: object, tokenizer: object, *, name: str = "in-memory", **args: str) -> BackendBase:
    """A backend over an already-loaded transformers model and tokenizer (e.g. a checkpoint in a training loop).

    `args` are the hf backend's --model-args (batch_size, prefix_cache, max_length, ...).
    """
    from evalkit.backends._hf import from_model

    return from_model(model, tokenizer, name=name, **args)
