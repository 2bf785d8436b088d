"""`evalkit probe --model openai:M --base-url URL`: imports only typer and the standard library at module level
(the CLI loads it eagerly)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

__all__ = ["register", "run_probe"]


def run_probe(backend: Any) -> list[Any]:
    """Every check of `evalkit probe` against an `OpenAIBackend`, as report rows (`Check`)."""
    from evalkit.backends._probe import (
        alignment_check,
        alignment_probe,
        context_check,
        declared_context,
        endpoint_checks,
        offsets_check,
    )

    models = backend.server_models()
    where = f"openai:{backend.model} at {backend.base_url}"
    sample = alignment_probe(backend.client, backend.model)
    rows = endpoint_checks(backend.client, backend.model, models, sample)
    rows.append(alignment_check(sample.alignment, where))
    rows.append(offsets_check(sample))
    rows.append(context_check(backend.client, backend.model, declared_context(backend.model_entry())))
    return rows


def register(app: typer.Typer) -> None:
    """Add the `probe` command to the evalkit CLI."""

    @app.command("probe")
    def probe(
        model: Annotated[str, typer.Option("--model", "-m", help="openai:<model name the server knows>")],
        base_url: Annotated[str | None, typer.Option(help="The server's API root, e.g. http://127.0.0.1:8000/v1")] = None,
        model_args: Annotated[str | None, typer.Option(help="Backend options key=value,... (api_key_env, timeout, ...)")] = None,
    ) -> None:
        """Check an OpenAI-compatible server: echoed logprobs agree with generation, token offsets cover the
        text, which endpoints answer (with logprobs?), and the declared context length. Exit 0 when its
        numbers can be trusted, 2 with one line when not."""
        from evalkit._table import print_table
        from evalkit.backends._openai import OpenAIBackend
        from evalkit.backends._registry import load_backend, parse_kv
        from evalkit.errors import BackendError, ConfigError

        args = parse_kv(model_args)
        if base_url:
            args.setdefault("base_url", base_url)
        if not model.startswith("openai:"):
            raise ConfigError(f"--model {model}: evalkit probe checks OpenAI-compatible servers; use "
                              f"--model openai:NAME --base-url URL")
        backend = load_backend(model, args)
        if not isinstance(backend, OpenAIBackend):
            raise ConfigError(f"--model {model} did not make an OpenAI-compatible backend")
        rows = run_probe(backend)
        print(f"evalkit probe: openai:{backend.model} at {backend.base_url}")
        print_table(("check", "status", "detail"), [(r.name, r.status, r.detail) for r in rows])
        failed = [r for r in rows if r.status == "fail"]
        if failed:
            raise BackendError(f"probe of openai:{backend.model} at {backend.base_url} failed: "
                               f"{failed[0].name}: {failed[0].detail}")
