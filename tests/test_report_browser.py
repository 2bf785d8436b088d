"""Real-browser tests of the generated site: Debian's chromium driven by playwright, opened from file://.

Needs `apt-get install -y chromium` and `pip install playwright` (never `playwright install`: the browser
is the system one). Skipped with a reason when either is missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalkit.report import build_site, load_runs, run_from_results
from evalkit.report._model import discover_results
from evalkit.store._lmeval_import import import_lmeval_results

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
FIXTURES = Path(__file__).parent / "data" / "report"
LMEVAL = FIXTURES / "lmeval" / "results_2026-11-01T12-00-00.500000.json"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-output"
SMOL_CEVAL = "samples/20261101-100000-smollm2-aaaa/ceval.html"
QWEN_MT = "samples/20261102-090000-qwen2.5-0.5b-cccc/mt_bench.html"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    paths = discover_results([FIXTURES / "fixture_runs", FIXTURES / "judged"])
    runs = [run for p in paths for run in load_runs(p)]
    runs.append(run_from_results(import_lmeval_results(LMEVAL), source="lm-eval"))
    out = tmp_path_factory.mktemp("site")
    build_site(runs, out)
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("chromium not installed: apt-get update && apt-get install -y chromium")
    from playwright import sync_api

    with sync_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Page:
    """A page with every console error, page error and failed request recorded."""

    def __init__(self, browser: Any, site: Path, rel: str) -> None:
        self.errors: list[str] = []
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed {r.url}"))
        path, _, fragment = rel.partition("#")
        self.page.goto((site / path).as_uri() + (f"#{fragment}" if fragment else ""))
        self.page.wait_for_load_state("load")

    def column(self, selector: str) -> list[str]:
        return self.page.locator(selector).all_inner_texts()

    def close(self) -> None:
        self.page.close()


@pytest.fixture()
def open_page(browser: Any, site: Path) -> Iterator[Any]:
    pages: list[Page] = []

    def opener(rel: str) -> Page:
        pages.append(Page(browser, site, rel))
        return pages[-1]

    yield opener
    for page in pages:
        page.close()


def test_every_page_loads_without_console_errors(site: Path, open_page: Any) -> None:
    pages = sorted(str(p.relative_to(site)) for p in site.rglob("*.html"))
    assert len(pages) >= 14
    for rel in pages:
        page = open_page(rel)
        if rel.startswith("samples/"):
            _count(page)
        assert page.errors == [], f"{rel}: {page.errors}"
        page.close()


def test_index_rows_sorting_and_filters(open_page: Any) -> None:
    page = open_page("index.html")
    models = page.column("#leaderboard tbody td.model")
    assert sorted(m.replace(" lm-eval", "") for m in models) == [
        "Qwen/Qwen2.5-0.5B", "alpaca-13b", "gpt-4", "qwen2.5-0.5b", "smollm2", "vicuna-13b-v1.3"]
    # the leaderboard starts in rank order
    ranks = [int(r) for r in page.column("#leaderboard tbody td.rank")]
    assert ranks == sorted(ranks) and ranks[0] == 1
    header = page.page.locator('#leaderboard th[data-col="wikitext.word_perplexity"]')
    header.click()  # lower is better: ascending first, the model without wikitext last
    order = page.column("#leaderboard tbody td.model")
    assert order[0].startswith("Qwen/Qwen2.5-0.5B") and order[1] == "smollm2"
    cells = page.page.locator('#leaderboard tbody td[data-family="perplexity"]:not(.group)').all_inner_texts()
    assert cells[2:] == [""] * 4  # empty cells, not zeros, and sorted last
    header.click()  # now descending: smollm2 (38.x) before Qwen (21.7)
    order = page.column("#leaderboard tbody td.model")
    assert order[0] == "smollm2" and order[1].startswith("Qwen/Qwen2.5-0.5B")
    page.page.locator("#leaderboard th.model").click()
    assert page.column("#leaderboard tbody td.model") == sorted(order, key=str.lower)
    # family filter hides the other families' columns
    ceval = page.page.locator('#leaderboard th[data-col="ceval.acc"]')
    assert ceval.is_visible()
    page.page.locator('.chip[data-family="perplexity"]').click()
    assert not ceval.is_visible()
    assert page.page.locator('#leaderboard th[data-col="wikitext.word_perplexity"]').is_visible()
    page.page.locator('.chip[data-family="all"]').click()
    assert ceval.is_visible()
    assert page.errors == []


def test_index_screenshot(open_page: Any) -> None:
    page = open_page("index.html")
    SCREENSHOTS.mkdir(exist_ok=True)
    target = SCREENSHOTS / "report_index.png"
    page.page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000


def _count(page: Page, contains: str = "") -> str:
    """The pager text once the page has settled (polled by playwright's expect: no eval, so the CSP holds)."""
    from playwright.sync_api import expect

    counter = page.page.locator("#sample-count")
    expect(counter).not_to_have_text(re.compile("loading|searching"))
    if contains:
        expect(counter).to_contain_text(contains)
    return counter.inner_text()


def test_sample_browser_paginates_searches_and_filters(open_page: Any) -> None:
    page = open_page(SMOL_CEVAL)
    assert _count(page) == "1–25 of 230"
    assert page.page.locator("article.sample").count() == 25
    page.page.locator("#next").click()
    assert _count(page) == "26–50 of 230"
    page.page.fill("#sample-search", "needle-target")
    assert _count(page, "matching") == "1–1 of 1 matching"
    assert page.column("article.sample .sid") == ["ceval-001"]
    page.page.fill("#sample-search", "")
    page.page.check("#only-wrong")
    wrong = int(re.search(r"of (\d+) matching", _count(page, "matching")).group(1))
    assert 0 < wrong < 230
    assert set(page.column("article.sample .verdict")) == {"wrong"}
    assert page.errors == []


def test_sample_links_carry_filters_in_the_hash(open_page: Any) -> None:
    task = open_page("tasks/ceval.html")
    link = task.page.locator('table.heat a[href*="#subset=law"]').first
    assert link.count() == 1
    link.click()
    task.page.wait_for_load_state("load")
    assert "subset=law" in task.page.url
    counted = _count(task, "matching")
    assert re.fullmatch(r"1–25 of \d+ matching", counted)
    assert set(task.column("article.sample header .muted")) == {"law"}
    page = open_page(SMOL_CEVAL + "#q=needle-target")
    assert _count(page, "matching") == "1–1 of 1 matching"
    assert page.page.locator("#sample-search").input_value() == "needle-target"
    page.page.check("#only-wrong")
    _count(page)
    assert "wrong=1" in page.page.url and "q=needle-target" in page.page.url
    assert task.errors == [] and page.errors == []


def test_injected_payload_renders_as_text_and_does_not_run(open_page: Any) -> None:
    page = open_page(SMOL_CEVAL)
    _count(page)
    first = page.page.locator("article.sample").first
    assert "<script>window.__pwned=1" in first.inner_text()
    assert page.page.locator("article.sample img").count() == 0
    page.page.fill("#sample-search", "pwned")
    page.page.wait_for_timeout(600)
    assert page.page.evaluate("window.__pwned") is None
    assert page.page.title() != "pwned" and "samples" in page.page.title()
    mt = open_page(QWEN_MT)
    _count(mt)
    assert "<b>bold</b>" in mt.page.locator("article.sample").nth(1).inner_text()
    mt.page.locator("article.sample details").first.evaluate("d => d.open = true")
    assert mt.page.evaluate("window.__pwned") is None and mt.page.locator("b").count() == 0
    assert page.errors == [] and mt.errors == []


def test_invalid_judgment_filter(open_page: Any) -> None:
    page = open_page(QWEN_MT)
    assert _count(page) == "1–16 of 16"
    page.page.check("#only-invalid")
    assert _count(page, "matching") == "1–3 of 3 matching"
    assert page.column("article.sample .sid") == ["mt-84", "mt-89", "mt-94"]
    assert page.page.locator("table.votes tr.invalid").count() == 3
    assert page.errors == []

