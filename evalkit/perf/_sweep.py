"""The concurrency sweep of `evalkit perf`: prompt sources, the live table, and the JSON report.

JSON shape (`--output perf.json`, `schema: "evalkit.perf/1"`)::

    {"schema": "evalkit.perf/1", "created": "<UTC ISO time>", "base_url": str, "model": str,
     "settings": {"requests": int, "max_tokens": int, "temperature": float, "endpoint": "chat"|"completions",
                  "prompts": int, "source": str},
     "levels": [{"concurrency": int, "requests": int, "succeeded": int, "failed": int,
                 "errors": {message: count}, "duration_s": float, "requests_per_s": float,
                 "output_tokens_per_s": float, "total_tokens_per_s": float,
                 "input_tokens_mean": float|null, "output_tokens_mean": float|null,
                 "latency_s": S, "ttft_ms": S, "tpot_ms": S, "itl_ms": S}, ...]}

where every S is `{"mean", "p50", "p90", "p99"}` (null without data). Definitions: `evalkit.perf._load`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError, DataError
from evalkit.perf._load import PerfSettings, RequestRecord, run_level, summarize

__all__ = ["load_prompts", "resolve_model", "run_sweep"]

_DEFAULT_PROMPT = "Write a short paragraph about the history of the bicycle."
_FIELDS = ("prompt", "question", "instruction", "text", "content")


def load_prompts(prompt: str | None, dataset: Path | None) -> tuple[tuple[str, ...], str]:
    """The prompts to cycle through, and a label of their source.

    A dataset is a `.jsonl` file (each line's `prompt`/`question`/`instruction`/`text`/`content`, or
    MT-Bench's first `turns` entry, or the last user message of `messages`) or any other text file (one prompt
    per non-empty line).
    """
    if prompt is not None and dataset is not None:
        raise ConfigError("evalkit perf: give --prompt or --dataset, not both")
    if dataset is None:
        return (prompt or _DEFAULT_PROMPT,), "prompt"
    if not dataset.is_file():
        raise DataError(f"evalkit perf: --dataset {dataset} does not exist; pass a .jsonl or .txt file")
    lines = dataset.read_text(encoding="utf-8").splitlines()
    if dataset.suffix != ".jsonl":
        prompts = [line.strip() for line in lines if line.strip()]
    else:
        prompts = [_jsonl_prompt(line, dataset, row) for row, line in enumerate(lines, 1) if line.strip()]
    if not prompts:
        raise DataError(f"evalkit perf: {dataset} holds no prompts; add one per line")
    return tuple(prompts), str(dataset)


def _jsonl_prompt(line: str, path: Path, row: int) -> str:
    try:
        item = json.loads(line)
    except json.JSONDecodeError:
        raise DataError(f"{path}:{row}: not a JSON object; write one JSON object per line") from None
    if isinstance(item, dict):
        for key in _FIELDS:
            if isinstance(item.get(key), str):
                return str(item[key])
        if isinstance(item.get("turns"), list) and item["turns"]:
            return str(item["turns"][0])
        users = [m.get("content") for m in item.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
        if users and isinstance(users[-1], str):
            return users[-1]
    raise DataError(f"{path}:{row}: no prompt field; give one of {', '.join(_FIELDS)}, 'turns' or 'messages'")


def resolve_model(base_url: str, model: str | None, api_key: str | None = None) -> str:
    """`model`, or the first id the server lists at /models."""
    if model:
        return model
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        listed = httpx.get(base_url.rstrip("/") + "/models", headers=headers, timeout=30).json()
        return str(listed["data"][0]["id"])
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
        raise ConfigError(f"evalkit perf: {base_url}/models did not list a model; pass --model NAME") from None


def run_sweep(settings: PerfSettings, levels: Sequence[int], requests: int, *, source: str = "prompt",
              live: bool = True, on_level: Callable[[int, list[RequestRecord]], None] | None = None
              ) -> dict[str, Any]:
    """Run every concurrency level in turn; the JSON report (with a rich live table on the terminal)."""
    results: list[dict[str, Any]] = []
    table = _LiveTable(levels, requests) if live else None
    if table is not None:
        table.start()
    try:
        for level in levels:
            done: list[RequestRecord] = []

            def seen(record: RequestRecord, level: int = level, done: list[RequestRecord] = done) -> None:
                done.append(record)
                if table is not None:
                    table.update(level, summarize(level, done))

            records = run_level(settings, level, requests, seen)
            results.append(summarize(level, records))
            if table is not None:
                table.update(level, results[-1])
            if on_level is not None:
                on_level(level, records)
    finally:
        if table is not None:
            table.stop()
    return {"schema": "evalkit.perf/1", "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "base_url": settings.base_url, "model": settings.model,
            "settings": {"requests": requests, "max_tokens": settings.max_tokens, "temperature": settings.temperature,
                         "endpoint": settings.endpoint, "prompts": len(settings.prompts), "source": source},
            "levels": results}


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


class _LiveTable:
    """A rich table redrawn as requests finish: one row per concurrency level."""

    def __init__(self, levels: Sequence[int], requests: int) -> None:
        from rich.console import Console
        from rich.live import Live

        self.levels, self.requests = list(levels), requests
        self.rows: dict[int, dict[str, Any]] = {}
        self.live = Live(self._render(), console=Console(stderr=True), refresh_per_second=4)

    def start(self) -> None:
        self.live.start()

    def stop(self) -> None:
        self.live.update(self._render())
        self.live.stop()

    def update(self, level: int, summary: dict[str, Any]) -> None:
        self.rows[level] = summary
        self.live.update(self._render())

    def _render(self) -> Any:
        from rich.table import Table

        table = Table(title="evalkit perf")
        for header in ("concurrency", "done", "errors", "req/s", "out tok/s", "TTFT p50 ms", "TPOT p50 ms",
                       "ITL p50 ms", "latency p50 s", "latency p99 s"):
            table.add_column(header, justify="right")
        for level in self.levels:
            row = self.rows.get(level)
            if row is None:
                table.add_row(str(level), f"0/{self.requests}", *["-"] * 8)
                continue
            table.add_row(str(level), f"{row['requests']}/{self.requests}", str(row["failed"]),
                          _fmt(row["requests_per_s"], 2), _fmt(row["output_tokens_per_s"]),
                          _fmt(row["ttft_ms"]["p50"]), _fmt(row["tpot_ms"]["p50"]), _fmt(row["itl_ms"]["p50"]),
                          _fmt(row["latency_s"]["p50"], 2), _fmt(row["latency_s"]["p99"], 2))
        return table
