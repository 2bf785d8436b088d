"""Backends: the three-method contract and the registry that builds them from model names."""

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


def hf_backend(model: object, tokenizer: object, *, name: str = "in-memory", **args: str) -> Backend:
    """A backend over an already-loaded transformers model and tokenizer (e.g. a checkpoint in a training loop).

    `args` are the hf backend's --model-args (batch_size, prefix_cache, max_length, ...).
    """
    from evalkit.backends._hf import from_model

    return from_model(model, tokenizer, name=name, **args)
