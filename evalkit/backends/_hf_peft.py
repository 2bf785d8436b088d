"""LoRA (and other PEFT) adapters on top of a transformers model: `--model-args peft=<dir or hub id>[,merge=true]`.

The adapter's identity (where it came from, its revision and a hash of its weight files) is part of the model
identity, so the response cache and the manifest tell a base model from its fine-tunes.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError, MissingDependency

__all__ = ["adapter_files_hash", "apply_adapter"]

_TRUE = ("1", "true", "yes", "on")
_WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")


def adapter_files_hash(folder: Path) -> str:
    """sha256 over the adapter's config and weight files (name and content), first 16 hex digits."""
    digest = hashlib.sha256()
    files = [folder / "adapter_config.json", *(folder / n for n in _WEIGHT_FILES)]
    for path in files:
        if path.is_file():
            digest.update(path.name.encode() + b"\0")
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


def _adapter_folder(spec: str, revision: str | None) -> tuple[Path, str]:
    """A local folder holding the adapter: the path given, or the hub snapshot (downloaded or cached)."""
    local = Path(spec).expanduser()
    if local.exists():
        if not (local / "adapter_config.json").is_file():
            raise ConfigError(f"--model-args peft={spec}: {local / 'adapter_config.json'} is missing; "
                              "point peft= at a folder written by PeftModel.save_pretrained")
        return local.resolve(), "local"
    from evalkit._offline import hub_reachable

    hub_reachable()  # switches this process to offline mode (cached snapshots only) when the hub is not there
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(spec, revision=revision, allow_patterns=["adapter_config.json", *_WEIGHT_FILES])
    except Exception as exc:  # noqa: BLE001 - the hub's many error types all mean: this adapter is not here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--model-args peft={spec}: no such local folder and the hub copy cannot be had ({first}); "
                          "pass a local adapter folder, or make the hub reachable (EVALKIT_OFFLINE=1 uses cached "
                          "copies only)") from None
    return Path(folder), revision or "main"


def apply_adapter(model: Any, args: dict[str, str]) -> tuple[Any, dict[str, str]]:
    """Wrap `model` with the adapter named by `args["peft"]` (merged into the weights if `merge=true`).

    Returns the model to evaluate and the adapter's identity details
    (`peft`, `peft_revision`, `peft_sha256`, `peft_merged`).
    """
    spec = args["peft"]
    if importlib.util.find_spec("peft") is None:
        raise MissingDependency("--model-args peft=", "peft", "peft")
    from peft import PeftModel

    folder, revision = _adapter_folder(spec, args.get("peft_revision"))
    merge = args.get("merge", "false").lower() in _TRUE
    try:
        wrapped = PeftModel.from_pretrained(model, str(folder))
    except (ValueError, KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--model-args peft={spec}: the adapter does not fit this base model ({first}); "
                          "use the base model the adapter was trained on") from None
    if merge:
        wrapped = wrapped.merge_and_unload()
    details = {"peft": spec if revision != "local" else str(folder), "peft_revision": revision,
               "peft_sha256": adapter_files_hash(folder), "peft_merged": "true" if merge else "false"}
    return wrapped, details
