"""README.md and docs/*.md: every relative link points to a file that exists, every docs page is in the MkDocs
nav (what `mkdocs build --strict` would also refuse, checked here without building the site), and the pages'
`>>>` examples run."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_FENCE = re.compile(r"^(```|~~~)")
_CODE_SPAN = re.compile(r"`[^`\n]*`")


def relative_links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every relative link outside code blocks and code spans, anchor removed."""
    found: list[tuple[int, str]] = []
    in_fence = False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line.lstrip()):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        for match in _LINK.finditer(_CODE_SPAN.sub("", line)):
            target = match.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
                continue  # http:, https:, mailto: ... or an anchor in the same page
            found.append((number, target.split("#", 1)[0]))
    return found


def broken_links(page: Path) -> list[str]:
    """'file:line: target' for each relative link of `page` whose file does not exist."""
    text = page.read_text(encoding="utf-8")
    return [f"{page.name}:{line}: {target}" for line, target in relative_links(text)
            if not (page.parent / target).exists()]


def nav_pages(nav: object) -> set[str]:
    """Every page file named anywhere in a MkDocs nav tree."""
    if isinstance(nav, str):
        return {nav}
    if isinstance(nav, list):
        return set().union(*(nav_pages(item) for item in nav)) if nav else set()
    if isinstance(nav, dict):
        return set().union(*(nav_pages(value) for value in nav.values())) if nav else set()
    return set()


PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    assert broken_links(page) == []


def test_readme_links_into_docs() -> None:
    targets = {target for _, target in relative_links((ROOT / "README.md").read_text(encoding="utf-8"))}
    assert {"docs/index.md", "docs/cli.md", "docs/data.md", "docs/backends.md"} <= targets


def test_every_docs_page_is_in_nav() -> None:
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]
    listed = nav_pages(nav)
    on_disk = {p.name for p in DOCS.glob("*.md")}
    assert on_disk - listed == set(), "docs pages missing from mkdocs.yml nav"
    assert listed - on_disk == set(), "nav entries without a page"


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_docs_examples_run(page: Path) -> None:
    result = doctest.testfile(str(page), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_checker_catches_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("# there\n", encoding="utf-8")
    page.write_text("[ok](there.md#a) [web](https://example.org) `[code](nope.md)`\n\n```\n[fenced](nope.md)\n```\n"
                    "[broken](missing.md#x) ![img](gone.png)\n", encoding="utf-8")
    assert [target for _, target in relative_links(page.read_text(encoding="utf-8"))] == \
        ["there.md", "missing.md", "gone.png"]
    assert broken_links(page) == ["page.md:6: missing.md", "page.md:6: gone.png"]
