"""Jinja2 prompt rendering shared by task kinds: strict (a missing variable is an error), no autoescape
(prompts are plain text for a model, never HTML), trailing newlines kept."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta

from evalkit.errors import TaskSpecError

__all__ = ["render", "template_variables"]

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


def template_variables(source: str) -> set[str]:
    """Check a template when its task file loads: the variables it reads from outside (loop variables and
    jinja2's globals excluded). A syntax error raises ValueError naming the template line, so that pydantic
    reports it with the YAML file, line and field before any model loads.

    Examples:
        >>> sorted(template_variables("{{ question }} {% for c in choices %}{{ c }}{% endfor %}"))
        ['choices', 'question']
    """
    try:
        parsed = _ENV.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"jinja2 syntax error on template line {exc.lineno}: {exc.message}; "
                         f"fix the template text") from None
    return set(meta.find_undeclared_variables(parsed)) - set(_ENV.globals)
