"""`evalkit perf`: evalscope's metric definitions on known timelines, prompt sources, and real streamed
load against `evalkit serve` on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evalkit.errors import DataError
from evalkit.perf import PerfSettings, RequestRecord, load_prompts, run_sweep, summarize


def test_metrics_follow_evalscope_definitions_on_known_timelines() -> None:
    # request 0: sent at 0, text chunks at 0.5, 0.6, 0.8, done at 1.0, 4 output tokens
    # request 1: sent at 0.2, chunks at 0.4, 0.5, done at 0.6, 2 output tokens; request 2 failed
    records = [RequestRecord(0, 0.0, 1.0, [0.5, 0.6, 0.8], "abc", 10, 4),
               RequestRecord(1, 0.2, 0.6, [0.4, 0.5], "de", 6, 2),
               RequestRecord(2, 0.3, 0.35, error="HTTP 500: boom")]
    report = summarize(2, records)
    assert report["requests"] == 3 and report["succeeded"] == 2 and report["errors"] == {"HTTP 500: boom": 1}
    assert report["duration_s"] == pytest.approx(1.0)  # first start 0.0 to last end 1.0
    assert report["requests_per_s"] == pytest.approx(2.0)
    assert report["output_tokens_per_s"] == pytest.approx(6.0) and report["total_tokens_per_s"] == pytest.approx(22.0)
    assert report["ttft_ms"]["mean"] == pytest.approx(350.0)  # (500 + 200) / 2
    # TPOT = (latency - TTFT) / (tokens - 1): (1.0 - 0.5) / 3 and (0.4 - 0.2) / 1
    assert report["tpot_ms"]["p50"] == pytest.approx((500 / 3 + 200) / 2, abs=1e-3)
    # ITL: every gap between text chunks: 100, 200 and 100 ms
    assert report["itl_ms"]["p50"] == pytest.approx(100.0) and report["itl_ms"]["mean"] == pytest.approx(133.3333, abs=1e-3)
    assert report["latency_s"]["p90"] == pytest.approx(0.4 + 0.9 * 0.6)


def test_prompt_sources(tmp_path: Path) -> None:
    assert load_prompts("Hi", None) == (("Hi",), "prompt")
    lines = tmp_path / "p.jsonl"
    lines.write_text('{"question": "Q1"}\n{"turns": ["T1", "T2"]}\n\n'
                     '{"messages": [{"role": "user", "content": "M1"}]}\n', encoding="utf-8")
    assert load_prompts(None, lines)[0] == ("Q1", "T1", "M1")
    text = tmp_path / "p.txt"
    text.write_text("first\n\nsecond\n", encoding="utf-8")
    assert load_prompts(None, text)[0] == ("first", "second")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok"}\n{"nothing": 1}\n', encoding="utf-8")
    with pytest.raises(DataError, match="bad.jsonl:2"):
        load_prompts(None, bad)


@pytest.fixture(scope="module")
def fake_server() -> Iterator[str]:
    from evalkit.backends import load_backend
    from evalkit.server import create_app, serve_in_thread

    with serve_in_thread(create_app(load_backend("fake:echo"), "fake:echo")) as url:
        yield url


def test_a_sweep_against_evalkit_serve_measures_every_level(fake_server: str) -> None:
    settings = PerfSettings(fake_server, "fake:echo", ("one two three four five", "six seven"), max_tokens=8)
    seen: dict[int, list[RequestRecord]] = {}
    report = run_sweep(settings, [1, 3], 6, live=False, on_level=lambda level, records: seen.setdefault(level, records))
    assert [level["concurrency"] for level in report["levels"]] == [1, 3]
    for level in report["levels"]:
        assert level["succeeded"] == 6 and level["failed"] == 0
        assert level["ttft_ms"]["p50"] is not None and level["output_tokens_mean"] > 0
        assert level["latency_s"]["p99"] >= level["latency_s"]["p50"] > 0
    assert [r.text for r in seen[1]] == [r.text for r in seen[3]]  # same answers at any concurrency
    wrong = PerfSettings(fake_server, "no-such-model", ("x",), max_tokens=4)
    failed = run_sweep(wrong, [2], 2, live=False)["levels"][0]
    assert failed["failed"] == 2 and next(iter(failed["errors"])).startswith("RuntimeError: HTTP 404")


def test_cli_writes_the_json_report(fake_server: str, tmp_path: Path) -> None:
    from evalkit.cli import app

    out = tmp_path / "perf.json"
    result = CliRunner().invoke(app, ["perf", "--base-url", fake_server, "--concurrency", "1,2", "--requests", "3",
                                      "--prompt", "hello world", "--max-tokens", "4", "--output", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["schema"] == "evalkit.perf/1" and report["model"] == "fake:echo"
    assert [level["concurrency"] for level in report["levels"]] == [1, 2]
    assert set(report["levels"][0]) >= {"ttft_ms", "tpot_ms", "itl_ms", "latency_s", "requests_per_s",
                                        "output_tokens_per_s", "errors"}



def test_a_bad_concurrency_list_is_a_one_line_user_error(capsys: pytest.CaptureFixture[str]) -> None:
    from evalkit.cli import main

    assert main(["perf", "--base-url", "http://127.0.0.1:9/v1", "--concurrency", "0,x"]) == 2
    err = capsys.readouterr().err
    assert "--concurrency" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
