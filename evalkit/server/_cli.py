"""`evalkit serve`: imports only typer and the standard library at module level (the CLI loads it eagerly)."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the `serve` command to the evalkit CLI."""

    @app.command("serve")
    def serve(
        model: Annotated[str, typer.Option("--model", "-m", help="Model name (evalkit models) or hf:/vllm:/openai:/fake: spec")] = "smollm2",
        port: Annotated[int, typer.Option(help="TCP port")] = 8000,
        host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 exposes it to the network)")] = "127.0.0.1",
        model_args: Annotated[str | None, typer.Option(help="Backend options key=value,...")] = None,
        served_name: Annotated[str | None, typer.Option(help="Model id clients send (default: --model)")] = None,
        cache: Annotated[str | None, typer.Option(help="Response cache file (SQLite); off by default")] = None,
        log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
        batch_window_ms: Annotated[float, typer.Option(min=0, help="How long a request waits for others to join its batch")] = 5.0,
        max_batch: Annotated[int, typer.Option(min=1, help="Most requests (prompts) generated or scored as one batch")] = 64,
        verbose: Annotated[bool, typer.Option("--verbose", help="Show other libraries' output (progress bars, warnings)")] = False,
    ) -> None:
        """Serve a model over an OpenAI-compatible API: /v1/models, /v1/chat/completions, /v1/completions."""
        from evalkit.backends._registry import load_backend, parse_kv
        from evalkit.errors import MissingDependency

        try:
            import fastapi  # noqa: F401
            import uvicorn  # noqa: F401
        except ImportError as exc:
            raise MissingDependency("evalkit serve", "api", exc.name or "fastapi") from None
        from evalkit._quiet import quiet_libraries
        from evalkit.server._app import create_app
        from evalkit.server._run import serve_forever

        with quiet_libraries(None, verbose):  # transformers' loading bars and FutureWarnings stay out of the log
            backend = load_backend(model, parse_kv(model_args))
            if cache:
                from evalkit.store._cache import CachedBackend

                backend = CachedBackend(backend, cache)
            name = served_name or model
            typer.echo(f"evalkit serve: {name} ({backend.identity.cache_key()}) on http://{host}:{port}/v1",
                       err=True)
            app = create_app(backend, name, batch_window_ms=batch_window_ms, max_batch=max_batch)
            serve_forever(app, host=host, port=port, log_level=log_level)
