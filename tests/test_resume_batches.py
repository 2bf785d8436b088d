"""Nothing computed is lost: a streaming backend's batches reach the response cache as each one finishes.

Unit tests drive `CachedBackend` with a scripted backend that streams per batch and fails part-way, and the
transformers backend (tiny random Llama) through the same callback; the integration test kills a real
`evalkit run` with SIGKILL mid-subject and counts what the rerun recomputes.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from evalkit.backends import load_backend
from evalkit.backends._fake import FakeBackend
from evalkit.backends._protocol import ResultCallback, StreamingResults
from evalkit.errors import BackendError
from evalkit.store import CachedBackend
from evalkit.types import Completion, Conversation, GenConfig, LoglikelihoodRequest, Message, TokenLogprobs


class BatchedFake(FakeBackend):
    """A FakeBackend that computes in batches of `batch`, reports each through `on_results` (last batch
    first when `reverse`), and raises after `fail_after` batches, like a process killed mid-call."""

    streams_results = True

    def __init__(self, batch: int = 3, fail_after: int | None = None, reverse: bool = False) -> None:
        super().__init__()
        self.batch, self.fail_after, self.reverse = batch, fail_after, reverse
        self.batches = 0
        self.callbacks_given = 0

    def _stream(self, items: Sequence[Any], compute: Callable[[Sequence[Any]], list[Any]],
                on_results: ResultCallback | None) -> list[Any]:
        self.callbacks_given += on_results is not None
        starts = list(range(0, len(items), self.batch))
        done: dict[int, Any] = {}
        for start in reversed(starts) if self.reverse else starts:
            if self.fail_after is not None and self.batches == self.fail_after:
                raise BackendError("backend died mid-call (test)")
            part = compute(items[start:start + self.batch])
            self.batches += 1
            done.update(zip(range(start, start + len(part)), part))
            if on_results is not None:
                on_results(list(range(start, start + len(part))), part)
        return [done[i] for i in range(len(items))]

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest], *,  # type: ignore[override]
                      on_results: ResultCallback | None = None) -> list[Any]:
        return self._stream(requests, lambda part: FakeBackend.loglikelihood(self, part), on_results)

    def loglikelihood_rolling(self, texts: Sequence[str], *, stride: int | None = None,  # type: ignore[override]
                              on_results: ResultCallback | None = None, windows: Any = None) -> list[Any]:
        return self._stream(texts, lambda part: FakeBackend.loglikelihood_rolling(self, part, stride=stride),
                            on_results)

    def generate(self, conversations: Sequence[Conversation], config: GenConfig, *,  # type: ignore[override]
                 on_results: ResultCallback | None = None) -> list[Any]:
        return self._stream(conversations, lambda part: FakeBackend.generate(self, part, config), on_results)


_N = 12  # four batches of three
_CALLS = {"loglikelihood": "loglikelihood", "loglikelihood_rolling": "rolling", "generate": "generate"}


def _call(backend: Any, method: str) -> list[Any]:
    if method == "loglikelihood":
        return list(backend.loglikelihood([LoglikelihoodRequest(f"问题 {i}：", f" {'ABCD'[i % 4]}")
                                           for i in range(_N)]))
    if method == "loglikelihood_rolling":
        return list(backend.loglikelihood_rolling([f"第{i}段文字，用来算困惑度。" * (i + 1) for i in range(_N)]))
    conversations = [(Message("user", f"question {i}"),) for i in range(_N)]
    return list(backend.generate(conversations, GenConfig(max_tokens=16)))


def _rows(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(str(path), timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
    except sqlite3.Error:
        return 0  # the schema is not there yet


@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reverse-order"])
@pytest.mark.parametrize("method", list(_CALLS))
def test_failed_call_keeps_finished_batches_and_rerun_computes_only_the_rest(
        tmp_path: Path, method: str, reverse: bool) -> None:
    path = tmp_path / "cache.sqlite"
    dying = CachedBackend(BatchedFake(batch=3, fail_after=2, reverse=reverse), path)
    with pytest.raises(BackendError):
        _call(dying, method)
    dying.close()
    assert _rows(path) == 6  # two batches of three committed before the failure

    inner = BatchedFake(batch=3, reverse=reverse)
    cached = CachedBackend(inner, path)
    resumed = _call(cached, method)
    cached.close()
    assert inner.calls[_CALLS[method]] == _N - 6  # only the requests of the lost batches ran again
    assert cached.cache_stats.as_dict() == {"hits": 6, "misses": _N - 6, "write_errors": 0, "windows_reused": 0}
    assert resumed == _call(FakeBackend(), method)  # same values as one uninterrupted uncached call
    assert _rows(path) == _N


def test_each_batch_is_its_own_commit_even_inside_one_chunk(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    seen: list[int] = []
    inner = BatchedFake(batch=4)
    cached = CachedBackend(inner, path, chunk_size=4096)  # one call for everything, like the hf backend

    def compute(part: Sequence[LoglikelihoodRequest]) -> list[Any]:
        seen.append(_rows(path))  # another connection sees what was committed before this batch
        return FakeBackend.loglikelihood(inner, part)

    inner.loglikelihood = lambda requests, *, on_results=None: inner._stream(  # type: ignore[method-assign]
        requests, compute, on_results)
    _call(cached, "loglikelihood")
    assert seen == [0, 4, 8]  # batches of 4, 4 and 4
    assert _rows(path) == _N


def test_backend_without_the_flag_gets_no_callback(tmp_path: Path) -> None:
    quiet = BatchedFake(batch=3)
    quiet.streams_results = False  # type: ignore[misc]
    assert isinstance(BatchedFake(), StreamingResults)
    _call(CachedBackend(quiet, tmp_path / "a.sqlite"), "generate")
    streaming = BatchedFake(batch=3)
    _call(CachedBackend(streaming, tmp_path / "b.sqlite"), "generate")
    assert (quiet.callbacks_given, streaming.callbacks_given) == (0, 1)


def test_a_bad_index_from_the_backend_is_an_error(tmp_path: Path) -> None:
    inner = BatchedFake()

    def bad(requests: Sequence[LoglikelihoodRequest], *, on_results: ResultCallback | None = None) -> list[Any]:
        assert on_results is not None
        on_results([len(requests)], [None])
        return []

    inner.loglikelihood = bad  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="loglikelihood: backend reported index 12 of a 12-request call"):
        _call(CachedBackend(inner, tmp_path / "c.sqlite"), "loglikelihood")


# ---- the transformers backend streams through the same callback --------------------------------------------------
@pytest.fixture(scope="module")
def tiny() -> Any:
    return load_backend("tiny-llama", {"seed": "3", "max_length": "24", "batch_size": "2"})


def _mc_requests() -> list[LoglikelihoodRequest]:
    shots = "".join(f"问题{i}：{i}加{i}等于几？\nA. {i}\nB. {2 * i}\n答案：B\n\n" for i in range(2))
    requests = []
    for q in range(5):
        context = f"{shots}问题：{q}乘{q}等于几？\nA. {q}\nB. {q * q}\n答案："
        requests += [LoglikelihoodRequest(context, f" {letter}") for letter in "AB"]
        requests.append(LoglikelihoodRequest(context, f" {q * q} 是答案"))  # multi-token: its own row
    return requests


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[list[int], list[Any]]] = []

    def __call__(self, indices: Sequence[int], results: Sequence[Any]) -> None:
        self.calls.append((list(indices), list(results)))

    def merged(self) -> dict[int, Any]:
        out: dict[int, Any] = {}
        for indices, results in self.calls:
            for i, value in zip(indices, results):
                assert i not in out, f"index {i} reported twice"
                out[i] = value
        return out


def test_hf_loglikelihood_streams_every_batch(tiny: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny.set_batch_size("2")
    monkeypatch.setattr(tiny, "_max_length", 256)
    record = _Recorder()
    requests = _mc_requests()
    returned = tiny.loglikelihood(requests, on_results=record)
    assert tiny.loglikelihood(requests) == returned  # the callback changes nothing
    assert len(record.calls) >= 5  # 5 letter rows + 5 multi-token rows, in batches of at most 2
    assert record.merged() == dict(enumerate(returned))


def test_hf_rolling_reports_a_text_once_all_its_windows_are_scored(tiny: Any) -> None:
    tiny.set_batch_size("1")
    texts = ["一二三四五六七八九十" * k for k in (1, 3, 6)] + [""]
    record = _Recorder()
    returned = tiny.loglikelihood_rolling(texts, on_results=record)
    assert returned[2].windows >= 2 and len(record.calls) >= 2  # several windows, in separate batches
    assert record.merged() == dict(enumerate(returned))
    assert all(isinstance(v, TokenLogprobs) for v in record.merged().values())


def test_hf_generation_reports_each_prompt(tiny: Any) -> None:
    record = _Recorder()
    conversations = [(Message("user", f"数到{i}"),) for i in range(3)]
    returned = tiny.generate(conversations, GenConfig(max_tokens=4), on_results=record)
    assert record.merged() == dict(enumerate(returned))
    assert all(isinstance(c, Completion) for c in returned)


def test_hf_backend_killed_mid_subject_keeps_its_batches(tiny: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    tiny.set_batch_size("1")
    monkeypatch.setattr(tiny, "_max_length", 256)
    requests = [r for r in _mc_requests() if len(r.continuation) == 2]  # letters: one row per question
    uninterrupted = tiny.loglikelihood(requests)
    path = tmp_path / "cache.sqlite"
    score_batch, batches = tiny.scorer._score_batch, []

    def dying(*args: Any) -> None:
        if len(batches) == 3:
            raise BackendError("killed (test)")
        batches.append(1)
        score_batch(*args)

    monkeypatch.setattr(tiny.scorer, "_score_batch", dying)
    with pytest.raises(BackendError):
        CachedBackend(tiny, path, chunk_size=4096).loglikelihood(requests)
    assert _rows(path) == 3 * 2  # three questions, two letters each
    monkeypatch.setattr(tiny.scorer, "_score_batch", score_batch)
    rows_before = tiny.scorer.stats.rows
    cached = CachedBackend(tiny, path, chunk_size=4096)
    resumed = cached.loglikelihood(requests)
    assert cached.cache_stats.as_dict() == {"hits": 6, "misses": 4, "write_errors": 0, "windows_reused": 0}
    assert tiny.scorer.stats.rows - rows_before == 2  # the two questions that were lost
    assert [r.is_greedy for r in resumed] == [r.is_greedy for r in uninterrupted]
    assert [r.logprob for r in resumed] == pytest.approx([r.logprob for r in uninterrupted], abs=1e-5)


def test_hf_long_text_keeps_its_finished_windows(tiny: Any, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    tiny.set_batch_size("1")  # max_length 24: the long text spans many windows, one batch each
    texts = ["短文。", "一二三四五六七八九十，甲乙丙丁戊己庚辛壬癸。" * 8]
    uninterrupted = tiny.loglikelihood_rolling(texts)
    assert uninterrupted[1].windows >= 5
    path = tmp_path / "cache.sqlite"
    score_batch, batches = tiny.scorer._score_batch, []

    def dying(*args: Any) -> None:
        if len(batches) == 4:
            raise BackendError("killed (test)")
        batches.append(1)
        score_batch(*args)

    monkeypatch.setattr(tiny.scorer, "_score_batch", dying)
    with pytest.raises(BackendError):
        CachedBackend(tiny, path, chunk_size=4096).loglikelihood_rolling(texts)
    with sqlite3.connect(str(path)) as db:
        stored = dict(db.execute("SELECT method, COUNT(*) FROM responses GROUP BY method").fetchall())
    short_done = stored.get("loglikelihood_rolling", 0)  # 1 if the short text's window was among the four
    assert stored["rolling_window"] + short_done == 4  # every finished batch was committed, window by window

    monkeypatch.setattr(tiny.scorer, "_score_batch", score_batch)
    rows_before = tiny.scorer.stats.rows
    cached = CachedBackend(tiny, path, chunk_size=4096)
    resumed = cached.loglikelihood_rolling(texts)
    assert cached.cache_stats.windows_reused == stored["rolling_window"]
    assert (cached.cache_stats.hits, cached.cache_stats.misses) == (short_done, 2 - short_done)
    ran = tiny.scorer.stats.rows - rows_before  # only the windows that never finished ran again
    assert ran == uninterrupted[1].windows - stored["rolling_window"] + (1 - short_done)
    assert [r.windows for r in resumed] == [r.windows for r in uninterrupted]
    for ours, theirs in zip(resumed, uninterrupted):
        assert ours.logprobs == pytest.approx(theirs.logprobs, abs=1e-5)


# ---- kill -9 of a real run ------------------------------------------------------------------------------------------
_MODEL_ARGS = "layers=12,hidden_size=256,intermediate_size=1024"  # slow enough to be killed between batches
_LIMIT, _SUBJECTS = 8, "agronomy,anatomy"
_TOTAL = 2 * _LIMIT * 4  # two subjects x questions x four letters


def _evalkit(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from evalkit.cli import main; sys.exit(main(sys.argv[1:]))",
            "run", "--model", "tiny-llama", "--model-args", _MODEL_ARGS, "--tasks", f"cmmlu:{_SUBJECTS}",
            "--limit", str(_LIMIT), "--batch-size", "1", "--num-fewshot", "2", "-o", str(out), *extra]


def _results(out: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    (run,) = [p for p in out.iterdir() if (p / "results.json").is_file()]
    results = json.loads((run / "results.json").read_text(encoding="utf-8"))
    lines = (run / "samples" / "cmmlu.jsonl").read_text(encoding="utf-8").splitlines()
    return results, sorted((json.loads(line) for line in lines), key=lambda s: (s["subset"], s["doc_index"]))


def _kill_part_way(cmd: list[str], env: dict[str, str], cache: Path) -> int:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while _rows(cache) < 8:  # two questions committed: part-way through the first subject
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            stderr = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
            pytest.fail(f"the run ended before it could be killed part-way: {stderr}")
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    if proc.stderr:
        proc.stderr.close()
    return _rows(cache)


@pytest.mark.integration
def test_kill_9_mid_subject_then_rerun_computes_only_the_missing_requests(tmp_path: Path, data_dir: Path) -> None:
    env = {**os.environ, "EVALKIT_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    cache, out = tmp_path / "cache.sqlite", tmp_path / "runs"
    done = _kill_part_way(_evalkit(out, "--cache", str(cache)), env, cache)
    assert 0 < done < _TOTAL and done % 4 == 0  # whole questions (batches of one question) were committed

    subprocess.run(_evalkit(tmp_path / "resumed", "--cache", str(cache)), env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    resumed, resumed_samples = _results(tmp_path / "resumed")
    assert resumed["cache_stats"]["hits"] == done
    assert resumed["cache_stats"]["misses"] == _TOTAL - done  # nothing finished before the kill ran again
    assert resumed["backend_stats"]["rows"] == (_TOTAL - done) // 4  # the model saw only the missing questions

    subprocess.run(_evalkit(tmp_path / "plain", "--no-cache"), env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    plain, plain_samples = _results(tmp_path / "plain")
    assert resumed["tasks"]["cmmlu"]["n"] == plain["tasks"]["cmmlu"]["n"] == 2 * _LIMIT
    assert resumed["tasks"]["cmmlu"]["metrics"] == pytest.approx(plain["tasks"]["cmmlu"]["metrics"])
    assert [s["prediction"] for s in resumed_samples] == [s["prediction"] for s in plain_samples]
    for ours, theirs in zip(resumed_samples, plain_samples):
        assert ours["choice_logprobs"] == pytest.approx(theirs["choice_logprobs"], abs=1e-4)
