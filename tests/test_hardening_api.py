"""API-side hardening (#17) against real servers on 127.0.0.1: a wrong or missing key (HTTP 401) and a typo in
the model name (HTTP 404) end a run with one line and exit 2 that say what to fix; retries are counted by
reason in backend_stats; credentials in a --base-url never reach a run directory or the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _ceval_data import write_ceval_subject

from evalkit._redact import redact_args, redact_text, redact_url
from evalkit.backends._fake import FakeBackend
from evalkit.backends._openai import OpenAIBackend
from evalkit.backends._openai_http import HttpStatusError, RetryPolicy
from evalkit.cli import main
from evalkit.server import FaultSchedule, create_app, serve_in_thread
from evalkit.types import GenConfig, LoglikelihoodRequest, Message

QUESTIONS = [("一个字节有几位____", "4", "8", "16", "32", "B"), ("HTTP 默认端口是____", "21", "25", "80", "110", "C"),
             ("IPv4 地址的长度是____位", "32", "64", "128", "16", "A")]


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_PROBE_CACHE", str(tmp_path / "probes.json"))
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(name, "1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A C-Eval-shaped data dir with one subject of three questions (written for these tests)."""
    return write_ceval_subject(tmp_path / "data", QUESTIONS)


def _run(model: str, url: str, data: Path, out: Path, *extra: str) -> int:
    return main(["run", "--model", model, "--base-url", url, "--tasks", "ceval:computer_network", "--data-dir",
                 str(data), "--output", str(out), "--num-fewshot", "0", *extra])


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _keyed_app(key: str) -> Any:
    """evalkit serve that wants `Bearer <key>` and answers anything else with 401, as OpenAI does."""
    app = create_app(FakeBackend(), "m")

    @app.middleware("http")
    async def auth(request, call_next):  # type: ignore[no-untyped-def]
        from starlette.responses import JSONResponse

        if request.headers.get("authorization") != f"Bearer {key}":
            return JSONResponse({"error": {"message": "Incorrect API key provided.", "code": "invalid_api_key"}},
                                status_code=401)
        return await call_next(request)

    return app


def test_a_wrong_key_is_one_line_naming_the_variable(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-0123456789")
    with serve_in_thread(_keyed_app("sk-right-0123456789")) as url:
        code = _run("openai:m", url, data, tmp_path / "runs")
    line = _error_line(capsys.readouterr().err)
    assert code == 2 and "HTTP 401" in line and url.split("/v1")[0] in line
    assert "OPENAI_API_KEY" in line and "was refused" in line and "sk-wrong-0123456789" not in line


def test_a_missing_key_names_the_variable_it_was_read_from(data: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    with serve_in_thread(_keyed_app("sk-right-0123456789")) as url:
        code = _run("openai:m", url, data, tmp_path / "runs", "--model-args", "api_key_env=MY_EVAL_KEY")
        probe_code = main(["probe", "--model", "openai:m", "--base-url", url])
    err = capsys.readouterr().err
    assert code == 2 and probe_code == 2
    run_line, probe_line = [line for line in err.splitlines() if line.startswith("error:")]
    assert "MY_EVAL_KEY" in run_line and "is not set" in run_line
    assert "HTTP 401" in probe_line and "OPENAI_API_KEY" in probe_line and "Traceback" not in err


def test_a_model_name_typo_is_one_line_listing_the_served_models(data: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with serve_in_thread(create_app(FakeBackend(), "qwen-7b")) as url:
        code = _run("openai:qwen-7", url, data, tmp_path / "runs")
        line = _error_line(capsys.readouterr().err)
        assert code == 2 and "'qwen-7' is not served" in line and "it serves: qwen-7b" in line
        probe_code = main(["probe", "--model", "openai:qwen-7", "--base-url", url])
        line = _error_line(capsys.readouterr().err)
        assert probe_code == 2 and "'qwen-7' is not served here" in line and "qwen-7b" in line
        client = OpenAIBackend("qwen-7", base_url=url)
        with pytest.raises(HttpStatusError, match="it serves: qwen-7b") as info:
            client.generate([(Message("user", "hi"),)], GenConfig(max_tokens=2))
    assert info.value.status == 404


def test_a_status_error_can_be_rebuilt_from_its_message_alone() -> None:
    # the runner re-raises errors with more context as type(error)(message)
    rebuilt = type(HttpStatusError("x", 404))("x (results so far: runs/r/results.json)")
    assert isinstance(rebuilt, HttpStatusError) and rebuilt.status == 0


def test_retries_are_counted_by_reason(data: Path, tmp_path: Path) -> None:
    schedule = FaultSchedule.parse("ok,429,ok,500,ok,slow,ok,malformed,ok,ok", retry_after=0.01, slow_seconds=1.0)
    policy = RetryPolicy(max_retries=20, backoff_base=0.001, backoff_max=0.01, timeout=0.4)
    with serve_in_thread(create_app(FakeBackend(), "m", faults=schedule)) as url:
        client = OpenAIBackend("m", base_url=url, policy=policy, concurrency=2)
        client.generate([(Message("user", f"q{i}"),) for i in range(8)], GenConfig(max_tokens=4))
        client.loglikelihood([LoglikelihoodRequest(f"context {i} ", "answer") for i in range(3)])
        stats, served = client.stats(), dict(schedule.served)
        code = _run("openai:m", url, data, tmp_path / "runs", "--model-args",
                    "max_retries=20,backoff_base=0.001,backoff_max=0.01,timeout=0.4")
    # every fault the server handed out was one retry, counted under its reason
    assert stats.retries_by_reason == {"429": served["429"], "5xx": served["500"], "timeout": served["slow"],
                                       "malformed": served["malformed"]}
    assert sum(stats.retries_by_reason.values()) == stats.retries and stats.as_dict()["retries_by_reason"]
    assert code == 0
    (results,) = [json.loads(p.read_text(encoding="utf-8")) for p in (tmp_path / "runs").glob("*/results.json")]
    reasons = results["backend_stats"]["retries_by_reason"]
    assert sum(reasons.values()) == results["backend_stats"]["retries"] > 0
    assert set(reasons) <= {"429", "5xx", "timeout", "malformed"}


def test_redact_url_removes_userinfo_and_secret_query_values() -> None:
    assert redact_url("https://user:sk-abc@api.example.com:8443/v1") == "https://***@api.example.com:8443/v1"
    assert redact_url("http://h/v1?key=1&token=2&access_token=3&model=m") == \
        "http://h/v1?key=***&token=***&access_token=***&model=m"
    assert redact_url("not a url") == "not a url" and redact_url("http://h/v1") == "http://h/v1"
    assert "sk-abc" not in redact_text("failed: POST https://u:sk-abc@h/v1/completions (HTTP 500)")
    assert redact_args({"base_url": "https://u:sk-abc@h/v1", "api_key_env": "K", "timeout": "3"}) == \
        {"base_url": "https://***@h/v1", "api_key_env": "***", "timeout": "3"}


def test_url_credentials_never_reach_the_run_directory_or_the_report(data: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    secrets = ("PASS-in-userinfo-8472", "KEY-in-query-9931")
    with serve_in_thread(create_app(FakeBackend(), "m")) as url:
        host = url.split("://", 1)[1]
        leaky = f"http://user:{secrets[0]}@{host}?api_key={secrets[1]}"
        assert _run("openai:m", leaky, data, tmp_path / "runs") == 0
    assert main(["report", str(tmp_path / "runs"), "-o", str(tmp_path / "site")]) == 0
    out, err = capsys.readouterr()
    written = [p for root in ("runs", "site") for p in (tmp_path / root).rglob("*") if p.is_file()]
    assert any(p.name == "results.json" for p in written) and any(p.suffix == ".html" for p in written)
    for path in written:
        blob = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in blob, f"{secret} written to {path}"
    for secret in secrets:
        assert secret not in out and secret not in err
