"""The SQLite response cache: hits make no backend calls, keys cover every parameter, failures are clear."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from evalkit.backends._fake import FakeBackend
from evalkit.errors import CacheError
from evalkit.store import CachedBackend
from evalkit.types import GenConfig, LoglikelihoodRequest, Message

REQS = [LoglikelihoodRequest("问题：1+1=？\n答案：", f" {x}") for x in "ABCD"]
CONVS = [(Message("user", "Say hi"),), (Message("system", "Be brief."), Message("user", "Name a colour"))]


@pytest.fixture()
def path(tmp_path: Path) -> Path:
    return tmp_path / "runs" / ".cache.sqlite"


def test_second_identical_calls_make_no_backend_calls(path: Path) -> None:
    inner = FakeBackend()
    cached = CachedBackend(inner, path)
    first = (cached.loglikelihood(REQS), cached.loglikelihood_rolling(["some text here"]),
             cached.generate(CONVS, GenConfig(max_tokens=5)))
    assert inner.calls == {"loglikelihood": 4, "rolling": 1, "generate": 2}
    second = (cached.loglikelihood(REQS), cached.loglikelihood_rolling(["some text here"]),
              cached.generate(CONVS, GenConfig(max_tokens=5)))
    assert second == first
    assert inner.calls == {"loglikelihood": 4, "rolling": 1, "generate": 2}
    assert cached.cache_stats.as_dict() == {"hits": 7, "misses": 7, "write_errors": 0,
                                             "windows_reused": 0}


def test_results_survive_a_new_process_and_equal_uncached(path: Path) -> None:
    CachedBackend(FakeBackend(), path).loglikelihood(REQS)
    fresh = FakeBackend()
    again = CachedBackend(fresh, path).loglikelihood(REQS)
    assert fresh.calls["loglikelihood"] == 0
    assert again == FakeBackend().loglikelihood(REQS)  # floats round-trip exactly


def test_every_parameter_is_part_of_the_key(path: Path) -> None:
    inner = FakeBackend()
    cached = CachedBackend(inner, path)
    base = GenConfig(max_tokens=5)
    for config in (base, GenConfig(max_tokens=6), GenConfig(max_tokens=5, stop=("\n",)),
                   GenConfig(max_tokens=5, top_p=0.9), GenConfig(max_tokens=5, n=2)):
        cached.generate(CONVS[:1], config)
    assert inner.calls["generate"] == 5
    cached.loglikelihood_rolling(["abc"], stride=None)
    cached.loglikelihood_rolling(["abc"], stride=2)
    assert inner.calls["rolling"] == 2
    other = FakeBackend(name="other-model")
    CachedBackend(other, path).generate(CONVS[:1], base)
    assert other.calls["generate"] == 1  # another model identity never reads this model's rows


def test_sampled_generations_are_cached_per_seed_and_sample_index(path: Path) -> None:
    script = FakeBackend(replies=[(__import__("re").compile("."), ["red", "green", "blue"])])
    cached = CachedBackend(script, path)
    by_seed = [cached.generate(CONVS[1:], GenConfig(temperature=0.8, seed=s))[0].text for s in range(3)]
    assert by_seed == ["red", "green", "blue"]
    votes = [cached.generate(CONVS[1:], GenConfig(temperature=0.8, seed=7))[0] for _ in range(2)]
    assert script.calls["generate"] == 5  # the 2nd vote with the same seed is its own sample, not a hit
    rerun_inner = FakeBackend(replies=script.replies)
    rerun = CachedBackend(rerun_inner, path)
    assert [rerun.generate(CONVS[1:], GenConfig(temperature=0.8, seed=s))[0].text for s in range(3)] == by_seed
    assert [rerun.generate(CONVS[1:], GenConfig(temperature=0.8, seed=7))[0] for _ in range(2)] == votes
    assert rerun_inner.calls["generate"] == 0
    assert len(rerun.store) == 5


class _Crashing(FakeBackend):
    """Dies after `budget` loglikelihood requests, like a run killed mid-way."""

    budget: int = 0

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list:  # type: ignore[type-arg]
        if self.calls["loglikelihood"] + len(requests) > self.budget:
            raise KeyboardInterrupt
        return super().loglikelihood(requests)


def test_each_chunk_is_persisted_before_the_next(path: Path) -> None:
    many = [LoglikelihoodRequest(f"ctx {i}", " x") for i in range(10)]
    crashing = _Crashing()
    crashing.budget = 6
    with pytest.raises(KeyboardInterrupt):
        CachedBackend(crashing, path, chunk_size=3).loglikelihood(many)
    resumed = FakeBackend()
    out = CachedBackend(resumed, path, chunk_size=3).loglikelihood(many)
    assert resumed.calls["loglikelihood"] == 4  # 6 done before the crash are read back
    assert out == FakeBackend().loglikelihood(many)


def test_duplicate_requests_in_one_call_are_computed_once(path: Path) -> None:
    inner = FakeBackend()
    out = CachedBackend(inner, path).loglikelihood([REQS[0], REQS[1], REQS[0]])
    assert inner.calls["loglikelihood"] == 2 and out[0] == out[2]


def test_optional_capabilities_pass_through(path: Path) -> None:
    inner = FakeBackend()
    cached = CachedBackend(inner, path)
    assert cached.can_complete and cached.can_render_chat
    assert cached.encode("ab") == [97, 98]
    cached.complete(["Once upon"], GenConfig(max_tokens=4))
    cached.complete(["Once upon"], GenConfig(max_tokens=4))
    assert inner.calls["generate"] == 1

    class NoComplete:
        identity = inner.identity

    assert not CachedBackend(NoComplete(), path.with_name("b.sqlite")).can_complete  # type: ignore[arg-type]


def test_corrupt_file_gives_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "cache.sqlite"
    bad.write_bytes(b"this is not a database, just some bytes " * 100)
    with pytest.raises(CacheError) as info:
        CachedBackend(FakeBackend(), bad)
    message = str(info.value)
    assert "\n" not in message and str(bad) in message and "--no-cache" in message


def test_locked_file_gives_one_clear_line(path: Path) -> None:
    CachedBackend(FakeBackend(), path).close()
    holder = sqlite3.connect(str(path), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(CacheError, match="locked"):
            CachedBackend(FakeBackend(), path, timeout=0.1)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_write_failure_mid_run_warns_and_keeps_results(path: Path) -> None:
    inner = FakeBackend()
    cached = CachedBackend(inner, path, timeout=0.05)
    cached.store._db.execute("PRAGMA busy_timeout=50")
    holder = sqlite3.connect(str(path), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another writer holds the lock for the rest of the run
    try:
        with pytest.warns(RuntimeWarning, match="continuing without"):
            out = cached.loglikelihood(REQS)
        assert out == FakeBackend().loglikelihood(REQS)
        assert cached.loglikelihood(REQS[:1]) == out[:1]
        assert cached.cache_stats.write_errors == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_chunks_grow_with_an_api_backends_concurrency(path: Path) -> None:
    class Api(FakeBackend):
        def max_connections(self) -> int:
            return 16

    assert CachedBackend(FakeBackend(), path).chunk_size == 32
    assert CachedBackend(Api(), path).chunk_size == 64
    assert CachedBackend(Api(), path, chunk_size=5).chunk_size == 5
