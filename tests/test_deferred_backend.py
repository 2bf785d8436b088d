"""A fully cached rerun never loads the model: identity and capabilities come from the memo beside the cache."""

from __future__ import annotations

from pathlib import Path

from evalkit.backends._deferred import DeferredBackend, memo_path_for
from evalkit.backends._fake import FakeBackend
from evalkit.records import load_record
from evalkit.runner import RunOptions, execute
from evalkit.types import LoglikelihoodRequest


def test_loads_once_on_the_first_request_and_remembers_identity(tmp_path: Path) -> None:
    loads: list[str] = []

    def loader(kind: str, model: str, args: dict[str, str]) -> FakeBackend:
        loads.append(model)
        return FakeBackend()

    memo = memo_path_for(tmp_path / ".cache.sqlite")
    first = DeferredBackend("fake", "echo", {}, memo, loader)
    identity = first.identity  # no memo yet: this loads
    assert loads == ["echo"] and memo.is_file()
    again = DeferredBackend("fake", "echo", {}, memo, loader)
    assert again.identity == identity and again.can_score == first.can_score and not again.loaded
    assert loads == ["echo"]  # identity and flags answered from the memo
    again.loglikelihood([LoglikelihoodRequest("a", " b")])
    assert again.loaded and loads == ["echo", "echo"]
    other = DeferredBackend("fake", "echo", {"seed": "1"}, memo, loader)  # other args: another key
    assert not other.loaded and other.identity is not None and loads[-1] == "echo" and len(loads) == 3


def test_cached_rerun_does_not_load_the_model(tmp_path: Path) -> None:
    options = RunOptions(model="tiny-llama", tasks="cmmlu:agronomy,wikitext", limit=2, output=tmp_path, quiet=True)
    first = load_record(execute(options))
    rerun = load_record(execute(options))
    assert first.backend_stats and first.cache_stats and first.cache_stats["misses"] > 0
    assert rerun.backend_stats is None  # the model was never loaded
    assert rerun.cache_stats == {**rerun.cache_stats, "hits": first.cache_stats["misses"], "misses": 0}
    assert rerun.model == first.model  # the identity (and so every cache key) is the one of the loaded model
    assert {k: t.metrics for k, t in rerun.tasks.items()} == {k: t.metrics for k, t in first.tasks.items()}
