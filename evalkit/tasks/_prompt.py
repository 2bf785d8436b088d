"""Jinja2 prompt rendering shared by task kinds: strict (a missing variable is an error), no autoescape
(prompts are plain text for a model, never HTML), trailing newlines kept."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jinja2

from evalkit.errors import TaskSpecError

__all__ = ["render"]

_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


@lru_cache(maxsize=512)
def _template(source: str) -> jinja2.Template:
    try:
        return _ENV.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TaskSpecError(f"prompt template line {exc.lineno}: {exc.message}; fix the template text") from None


def render(source: str, variables: dict[str, Any], *, where: str = "prompt") -> str:
    """Render a template; an undefined variable names itself and the available ones."""
    try:
        return _template(source).render(**variables)
    except jinja2.UndefinedError as exc:
        known = ", ".join(sorted(variables))
        raise TaskSpecError(f"{where}: {exc.message}; available variables: {known}") from None
