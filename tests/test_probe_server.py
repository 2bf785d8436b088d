"""`evalkit probe` and the check the OpenAI backend makes before scoring, against real servers on 127.0.0.1:
`evalkit serve` passes; a fault server whose echoed logprobs are shifted by one position (as a popular server's
are) is found, named with its direction and re-aligned; any other misalignment is refused with one line and
no numbers; the verdict is cached; declared context lengths are tested."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from _ceval_data import write_ceval_subject

from evalkit.backends._fake import FakeBackend
from evalkit.backends._openai import LogprobsMisaligned, OpenAIBackend
from evalkit.backends._openai_http import RetryPolicy
from evalkit.backends._probe_cli import run_probe
from evalkit.cli import main
from evalkit.errors import UnsupportedRequest
from evalkit.server import FaultSchedule, create_app, serve_in_thread
from evalkit.types import LoglikelihoodRequest

FAST = RetryPolicy(max_retries=2, backoff_base=0.001, backoff_max=0.01, timeout=10.0)
REQS = [LoglikelihoodRequest("问题：中国的首都是哪里？\n答案：", f" {x}") for x in "ABCD"] + [
    LoglikelihoodRequest("The quick brown fox", " jumps over the lazy dog")]
TEXTS = ["a text whose every character is scored, twice over: " * 2, "短文本也要逐字计分。"]


@pytest.fixture(autouse=True)
def _verdicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_PROBE_CACHE", str(tmp_path / "probes.json"))
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(name, "1")


def _fault_server(shift: int = 0, **kw: Any) -> tuple[FaultSchedule, AbstractContextManager[str]]:
    """A FakeBackend behind a server that looks like any OpenAI-compatible one, with a shifted echo."""
    schedule = FaultSchedule(logprob_shift=shift, owned_by="some-server", **kw)
    return schedule, serve_in_thread(create_app(FakeBackend(), "m", faults=schedule))


def _one_line(err: str) -> str:
    """The one error line of a failed command (progress bars and warnings aside), and no traceback."""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_probe_passes_against_evalkit_serve(capsys: pytest.CaptureFixture[str]) -> None:
    with serve_in_thread(create_app(FakeBackend(), "m")) as url:
        code = main(["probe", "--model", "openai:m", "--base-url", url])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = {line.split()[0] + " " + line.split()[1]: line for line in out.splitlines()[3:] if line.strip()}
    assert "ok" in rows["echo alignment"] and "aligned at 10 positions" in rows["echo alignment"]
    assert " ok " in rows["text offsets"] and "with logprobs" in rows["chat endpoint"]
    assert "lists m" in rows["models endpoint"] and "not declared" in rows["context length"]
    assert " fail " not in out


@pytest.mark.parametrize(("shift", "words"), [(1, "shifted by +1"), (-1, "shifted by -1")])
def test_probe_names_a_one_position_shift_and_its_direction(shift: int, words: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    _, server = _fault_server(shift)
    with server as url:
        code = main(["probe", "--model", "openai:m", "--base-url", url])
    out, err = capsys.readouterr()
    assert code == 2
    line = _one_line(err)
    assert words in line and "echo alignment" in line and "re-aligns" in line
    assert words in out  # the table was printed before the verdict


def test_probe_refuses_a_misalignment_it_cannot_undo(capsys: pytest.CaptureFixture[str]) -> None:
    _, server = _fault_server(2)
    with server as url:
        code = main(["probe", "--model", "openai:m", "--base-url", url])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "do not match" in line and "logprobs=false" in line


@pytest.mark.parametrize(("declared", "limit", "status", "words"), [
    (500, 500, "ok", "enforced"),
    (500, None, "warn", "was accepted"),
    (500, 300, "fail", "was rejected"),
])
def test_declared_context_length_is_tested(declared: int, limit: int | None, status: str, words: str) -> None:
    _, server = _fault_server(declared_context=declared, context_limit=limit)
    with server as url:
        rows = {r.name: r for r in run_probe(OpenAIBackend("m", base_url=url, policy=FAST))}
    assert rows["context length"].status == status and words in rows["context length"].detail
    assert rows["echo alignment"].status == "ok"


@pytest.mark.parametrize("shift", [1, -1])
def test_scores_through_a_shifted_server_are_realigned_and_say_so(shift: int) -> None:
    _, server = _fault_server(shift)
    with server as url:
        checked = OpenAIBackend("m", base_url=url, policy=FAST)
        with pytest.warns(RuntimeWarning, match="re-aligns"):
            got = checked.loglikelihood(REQS)
        rolled = checked.loglikelihood_rolling(TEXTS)
        unchecked = OpenAIBackend("m", base_url=url, policy=FAST, probe=False)
        try:
            raw: list[float] | None = [r.logprob for r in unchecked.loglikelihood(REQS)]
        except UnsupportedRequest:  # +1: the last prompt token carries the (absent) generated token's value
            raw = None
    want = FakeBackend().loglikelihood(REQS)
    assert [g.logprob for g in got] == pytest.approx([w.logprob for w in want], abs=1e-9)
    if raw is not None:  # what an unchecked client reads
        assert all(abs(r - w.logprob) > 1e-3 for r, w in zip(raw, want))
    assert raw is not None or shift == 1
    for one, reference in zip(rolled, FakeBackend().loglikelihood_rolling(TEXTS)):
        assert one.logprobs == pytest.approx(reference.logprobs[-len(one.logprobs):], abs=1e-9)
        assert len(one.logprobs) >= len(reference.logprobs) - 1  # at most the first token has no logprob
    assert checked.stats().logprob_alignment == "shifted-corrected"
    assert checked.stats().as_dict()["logprob_alignment"] == "shifted-corrected"
    assert unchecked.stats().logprob_alignment == "unchecked"


def test_a_refused_server_gives_no_numbers_and_is_not_asked_twice() -> None:
    schedule, server = _fault_server(2)
    with server as url:
        client = OpenAIBackend("m", base_url=url, policy=FAST)
        with pytest.raises(LogprobsMisaligned, match="logprobs=false") as info:
            client.loglikelihood(REQS)
        asked = sum(schedule.served.values())
        with pytest.raises(LogprobsMisaligned):
            client.loglikelihood_rolling(TEXTS)
    assert sum(schedule.served.values()) == asked
    assert len(str(info.value).splitlines()) == 1 and url in str(info.value)


def test_the_verdict_is_cached_so_a_rerun_asks_once(tmp_path: Path) -> None:
    schedule, server = _fault_server(1)
    with server as url:
        with pytest.warns(RuntimeWarning):
            OpenAIBackend("m", base_url=url, policy=FAST).loglikelihood(REQS)
        first = sum(schedule.served.values())
        assert first > len(REQS)  # the check asked the server (one request per generated token + the echo)
        again = OpenAIBackend("m", base_url=url, policy=FAST)
        with pytest.warns(RuntimeWarning):
            again.loglikelihood(REQS)
        assert sum(schedule.served.values()) - first == len(REQS)  # only the scoring requests
        assert again.stats().logprob_alignment == "shifted-corrected"
    stored = json.loads((tmp_path / "probes.json").read_text(encoding="utf-8"))
    assert [v["verdict"] for v in stored.values()] == ["shifted"]


def test_evalkit_serve_is_not_probed_before_scoring() -> None:
    schedule = FaultSchedule()
    with serve_in_thread(create_app(FakeBackend(), "m", faults=schedule)) as url:
        client = OpenAIBackend("m", base_url=url, policy=FAST)
        client.loglikelihood(REQS)
    assert sum(schedule.served.values()) == 1  # one batched exact-split request, no check
    assert client.stats().logprob_alignment == "exact (evalkit serve)"


# --- a C-Eval run through the shifted server -----------------------------------------------------------
QUESTIONS = [("一个字节有几位____", "4", "8", "16", "32", "B"), ("HTTP 默认端口是____", "21", "25", "80", "110", "C"),
             ("IPv4 地址的长度是____位", "32", "64", "128", "16", "A"),
             ("TCP 属于哪一层____", "物理层", "网络层", "应用层", "传输层", "D"),
             ("DNS 的作用是____", "域名解析", "加密", "压缩", "路由", "A")]


@pytest.fixture
def ceval_dir(tmp_path: Path) -> Path:
    """A C-Eval-shaped data dir with one subject of five questions (written for these tests)."""
    return write_ceval_subject(tmp_path / "data", QUESTIONS)


def _ceval(model: str, data: Path, out: Path, *extra: str) -> int:
    return main(["run", "--model", model, "--tasks", "ceval:computer_network", "--data-dir", str(data),
                 "--output", str(out), "--no-cache", *extra])


def _samples(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in out.glob("*/samples/ceval.jsonl")
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _results(out: Path) -> Iterator[dict[str, Any]]:
    for path in out.glob("*/results.json"):
        yield json.loads(path.read_text(encoding="utf-8"))


def test_ceval_through_a_shifted_server_is_realigned_or_refused(ceval_dir: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert _ceval("fake:echo", ceval_dir, tmp_path / "direct") == 0
    _, server = _fault_server(1)
    with server as url:
        assert _ceval("openai:m", ceval_dir, tmp_path / "api", "--base-url", url) == 0
    direct, api = _samples(tmp_path / "direct"), _samples(tmp_path / "api")
    assert len(api) == len(QUESTIONS)
    for mine, theirs in zip(sorted(api, key=lambda s: s["id"]), sorted(direct, key=lambda s: s["id"])):
        assert mine["choice_logprobs"] == pytest.approx(theirs["choice_logprobs"], abs=1e-9)
    (results,) = list(_results(tmp_path / "api"))
    assert results["backend_stats"]["logprob_alignment"] == "shifted-corrected"
    capsys.readouterr()
    _, server = _fault_server(2)
    with server as url:
        code = _ceval("openai:m", ceval_dir, tmp_path / "bad", "--base-url", url)
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "logprobs=false" in line
    assert not _samples(tmp_path / "bad") and all(not r.get("tasks") for r in _results(tmp_path / "bad"))


def test_a_server_without_completions_is_scored_generatively_not_refused(ceval_dir: Path, tmp_path: Path) -> None:
    app = create_app(FakeBackend(), "m", faults=FaultSchedule(owned_by="chat-only-server"))

    @app.middleware("http")
    async def no_completions(request, call_next):  # type: ignore[no-untyped-def]
        from starlette.responses import JSONResponse

        if request.url.path.endswith("/v1/completions"):
            return JSONResponse({"error": {"message": "Not Found"}}, status_code=404)
        return await call_next(request)

    with serve_in_thread(app) as url:
        client = OpenAIBackend("m", base_url=url, policy=FAST)
        with pytest.raises(UnsupportedRequest, match="generative multiple choice"):
            client.loglikelihood(REQS)
        assert _ceval("openai:m", ceval_dir, tmp_path / "chat", "--base-url", url) == 0
    (results,) = list(_results(tmp_path / "chat"))
    assert results["tasks"]["ceval"]["info"]["mode"] == "generate" and results["tasks"]["ceval"]["n"] == 5
