"""`--executor ray`: requests sharded over Ray actors give the same run as the local executor."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

from evalkit.errors import ConfigError
from evalkit.executors import RaySettings, shard
from evalkit.runner import RunOptions, execute


def test_shards_are_contiguous_and_cover_everything() -> None:
    for n in range(12):
        for parts in range(1, 5):
            pieces = shard(list(range(n)), parts)
            assert [x for p in pieces for x in p] == list(range(n))
            assert len(pieces) == min(parts, n) and all(pieces)
            assert max(map(len, pieces), default=0) - min(map(len, pieces), default=0) <= 1


def test_a_cut_never_separates_requests_with_the_same_key() -> None:
    items = ["q0"] * 4 + ["q1"] * 4 + ["q2"] * 4
    assert [len(p) for p in shard(items, 2, key=str)] == [8, 4]
    assert [len(p) for p in shard(items, 3, key=str)] == [4, 4, 4]
    assert shard(["same"] * 5, 3, key=str) == [["same"] * 5]


def test_settings_come_from_arguments_extra_then_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_RAY_WORKERS", "3")
    monkeypatch.setenv("EVALKIT_RAY_GPUS_PER_WORKER", "2")
    assert RaySettings.from_env() == RaySettings(workers=3, gpus_per_worker=2.0)
    assert RaySettings.from_env(extra={"ray_workers": 5}).workers == 5
    assert RaySettings.from_env(4, "auto").workers == 4 and RaySettings.from_env(4, "auto").address == "auto"
    monkeypatch.setenv("EVALKIT_RAY_WORKERS", "two")
    with pytest.raises(ConfigError, match="must be numbers"):
        RaySettings.from_env()
    with pytest.raises(ConfigError, match="use 1 or more"):
        RaySettings.from_env(0)


@pytest.fixture(scope="module")
def local_cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _run(out: Path, model: str, tasks: str, **options: Any) -> tuple[dict[str, Any], dict[str, str]]:
    run_dir = execute(RunOptions(model=model, tasks=tasks, output=out, quiet=True, **options))
    results = json.loads((run_dir / "results.json").read_text())
    samples = {p.name: p.read_text() for p in sorted((run_dir / "samples").glob("*.jsonl"))}
    return results, samples


def _same_run(tmp: Path, model: str, tasks: str, **options: Any) -> dict[str, Any]:
    local, local_samples = _run(tmp / "local", model, tasks, no_cache=True, **options)
    sharded, sharded_samples = _run(tmp / "ray", model, tasks, no_cache=True, executor="ray", ray_workers=2,
                                    **options)
    assert sharded["tasks"] == local["tasks"]  # metrics, groups, subtasks, n, info
    assert sharded_samples == local_samples and sharded_samples  # every sample line, byte for byte
    assert sharded["model"] == local["model"]
    return sharded


@pytest.mark.integration  # starts a local Ray cluster
def test_sharded_run_equals_local_run_on_the_fake_backend(local_cluster: None, data_dir: Path,
                                                          tmp_path: Path) -> None:
    results = _same_run(tmp_path, "fake:echo", "cmmlu:agronomy,anatomy,wikitext,longbench:multifieldqa_zh",
                        limit=3, data_dir=data_dir, model_args="max_length=20000")
    assert set(results["tasks"]) == {"cmmlu", "wikitext", "longbench"}
    assert results["tasks"]["cmmlu"]["n"] == 6


@pytest.mark.integration  # starts a local Ray cluster
def test_sharded_run_equals_local_run_on_a_tiny_llama(local_cluster: None, data_dir: Path, tmp_path: Path) -> None:
    # bit-for-bit needs each row scored alone: the transformers backend's floats change in the last digits
    # with batch composition (padding, shared prefixes), which sharding changes like --batch-size does
    import torch

    threads = torch.get_num_threads()
    try:
        results = _same_run(tmp_path, "tiny-llama", "cmmlu:agronomy,zh_ppl", limit=3, data_dir=data_dir,
                            num_fewshot=1, batch_size="1", model_args="threads=1,prefix_cache=false")
    finally:
        torch.set_num_threads(threads)  # threads=1 sets it for this whole process
    assert results["model"]["model"] == "tiny-random-llama" and results["tasks"]["cmmlu"]["n"] == 3


@pytest.mark.integration  # starts a local Ray cluster
def test_a_ray_run_fills_the_cache_that_a_local_run_resumes_from(local_cluster: None, data_dir: Path,
                                                                 tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    first, first_samples = _run(tmp_path / "ray", "fake:echo", "cmmlu:agronomy", limit=4, data_dir=data_dir,
                                cache=cache, executor="ray", ray_workers=2)
    again, again_samples = _run(tmp_path / "local", "fake:echo", "cmmlu:agronomy", limit=4, data_dir=data_dir,
                                cache=cache)
    assert again["cache_stats"]["misses"] == 0 and again["cache_stats"]["hits"] == first["cache_stats"]["misses"] > 0
    assert again["tasks"] == first["tasks"] and again_samples == first_samples


@pytest.mark.integration  # starts a local Ray cluster
def test_ray_needs_a_model_name_not_a_backend_object(local_cluster: None, tmp_path: Path) -> None:
    from evalkit.backends import load_backend

    with pytest.raises(ConfigError, match="not a backend object"):
        execute(RunOptions(model=load_backend("fake:echo"), tasks="wikitext", executor="ray", output=tmp_path,
                           quiet=True))
