"""`evalkit report --perf perf.json`: a real `evalkit perf` sweep against `evalkit serve` (fake:echo, 127.0.0.1)
becomes a "Load test" page with inline SVG charts and a table of the measured figures, all text escaped."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from evalkit.cli import main

FIXTURES = Path(__file__).parent / "data" / "report"
PAYLOAD = "<script>window.__pwned()</script>"


@pytest.fixture(scope="module")
def perf_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evalkit.backends import load_backend
    from evalkit.server import create_app, serve_in_thread

    out = tmp_path_factory.mktemp("perf") / "perf.json"
    with serve_in_thread(create_app(load_backend("fake:echo"), "fake:echo")) as url:
        code = main(["perf", "--base-url", url, "--concurrency", "1,2,4", "--requests", "4",
                     "--prompt", "one two three four five six", "--max-tokens", "6", "--output", str(out)])
    assert code == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    report["model"] = PAYLOAD  # untrusted text from the file must reach the page escaped
    report["levels"][1]["errors"] = {"<img src=x onerror=alert(1)>": 2}
    out.write_text(json.dumps(report), encoding="utf-8")
    return out


def _svgs(html: str) -> dict[str, str]:
    return {m.group(1): m.group(0) for m in re.finditer(r'<svg class="chart"[^>]*aria-label="([^"]*)".*?</svg>', html,
                                                         flags=re.DOTALL)}


def test_the_load_test_page_shows_charts_and_numbers(perf_json: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert main(["report", str(FIXTURES / "fixture_runs"), "-o", str(site), "--perf", str(perf_json)]) == 0
    html = (site / "perf.html").read_text(encoding="utf-8")
    assert 'href="perf.html">Load test</a>' in (site / "index.html").read_text(encoding="utf-8")
    levels = json.loads(perf_json.read_text(encoding="utf-8"))["levels"]
    svgs = _svgs(html)
    throughput = svgs["Output tokens per second by concurrency"]
    assert throughput.count('class="bar"') == 3
    for level in levels:
        assert f"concurrency {level['concurrency']}" in throughput
        assert f">{level['output_tokens_per_s']:.1f}</text>" in throughput
        cells = f'<td class="num">{level["concurrency"]}</td><td class="num">{level["requests"]}</td>'
        row = html[html.index(cells):].split("</tr>")[0]
        assert f'<td class="num">{level["requests_per_s"]:.2f}</td>' in row
        assert f'<td class="num">{level["output_tokens_per_s"]:.1f}</td>' in row
        assert f'<td class="num">{level["latency_s"]["p99"]:.3f}</td>' in row
    latency = svgs["End-to-end latency percentiles (s)"]
    assert latency.count('class="bar"') == 9 and "c=4 p99" in latency
    assert "Time to first token percentiles (ms)" in svgs
    assert PAYLOAD not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned()&lt;/script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt; ×2" in html


def test_two_reports_and_bad_files(perf_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site"
    assert main(["report", str(FIXTURES / "fixture_runs"), "-o", str(site), "--perf", str(perf_json),
                 "--perf", str(perf_json)]) == 0
    assert (site / "perf.html").read_text(encoding="utf-8").count('class="card perf-report"') == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "evalkit.perf/1", "levels": [{"concurrency": 1}]}), encoding="utf-8")
    assert main(["report", str(FIXTURES / "fixture_runs"), "-o", str(tmp_path / "s2"), "--perf", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.json: level 1 lacks requests" in err and "evalkit perf --output" in err
    assert main(["report", str(FIXTURES / "fixture_runs"), "-o", str(tmp_path / "s3"),
                 "--perf", str(tmp_path / "none.json")]) == 2
    assert "none.json: no such file" in capsys.readouterr().err


def test_a_perf_report_alone_builds_a_site(perf_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site"
    assert main(["report", "-o", str(site), "--perf", str(perf_json)]) == 0
    assert "Output tokens per second by concurrency" in (site / "perf.html").read_text(encoding="utf-8")
    assert 'href="perf.html">Load test</a>' in (site / "index.html").read_text(encoding="utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()  # a runs folder that holds nothing is still an error, --perf or not
    assert main(["report", str(empty), "-o", str(tmp_path / "s"), "--perf", str(perf_json)]) == 2
    assert "no results.json" in capsys.readouterr().err
