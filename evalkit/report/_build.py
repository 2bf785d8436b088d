"""Build the static site: index.html, tasks/<task>.html, runs/<run>.html, samples/<run>/<task>.html.

Templates and assets come from the top-level reports/ folder (bundled in the wheel as evalkit/_bundled/
reports). CSS and JS are inlined into every page and allowed by hash in a strict Content-Security-Policy,
so the site has no external requests and opens from file://. The same inputs give byte-identical files.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from markupsafe import Markup

from evalkit.errors import DataError
from evalkit.report._board import (
    Column,
    Leaderboard,
    Row,
    build_leaderboard,
    merge_rows,
    overview_columns,
    task_columns,
)
from evalkit.report._model import FAMILY_LABELS, Run, format_value, is_fraction_metric, lower_is_better, slug
from evalkit.report._pages import run_context, task_context
from evalkit.report._perf import PERF_PAGE, PerfReport, perf_context
from evalkit.report._samples import CHUNK_SIZE, chunk_script, iter_records

__all__ = ["SiteSummary", "build_site", "reports_dir"]


def reports_dir() -> Path:
    """The templates folder: bundled in the wheel, or the repository's top-level reports/."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_bundled" / "reports", here.parent / "reports"):
        if (candidate / "base.html.j2").is_file():
            return candidate
    raise DataError(f"report templates not found under {here / '_bundled'} or {here.parent / 'reports'}; "
                    "reinstall evalkit")


@dataclass(frozen=True)
class SiteSummary:
    """What `build_site` wrote."""

    out: Path
    pages: int
    sample_pages: int
    models: int
    tasks: int


def _hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def json_script(value: Any) -> Markup:
    """JSON safe inside an HTML <script type="application/json"> element (no `<`, `>`, `&` left)."""
    text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _fmt(metric: str, value: float | None) -> str:
    return format_value(metric, value)


def _ci(metric: str, half: float | None) -> str:
    if half is None:
        return ""
    return f"±{100 * half:.1f}" if is_fraction_metric(metric) else f"±{format_value(metric, half)}"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("evalkit")
    except PackageNotFoundError:
        return "dev"


def _env(templates: Path) -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             extensions=["jinja2.ext.do"])
    env.filters.update(fmt=_fmt, ci=_ci, json_script=json_script, slug=slug)
    env.globals.update(families=FAMILY_LABELS, lower_is_better=lower_is_better, nav_tasks=[], nav_perf=False,
                       evalkit_version=_version())
    return env


class _Writer:
    """Renders pages with the shared assets and policy; counts what it wrote."""

    def __init__(self, out: Path, title: str) -> None:
        templates = reports_dir()
        self.out = out
        self.env = _env(templates)
        self.css = (templates / "assets" / "style.css").read_text(encoding="utf-8")
        self.js = (templates / "assets" / "app.js").read_text(encoding="utf-8")
        self.csp = ("default-src 'none'; "
                    f"script-src '{_hash(self.js)}' 'strict-dynamic'; "
                    f"style-src '{_hash(self.css)}'; img-src data:; base-uri 'none'; form-action 'none'")
        self.title = title
        self.pages = 0

    def page(self, template: str, target: str, **context: Any) -> None:
        depth = target.count("/")
        html = self.env.get_template(template).render(
            css=Markup(self.css), js=Markup(self.js), csp=Markup(self.csp), site_title=self.title,
            root="../" * depth, **context)
        path = self.out / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
        self.pages += 1


def _write_samples(writer: _Writer, run: Run, task: str, source: Path) -> dict[str, Any]:
    """Chunk files for one run/task and its browser page; returns counts for the run page."""
    base = f"samples/{run.slug}/{slug(task)}"
    folder = writer.out / base
    folder.mkdir(parents=True, exist_ok=True)
    total = wrong = invalid = chunks = generated = unextractable = 0
    subsets: dict[str, None] = {}
    buffer: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal chunks
        (folder / f"{chunks:04d}.js").write_bytes(chunk_script(chunks, buffer))
        chunks += 1
        buffer.clear()

    for record in iter_records(source):
        total += 1
        wrong += record["wrong"]
        invalid += record["invalid"]
        generated += bool(record["stage"])
        unextractable += record["unextractable"]
        if record["subset"]:
            subsets.setdefault(record["subset"])
        buffer.append(record)
        if len(buffer) == CHUNK_SIZE:
            flush()
    if buffer or chunks == 0:
        flush()
    stats = {"total": total, "wrong": wrong, "invalid": invalid, "generated": generated,
             "unextractable": unextractable}
    config = {"chunks": chunks, "chunk_size": CHUNK_SIZE, "base": slug(task), **stats,
              "subsets": sorted(subsets)}
    writer.page("samples.html.j2", f"{base}.html", run=run, task=task, config=config, stats=stats)
    return {**stats, "href": f"{base}.html"}


def build_site(runs: Sequence[Run], out: Path, *, title: str = "evalkit leaderboard",
               perf: Sequence[PerfReport] = ()) -> SiteSummary:
    """Write the whole site for `runs` into `out` (created if missing; other files there are left alone).

    `perf` reports (`evalkit perf --output` files) add a "Load test" page, perf.html.
    """
    if not runs and not perf:
        raise DataError("no runs to report: pass runs/, a run directory, a results.json, "
                        "--import-lm-eval FILE or --perf FILE")
    seen: dict[str, Run] = {}
    for run in (r for r in runs if r.parent is None):
        if run.slug in seen:
            raise DataError(f"two results share the run id {run.run_id!r} ({seen[run.slug].path} and {run.path}); "
                            "pass each run once")
        seen[run.slug] = run
    writer = _Writer(out, title)
    tasks = sorted({t for run in runs for t in run.tasks})
    writer.env.globals.update(nav_tasks=tasks, nav_perf=bool(perf))
    rows = merge_rows(runs)
    board = build_leaderboard(rows, overview_columns(rows))
    samples: dict[tuple[str, str], dict[str, Any]] = {}
    pages = sorted(seen.values(), key=lambda r: r.run_id)
    for run in pages:
        for task in run.tasks:
            source = run.sample_file(task)
            if source is not None:
                samples[(run.run_id, task)] = _write_samples(writer, run, task, source)
    writer.page("index.html.j2", "index.html", board=board, tasks=tasks, runs=pages)
    for task in tasks:
        task_board = build_leaderboard([r for r in rows if task in r.results], task_columns(rows, task))
        writer.page("task.html.j2", f"tasks/{slug(task)}.html", task=task,
                    board=task_board, **task_context(task_board, task, pages, samples))
    for run in pages:
        writer.page("run.html.j2", f"runs/{run.slug}.html", run=run, **run_context(run, samples))
    if perf:
        writer.page("perf.html.j2", PERF_PAGE, **perf_context(perf))
    return SiteSummary(out=out, pages=writer.pages, sample_pages=len(samples), models=len(rows), tasks=len(tasks))


def leaderboard_for(runs: Sequence[Run], *, groups: bool = True) -> Leaderboard:
    """The overview leaderboard of `runs` (what index.html shows), for the library API and tests."""
    rows: list[Row] = merge_rows(runs)
    columns: list[Column] = overview_columns(rows, groups=groups)
    return build_leaderboard(rows, columns)

