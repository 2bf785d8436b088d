"""Sample browser for generated multiple-choice answers: thought and answer apart, an "unextractable" filter."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from evalkit.backends._fake import FakeBackend
from evalkit.report import build_site, load_runs
from evalkit.runner import RunOptions, execute

PAYLOAD = "<script>window.__pwned=1</script>"


def _chunk_records(folder: Path) -> list[dict]:
    records: list[dict] = []
    for path in sorted(folder.glob("*.js")):
        text = path.read_text(encoding="utf-8")
        match = re.fullmatch(r"window\.evkChunk\(\d+,(.*)\);\n", text, flags=re.DOTALL)
        assert match, path
        records.extend(orjson.loads(match.group(1)))
    return records


def _cot_site(tmp_path: Path) -> Path:
    """A site of one CoT run: 4 answers with a <think> trace (one holding markup), 2 without a letter."""
    backend = FakeBackend(replies=[
        (re.compile("队列"), [f"<think>先看A，再看C {PAYLOAD}</think>都不对，所以选B。"]),
        (re.compile("十六进制|排序算法"), ["我不知道这道题。"]),
        (re.compile("."), ["<think>逐项排除。</think>\n答案：A"]),
    ])
    run_dir = execute(RunOptions(model=backend, tasks="cmmlu:computer_science", limit=6, output=tmp_path / "runs",
                                 task_args={"mode": "cot"}, quiet=True, no_cache=True))
    site = tmp_path / "site"
    build_site(load_runs(run_dir), site)
    return site


def test_cot_samples_show_thinking_answer_and_unextractable_filter(tmp_path: Path) -> None:
    site = _cot_site(tmp_path)
    pages = sorted(site.glob("samples/*/*.html"))
    assert len(pages) == 1
    html = pages[0].read_text(encoding="utf-8")
    records = _chunk_records(pages[0].with_suffix(""))
    assert len(records) == 6

    thought = [r for r in records if r["thinking"]]
    unreadable = [r for r in records if r["unextractable"]]
    assert len(thought) == 4 and len(unreadable) == 2
    for r in thought:  # the thought and the answer are separate fields; the thought never leaks into the answer
        assert "<think>" not in r["answer"] and r["thinking"] not in r["answer"] and r["answer"]
        assert "<think>" in r["raw_output"] and r["prediction"] in "AB" and r["stage"]
        assert not r["unextractable"] and r["responses"] == []
    for r in unreadable:
        assert r["prediction"] == "" and r["stage"] == "none" and r["wrong"] and r["answer"] == "我不知道这道题。"
    assert any(PAYLOAD in r["thinking"] for r in thought)

    control = re.search(r'<input type="checkbox" id="only-unextractable" data-filter="unextractable" '
                        r'data-count="(\d+)">', html)
    assert control and int(control.group(1)) == len(unreadable)
    assert f"{len(unreadable)} unextractable" in html
    assert "__pwned" not in html  # the page itself never carries sample text; the chunks are loaded by src


def test_loglikelihood_samples_have_no_unextractable_control(tmp_path: Path) -> None:
    run_dir = execute(RunOptions(model=FakeBackend(), tasks="cmmlu:computer_science", limit=3,
                                 output=tmp_path / "runs", quiet=True, no_cache=True))
    build_site(load_runs(run_dir), tmp_path / "site")
    page = next((tmp_path / "site").glob("samples/*/*.html"))
    records = _chunk_records(page.with_suffix(""))
    html = page.read_text(encoding="utf-8")
    assert 'data-filter="unextractable"' not in html and not any(r["unextractable"] or r["stage"] for r in records)
    assert all(r["responses"] for r in records)


@pytest.mark.integration
@pytest.mark.browser
def test_browser_shows_parts_and_filters_unextractable(tmp_path: Path) -> None:
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("chromium not installed: apt-get update && apt-get install -y chromium")
    from playwright.sync_api import expect, sync_playwright

    page_file = next(_cot_site(tmp_path).glob("samples/*/*.html"))
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_file.as_uri())
        counter = page.locator("#sample-count")
        expect(counter).to_have_text("1–6 of 6")
        first = page.locator("article.sample").first
        expect(first.locator("details.field summary", has_text="thinking")).to_have_count(1)
        assert "先看A，再看C " + PAYLOAD in (first.locator("details.field pre").first.text_content() or "")
        assert first.locator(".field .name", has_text="answer").count() == 1
        assert page.locator("article.sample script").count() == 0
        page.check("#only-unextractable")
        expect(counter).to_have_text("1–2 of 2 matching")
        assert set(page.locator("article.sample .verdict.bad").all_inner_texts()) == {"wrong", "unextractable"}
        assert "unextractable=1" in page.url and errors == []
        browser.close()
