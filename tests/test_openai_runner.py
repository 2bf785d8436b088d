"""`evalkit run --model openai:<name> --base-url URL` end to end against `evalkit serve`: multiple choice
through the API equals the direct run; a chat-only server falls back to generation + letter extraction."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from evalkit import runner
from evalkit.backends._fake import FakeBackend
from evalkit.errors import UnsupportedRequest
from evalkit.server import create_app, serve_in_thread
from evalkit.types import LoglikelihoodRequest, LoglikelihoodResult


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):  # the bundled demo questions, no hub look-ups
        monkeypatch.setenv(name, "1")


def _run(model: Any, tmp_path: Path, name: str, **kw: Any) -> dict[str, Any]:
    from evalkit.store import read_results

    data = tmp_path / "no-data"
    data.mkdir(exist_ok=True)
    path = runner.execute(runner.RunOptions(model=model, tasks="cmmlu", data_dir=data, output=tmp_path / name,
                                            quiet=True, no_cache=True, **kw))
    return read_results(path)


def test_multiple_choice_through_the_api_equals_the_direct_run(tmp_path: Path) -> None:
    with serve_in_thread(create_app(FakeBackend(), "fake:echo")) as url:
        api = _run("openai:fake:echo", tmp_path, "api", base_url=url, concurrency=4)
    direct = _run(FakeBackend(), tmp_path, "direct")
    assert api["tasks"]["cmmlu"]["metrics"] == direct["tasks"]["cmmlu"]["metrics"]
    assert api["model"]["backend"] == "openai" and api["model"]["base_url"] == url
    stats = api["backend_stats"]
    assert stats["requests"] > 0 and stats["retries"] == 0 and stats["failures"] == 0


class ChatOnly(FakeBackend):
    """A chat model that cannot score and always answers B, sometimes in a way no rule can read."""

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        raise UnsupportedRequest("chat only")


def test_chat_only_api_falls_back_to_generation_with_extraction(tmp_path: Path) -> None:
    # the last user message is the question itself (few-shot exemplars are earlier turns): the demo set's
    # computer-science questions about queues, sorting and trees get an answer no rule can read
    backend = ChatOnly(replies=[(re.compile("队列|排序|结点|计算机|程序"), ["我不确定。"]),
                                (re.compile("."), ["分析：A项错误。所以答案是 B。"])])
    with serve_in_thread(create_app(backend, "chat")) as url:
        results = _run("openai:chat", tmp_path, "chat", base_url=url)
    task = results["tasks"]["cmmlu"]
    assert task["info"]["mode"] == "generate"  # the automatic mode settled on generation, and says so
    samples = _samples(tmp_path / "chat")
    unreadable = [s for s in samples if not s["extracted"]]
    assert task["info"]["unextractable"] == len(unreadable) and 0 < len(unreadable) < len(samples)
    assert all(s["prediction"] == "B" for s in samples if s["extracted"])
    assert task["metrics"]["acc"] == pytest.approx(sum(s["correct"] for s in samples) / len(samples))


def _samples(out: Path) -> list[dict[str, Any]]:
    import json

    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    lines = (run_dir / "samples" / "cmmlu.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
