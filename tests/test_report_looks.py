"""How the report looks: axes that hold every whisker and dot, a CJK-capable font stack, Chinese glyphs drawn."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalkit.cli import main
from evalkit.report._charts import Bar, axis_for, bar_chart

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "data" / "report"
CHROMIUM = Path("/usr/bin/chromium")


def _ticks(svg: str) -> list[tuple[float, str]]:
    return [(float(x), label) for x, label in re.findall(r'<text class="tick" x="([\d.]+)"[^>]*>([^<]*)</text>', svg)]


def test_ci_whiskers_end_inside_the_last_tick() -> None:
    # the case from the issue: an interval to 42.7 drawn on an axis whose last tick was 40
    svg = str(bar_chart([Bar("smollm2", 35.1, 27.5, 42.7), Bar("qwen", 30.0, 22.0, 38.0)], title="cmmlu: acc (%)"))
    ticks = _ticks(svg)
    assert ticks[-1][1] == "50" and ticks[0][1] == "0"
    whisker_x = [float(v) for d in re.findall(r'class="whisker" d="([^"]+)"', svg)
                 for v in re.findall(r"[MH]([\d.]+)", d)]
    assert max(whisker_x) <= ticks[-1][0] and min(whisker_x) >= ticks[0][0]


def test_a_single_perplexity_point_sits_inside_its_axis() -> None:
    svg = str(bar_chart([Bar("smollm2", 17.33)], title="wikitext: word_perplexity", zero=False, fmt="{:.2f}"))
    ticks = _ticks(svg)
    [cx] = [float(v) for v in re.findall(r'class="dot" cx="([\d.]+)"', svg)]
    assert ticks[0][0] < cx < ticks[-1][0]
    labels = [label for _, label in ticks]
    assert len(set(labels)) == len(labels) >= 3  # readable, distinct tick labels
    assert float(labels[0]) < 17.33 < float(labels[-1])


@pytest.mark.parametrize(("bars", "zero"), [
    ([Bar("a", 0.0)], True),
    ([Bar("a", 1203.0, 1150.0, 1260.0), Bar("b", 980.0, 930.0, 1030.0)], False),
    ([Bar("a", 0.25, 0.2, 0.3), Bar("b", 0.31)], False),
    ([Bar("a", -3.0, -5.0, 2.0)], True),
])
def test_every_value_and_interval_lies_within_the_ticks(bars: list[Bar], zero: bool) -> None:
    axis = axis_for(bars, zero)
    values = [v for b in bars for v in (b.value, b.low, b.high) if v is not None]
    assert axis.ticks[0] <= min(values) and max(values) <= axis.ticks[-1]
    assert axis.ticks[0] == axis.lo and axis.ticks[-1] == axis.hi
    if zero:
        assert 0.0 in axis.ticks


def test_css_declares_a_cjk_font_stack_used_by_text_and_charts() -> None:
    css = (ROOT / "reports" / "assets" / "style.css").read_text(encoding="utf-8")
    sans = re.search(r"--sans:([^;]+);", css)
    assert sans is not None
    for face in ('"Noto Sans CJK SC"', '"PingFang SC"', '"Microsoft YaHei"', "sans-serif"):
        assert face in sans.group(1)
    assert re.search(r"body \{[^}]*font:[^;}]*var\(--sans\)", css)
    assert re.search(r"svg text \{ font-family: var\(--sans\); \}", css)


def test_report_counts_one_model_in_the_singular(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = FIXTURES / "fixture_runs" / "20261102-090000-qwen2.5-0.5b-cccc"
    assert main(["report", str(run), "-o", str(tmp_path / "site")]) == 0
    out = capsys.readouterr().out
    assert "(1 model, " in out and "1 models" not in out


# ---- a real browser: Chinese text must come out as glyphs, not empty boxes --------------------------------------

@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("chromium not installed: apt-get install -y chromium fonts-noto-cjk")
    from playwright import sync_api

    with sync_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
        yield launched
        launched.close()


def _gray_levels(browser: Any, png: bytes) -> int:
    """How many grey levels a screenshot has (decoded by the browser itself on a blank page: no PIL needed)."""
    page = browser.new_page()
    try:
        return int(page.evaluate("""async (data) => {
            const img = new Image(); img.src = data; await img.decode();
            const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
            const g = c.getContext('2d'); g.drawImage(img, 0, 0);
            const px = g.getImageData(0, 0, c.width, c.height).data, seen = new Set();
            for (let i = 0; i < px.length; i += 4) seen.add((px[i] + px[i + 1] + px[i + 2]) / 3 | 0);
            return seen.size; }""", "data:image/png;base64," + base64.b64encode(png).decode()))
    finally:
        page.close()


@pytest.mark.browser
@pytest.mark.integration
def test_chinese_sample_page_draws_glyphs(browser: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site"
    assert main(["report", str(FIXTURES / "fixture_runs"), "-o", str(site)]) == 0
    capsys.readouterr()
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        page.goto((site / "samples" / "20261101-100000-smollm2-aaaa" / "ceval.html").as_uri())
        page.wait_for_function("!document.querySelector('#sample-count').textContent.includes('loading')")
        text = page.locator("#samples").inner_text()
        assert re.search(r"[\u4e00-\u9fff]", text), "the C-Eval sample page shows no Chinese text"
        region = page.locator("#samples").screenshot()
        assert _gray_levels(browser, region) > 8  # text, not a blank or uniform region
        # Missing glyphs are drawn as identical empty boxes: distinct characters must give distinct images.
        shots = []
        for char in "水火山答":
            page.evaluate("""(c) => { const s = document.createElement('span'); s.id = 'probe';
                s.style.fontSize = '40px'; s.textContent = c; document.body.prepend(s); }""", char)
            shots.append(page.locator("#probe").screenshot())
            page.evaluate("document.getElementById('probe').remove()")
        assert len(set(shots)) == len(shots)
        assert all(_gray_levels(browser, shot) > 4 for shot in shots)
    finally:
        page.close()
