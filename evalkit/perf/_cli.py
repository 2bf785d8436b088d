"""`evalkit perf`: imports only typer and the standard library at module level (the CLI loads it eagerly)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


def _levels(text: str) -> list[int]:
    from evalkit.errors import ConfigError

    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        raise ConfigError(f"--concurrency {text!r}: give positive integers separated by commas, e.g. 1,2,4,8")
    return levels


def register(app: typer.Typer) -> None:
    """Add the `perf` command to the evalkit CLI."""

    @app.command("perf")
    def perf(
        base_url: Annotated[str, typer.Option(help="OpenAI-compatible base URL to load, e.g. http://127.0.0.1:8000/v1")],
        concurrency: Annotated[str, typer.Option(help="Concurrency levels, comma separated")] = "1,2,4,8",
        requests: Annotated[int, typer.Option(min=1, help="Requests per concurrency level")] = 32,
        prompt: Annotated[str | None, typer.Option(help="The prompt every request sends")] = None,
        dataset: Annotated[Path | None, typer.Option(help="Prompts: .jsonl (prompt/question/turns/messages) or text lines")] = None,
        model: Annotated[str | None, typer.Option(help="Model id to request (default: the first at /models)")] = None,
        max_tokens: Annotated[int, typer.Option(min=1, help="max_tokens of each request")] = 128,
        temperature: Annotated[float, typer.Option(help="Sampling temperature (0 = greedy)")] = 0.0,
        endpoint: Annotated[str, typer.Option(help="chat (/chat/completions) or completions (/completions)")] = "chat",
        output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the JSON report here")] = None,
        timeout: Annotated[float, typer.Option(help="Seconds per request")] = 600.0,
        api_key_env: Annotated[str, typer.Option(help="Environment variable holding the API key")] = "OPENAI_API_KEY",
    ) -> None:
        """Load-test an endpoint: TTFT, TPOT, ITL and latency percentiles, requests/s and tokens/s per level.

        Requests go only to --base-url. Metrics follow evalscope's perf definitions (see evalkit.perf).
        """
        from evalkit.errors import ConfigError
        from evalkit.perf._load import PerfSettings
        from evalkit.perf._sweep import load_prompts, resolve_model, run_sweep

        if endpoint not in ("chat", "completions"):
            raise ConfigError(f"--endpoint {endpoint}: use chat or completions")
        levels = _levels(concurrency)
        prompts, source = load_prompts(prompt, dataset)
        api_key = os.environ.get(api_key_env) or None
        settings = PerfSettings(base_url, resolve_model(base_url, model, api_key), prompts, max_tokens, temperature,
                                endpoint, timeout, api_key)
        report = run_sweep(settings, levels, requests, source=source)
        if output is not None:
            import json

            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
            typer.echo(f"evalkit perf: wrote {output}", err=True)
