"""Tests of the generated site without a browser: files, escaping, CSP, determinism, samples, CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.report import build_site, load_runs, run_from_results
from evalkit.report._build import json_script
from evalkit.report._model import discover_results
from evalkit.report._samples import chunk_script, sample_record
from evalkit.store._lmeval_import import import_lmeval_results

FIXTURES = Path(__file__).parent / "data" / "report"
LMEVAL = FIXTURES / "lmeval" / "results_2026-11-01T12-00-00.500000.json"
PAYLOAD_MARKERS = ("<script>window.__pwned", "<img src=x onerror", "<b>bold</b>")


def _runs() -> list:
    paths = discover_results([FIXTURES / "fixture_runs", FIXTURES / "judged"])
    runs = [run for p in paths for run in load_runs(p)]
    runs.append(run_from_results(import_lmeval_results(LMEVAL), source="lm-eval"))
    return runs


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    build_site(_runs(), out)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_pages_exist(site: Path) -> None:
    names = set(_files(site))
    assert "index.html" in names
    assert {f"tasks/{t}.html" for t in ("ceval", "cmmlu", "wikitext", "mt_bench", "longbench")} <= names
    assert "runs/20261102-090000-qwen2.5-0.5b-cccc.html" in names
    assert "samples/20261101-100000-smollm2-aaaa/ceval.html" in names
    # 230 samples -> chunks of 200: two script files
    assert {"samples/20261101-100000-smollm2-aaaa/ceval/0000.js",
            "samples/20261101-100000-smollm2-aaaa/ceval/0001.js"} <= names


def test_build_is_deterministic(site: Path, tmp_path: Path) -> None:
    build_site(list(reversed(_runs())), tmp_path)
    assert _files(tmp_path) == _files(site)


def test_untrusted_text_is_escaped_everywhere(site: Path) -> None:
    for name, content in _files(site).items():
        text = content.decode("utf-8")
        if name.endswith(".html"):
            for marker in PAYLOAD_MARKERS:
                assert marker not in text, f"{name} contains raw {marker!r}"
            # only our own inline script element (plus the JSON data block on sample pages)
            assert len(re.findall(r"<script[\s>]", text)) == (2 if name.startswith("samples/") else 1)
        else:  # chunk scripts: JSON data only, strings escaped for a JS string literal context
            assert text.startswith("window.evkChunk(") and text.endswith(");\n")
            json.loads(text[text.index(",") + 1: -3])


def test_csp_is_strict_and_hashes_match(site: Path) -> None:
    html = (site / "index.html").read_text(encoding="utf-8")
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html).group(1)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "default-src 'none'" in csp
    assert html.index("Content-Security-Policy") < html.index("<style>")
    script = re.search(r"<script>(.*?)</script>", html, re.DOTALL).group(1)
    style = re.search(r"<style>(.*?)</style>", html, re.DOTALL).group(1)

    def digest(text: str) -> str:
        return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    assert f"script-src '{digest(script)}'" in csp and f"style-src '{digest(style)}'" in csp
    for name, content in _files(site).items():  # nothing fetched from anywhere: no CDN, no fonts, no trackers
        if not name.endswith(".html"):
            continue  # sample data may quote URLs; it is only ever shown as text
        text = content.decode("utf-8").replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert ' style="' not in text and "http://" not in text and "https://" not in text, name


def test_index_table_rows_and_empty_cells(site: Path) -> None:
    html = (site / "index.html").read_text(encoding="utf-8")
    body = html[html.index('<table class="board"'): html.index("</table>")]
    models = re.findall(r'<td class="model" data-v="([^"]+)"', body)
    assert sorted(models) == ["Qwen/Qwen2.5-0.5B", "alpaca-13b", "gpt-4", "qwen2.5-0.5b", "smollm2",
                              "vicuna-13b-v1.3"]
    # models of a judged-answers run link to that run's page
    assert 'href="runs/20261122-162228-judge-mt-bench-single-5779.html"' in body
    assert 'title="not run"' in body  # vicuna has no ceval: an empty cell, not 0
    assert body.count('class="num best') >= 5


def test_task_pages_show_special_sections(site: Path) -> None:
    mt = (site / "tasks" / "mt_bench.html").read_text(encoding="utf-8")
    for text in ("Judge reliability", "position consistency", "Bradley-Terry", "Per turn", "<svg"):
        assert text in mt
    lb = (site / "tasks" / "longbench.html").read_text(encoding="utf-8")
    assert "By input length" in lb and "narrativeqa" in lb
    ceval = (site / "tasks" / "ceval.html").read_text(encoding="utf-8")
    assert "Social Science" in ceval and "computer_network" in ceval and "Judge reliability" not in ceval


def test_run_page_shows_provenance(site: Path) -> None:
    html = (site / "runs" / "20261102-090000-qwen2.5-0.5b-cccc.html").read_text(encoding="utf-8")
    for text in ("cost_usd", "0.42", "prompt_tokens", "transformers", "task_specs.ceval", "num_fewshot"):
        assert text in html


def test_sample_record_shapes() -> None:
    mc = sample_record({"id": 3, "subset": "law", "prompt": "Q", "target": "A", "prediction": "B",
                        "correct": False, "choice_logprobs": {"B": -1.0, "A": -2.0}, "extra_key": 5}, 0)
    assert mc["wrong"] and not mc["invalid"] and mc["responses"] == ["B"] and mc["id"] == "3"
    assert list(mc["logprobs"]) == ["A", "B"] and mc["extra"] == {"extra_key": "5"}
    judged = sample_record({"prompt": ["t1", "t2"], "responses": [["a1", "a2"]], "score": 4.0,
                            "votes": [{"judge": "j", "score": 4, "valid": True},
                                      {"judge": "k", "verdict": None, "raw": "??", "valid": False}]}, 7)
    assert judged["id"] == "7" and judged["invalid"] and not judged["wrong"]
    assert "turn 1" in judged["prompt"] and judged["votes"][1]["reasoning"] == "??"
    ppl = sample_record({"id": "wiki/0", "prompt": "text", "target": None, "token_perplexity": 12.5, "tokens": 40}, 0)
    assert ppl["perplexity"] == 12.5 and not ppl["wrong"] and ppl["extra"] == {"token_perplexity": "12.5", "tokens": "40"}


def test_json_escaping_helpers() -> None:
    text = str(json_script({"a": "</script><!-- & \u2028"}))
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><!-- & \u2028"}
    chunk = chunk_script(0, [{"t": "\u2029x"}]).decode()
    assert "\u2029" not in chunk


def test_cli_builds_site(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "site"
    code = main(["report", str(FIXTURES / "fixture_runs"), "--import-lm-eval", str(LMEVAL), "-o", str(out)])
    assert code == 0 and (out / "index.html").is_file()
    assert "pages" in capsys.readouterr().out


def test_cli_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "-o", str(tmp_path / "s")]) == 2
    assert "nothing to report" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing"), "-o", str(tmp_path / "s")]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", str(empty), "-o", str(tmp_path / "s")]) == 2
    assert "no results.json" in capsys.readouterr().err


def test_charts_escape_labels_and_scale() -> None:
    from evalkit.report._charts import Bar, bar_chart, radar_chart

    svg = str(bar_chart([Bar("<script>x</script>", 50.0, 40.0, 60.0), Bar("b", 20.0)], title="t & u"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "t &amp; u" in svg
    assert svg.count('class="bar"') == 2 and svg.count('class="whisker"') == 1
    assert str(bar_chart([], title="x")) == ""
    radar = str(radar_chart(["a", "b", "c"], [("m<1>", {"a": 1.0, "b": 2.0, "c": 3.0})], title="r"))
    assert radar.count("series-0") == 2 and "m&lt;1&gt;" in radar
    assert str(radar_chart(["a", "b"], [("m", {"a": 1.0, "b": 2.0})], title="r")) == ""


def test_breakdown_heat_compares_models_within_a_part() -> None:
    from evalkit.report._pages import breakdown

    table = breakdown("Subtasks", "Subtask", ["m1", "m2"], [{"law": {"acc": 0.2}, "art": {"acc": 0.9}},
                                                            {"law": {"acc": 0.6}}])
    assert table is not None and table["metric"] == "acc" and table["part"] == "Subtask"
    law, art = table["rows"]
    assert [c["heat"] for c in law["cells"]] == ["h0", "h4"] and law["cells"][1]["text"] == "60.0"
    assert art["cells"][1] == {"text": "", "heat": "", "title": "not run", "href": None} and law["cells"][0]["href"] is None
    ppl = breakdown("B", "Part", ["a", "b"], [{"x": {"word_perplexity": 10.0}}, {"x": {"word_perplexity": 30.0}}])
    assert ppl is not None and [c["heat"] for c in ppl["rows"][0]["cells"]] == ["h4", "h0"]
    assert breakdown("B", "Part", ["a"], [{}]) is None
