"""LoRA adapters on the transformers backend: `--model-args peft=DIR[,merge=true]`, with the adapter in the identity."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.backends._registry import load_backend
from evalkit.errors import ConfigError
from evalkit.store._cache import CachedBackend
from evalkit.types import LoglikelihoodRequest

pytestmark = pytest.mark.integration  # loads the tiny Llama several times (~1 min on 2 cores)

BASE = {"layers": "1", "seed": "0"}
REQUESTS = [LoglikelihoodRequest("题目：水的化学式是什么？\n答案：", c) for c in ("A", "B", "C", "D")]


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny LoRA adapter made here with peft on the tiny random Llama (non-zero B, so it changes the model)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from evalkit.backends._hf_load import load_model

    base = load_model("tiny-random-llama", BASE).model
    torch.manual_seed(1)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                        task_type="CAUSAL_LM")
    folder = tmp_path_factory.mktemp("adapter")
    get_peft_model(base, config).save_pretrained(str(folder))
    return folder


def _scores(backend: object) -> list[float]:
    return [round(r.logprob, 5) for r in backend.loglikelihood(REQUESTS)]  # type: ignore[attr-defined]


def test_adapter_changes_scores_and_identity(adapter: Path) -> None:
    base = load_backend("hf:tiny-random-llama", dict(BASE))
    tuned = load_backend("hf:tiny-random-llama", {**BASE, "peft": str(adapter)})
    merged = load_backend("hf:tiny-random-llama", {**BASE, "peft": str(adapter), "merge": "true"})
    assert _scores(tuned) != _scores(base)
    assert _scores(merged) == pytest.approx(_scores(tuned), abs=1e-3)  # merging folds the same update in
    details = tuned.identity.details
    assert details["peft"] == str(adapter.resolve()) and details["peft_revision"] == "local"
    assert len(details["peft_sha256"]) == 16 and details["peft_merged"] == "false"
    assert merged.identity.details["peft_merged"] == "true"
    keys = {b.identity.cache_key() for b in (base, tuned, merged)}
    assert len(keys) == 3


def test_rerun_is_served_from_the_cache_and_base_entries_are_not_reused(adapter: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    base = CachedBackend(load_backend("hf:tiny-random-llama", dict(BASE)), cache)
    base_scores = _scores(base)
    first = CachedBackend(load_backend("hf:tiny-random-llama", {**BASE, "peft": str(adapter)}), cache)
    tuned_scores = _scores(first)
    assert first.cache_stats.hits == 0  # the base model's answers are not the fine-tune's
    again = CachedBackend(load_backend("hf:tiny-random-llama", {**BASE, "peft": str(adapter)}), cache)
    assert _scores(again) == tuned_scores != base_scores
    assert again.cache_stats.hits == len(REQUESTS) and again.cache_stats.misses == 0


def test_changed_adapter_weights_change_the_hash(adapter: Path, tmp_path: Path) -> None:
    from evalkit.backends._hf_peft import adapter_files_hash

    copy = tmp_path / "copy"
    copy.mkdir()
    for item in adapter.iterdir():
        (copy / item.name).write_bytes(item.read_bytes())
    assert adapter_files_hash(copy) == adapter_files_hash(adapter)
    weights = copy / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")
    assert adapter_files_hash(copy) != adapter_files_hash(adapter)


def test_missing_adapter_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "not-an-adapter").mkdir()
    with pytest.raises(ConfigError, match=r"adapter_config.json is missing; point peft= at a folder"):
        load_backend("hf:tiny-random-llama", {**BASE, "peft": str(tmp_path / "not-an-adapter")})
