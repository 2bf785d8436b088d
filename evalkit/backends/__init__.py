"""Backends: the three-method contract and the registry that builds them from model names."""

from evalkit.backends._protocol import Backend, ChatRendering, ModelIdentity, RawCompletion, TokenizerAccess
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
    "CatalogEntry",
    "ChatRendering",
    "ModelIdentity",
    "RawCompletion",
    "TokenizerAccess",
    "catalog",
    "load_backend",
    "parse_kv",
    "register_backend_kind",
    "resolve",
]
