"""Secrets out of everything evalkit writes: URLs with credentials, and key-like arguments.

A key reaches evalkit in three ways: an environment variable (never written anywhere), the userinfo of a URL
(`https://user:KEY@host/v1`) or a query parameter (`?api_key=KEY`). `redact_url` removes the last two from a
URL; `redact_text` does it to every URL inside a message; `redact_args` hides the values of key-like
`--model-args` / `--judge-args` names (`api_key`, `token`, ...) and redacts URL values.

Examples:
    >>> redact_url("https://user:sk-123@api.example.com/v1?api_key=sk-123&x=1")
    'https://***@api.example.com/v1?api_key=***&x=1'
    >>> redact_text("POST http://u:p@127.0.0.1:8000/v1/completions failed")
    'POST http://***@127.0.0.1:8000/v1/completions failed'
    >>> redact_args({"base_url": "http://k@h/v1", "api_key_env": "MY_KEY", "concurrency": "4"})
    {'base_url': 'http://***@h/v1', 'api_key_env': '***', 'concurrency': '4'}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["SECRET_HINTS", "redact_args", "redact_text", "redact_url"]

MASK = "***"
SECRET_HINTS = ("key", "token", "secret", "password", "passwd", "auth", "credential", "signature", "sig")
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(hint in lowered for hint in SECRET_HINTS)


def redact_url(url: str) -> str:
    """`url` without credentials: userinfo becomes `***@`, secret-looking query values become `***`.

    A string that is not a URL with a scheme and host is returned unchanged.

    Examples:
        >>> redact_url("http://127.0.0.1:8000/v1")
        'http://127.0.0.1:8000/v1'
        >>> redact_url("https://:KEY@host/v1/"), redact_url("https://h/v1?token=abc&model=m")
        ('https://***@host/v1/', 'https://h/v1?token=***&model=m')
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
    except ValueError:
        return url
    if not parts.scheme or not netloc:
        return url
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_secret_name(k) for k, _ in pairs):
            query = urlencode([(k, MASK if _secret_name(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """`text` with every URL in it passed through `redact_url`."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def redact_args(args: Mapping[str, str]) -> dict[str, str]:
    """Key=value arguments safe to write: key-like names get `***`, other values have their URLs redacted."""
    return {k: (MASK if _secret_name(k) else redact_text(str(v))) for k, v in args.items()}
