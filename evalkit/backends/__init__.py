"""Backends: the three-method contract and the registry that builds them from model names."""

from evalkit.backends._protocol import Backend, ModelIdentity, TokenizerAccess
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
    "ModelIdentity",
    "TokenizerAccess",
    "catalog",
    "load_backend",
    "parse_kv",
    "register_backend_kind",
    "resolve",
]
