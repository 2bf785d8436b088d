"""`evalkit probe`: is an OpenAI-compatible server's output what evalkit will read it as?

Four checks, each a row of the report:

- echo alignment (`alignment_probe`): the server generates a few tokens greedily with logprobs, then echoes
  the prompt plus those tokens; the echoed logprobs must equal the generated ones (see `_probe_align`). The
  OpenAI backend runs this one itself before its first loglikelihood call and caches the verdict
  (`VerdictStore`, keyed by base URL + model + the server's /v1/models entry);
- text offsets: the echoed tokens' `text_offset` cover the prompt;
- endpoints: /v1/models lists the model, /v1/completions and /v1/chat/completions answer, with logprobs or not;
- context length: a length declared in /v1/models (`max_model_len`, `context_length`, ...) is enforced: a prompt
  just over it is rejected and one just under it is accepted.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from evalkit._redact import redact_url
from evalkit.backends._openai_http import ApiClient, HttpStatusError
from evalkit.backends._openai_parse import score_body
from evalkit.backends._probe_align import (
    Alignment,
    Generated,
    echo_arrays,
    generated_step,
    judge_alignment,
    offsets_problem,
)

__all__ = ["Check", "EchoSample", "VerdictStore", "alignment_check", "alignment_probe", "context_check",
           "declared_context", "default_verdict_path", "endpoint_checks", "offsets_check", "refusal",
           "server_fingerprint"]

PROBE_SEED = "A list of things, in no particular order: apples, rivers,"
REFUSED = frozenset({400, 404, 405, 422, 501})
MAX_TESTED_CONTEXT = 262_144  # longer declared contexts are reported, not sent (megabytes of prompt)
_CONTEXT_KEYS = ("max_model_len", "context_length", "context_window", "max_context_length", "max_seq_len",
                 "n_ctx", "max_position_embeddings")


@dataclass(frozen=True)
class Check:
    """One row of the probe report: `status` is "ok", "warn", "fail" or "info"."""

    name: str
    status: str
    detail: str


@dataclass
class EchoSample:
    """What the alignment probe saw: the verdict, the echoed reply and its text (for the offsets check), and
    whether /v1/completions answered at all and gave generated-token logprobs."""

    alignment: Alignment
    completions: str = "unknown"
    generated_logprobs: bool = False
    echo: dict[str, Any] | None = None
    text: str = ""
    notes: list[str] = field(default_factory=list)


def _first_choice(data: Any) -> dict[str, Any]:
    choice = min(data["choices"], key=lambda c: int(c.get("index", 0)))
    if not isinstance(choice, dict):
        raise TypeError("choice is not an object")
    return choice


def _generate_greedily(client: ApiClient, model: str, steps: int, top: int) -> tuple[str, list[Generated]]:
    """`PROBE_SEED` continued greedily one token per request (each position's own distribution and usage)."""
    text, generated = PROBE_SEED, []
    for _ in range(steps):
        body = {"model": model, "prompt": text, "max_tokens": 1, "temperature": 0.0, "logprobs": top}
        step = client.run_all("POST", "/completions", [body], partial(generated_step, prompt_len=len(text)))[0]
        if step is None:
            break
        generated.append(step)
        text += step.text
    return text, generated


def alignment_probe(client: ApiClient, model: str, *, top: int = 5, steps: int = 10, echo_max_tokens: int = 1,
                    tol_abs: float = 0.05, tol_rel: float = 0.02) -> EchoSample:
    """Generate from `PROBE_SEED` with logprobs, echo seed + generated text, and compare.

    4xx replies that mean "not supported" become verdicts: no /completions at all, or no echo, is "no-echo"
    (the server cannot score; evalkit scores generatively); an echo without generated-token logprobs to
    compare with is "unverifiable". Other HTTP errors (401, ...) propagate.
    """
    generated: list[Generated] = []
    text, refused = PROBE_SEED, ""
    try:
        text, generated = _generate_greedily(client, model, steps, top)
    except HttpStatusError as exc:
        if exc.status not in REFUSED:
            raise
        if exc.status in (404, 405):
            return EchoSample(Alignment("no-echo", detail=f"/completions is missing (HTTP {exc.status})"), "missing")
        refused = f" (HTTP {exc.status})"
    try:
        echo = client.run_all("POST", "/completions", [score_body(model, text, top=top, max_tokens=echo_max_tokens)],
                              _first_choice)[0]
    except HttpStatusError as exc:
        if exc.status not in REFUSED:
            raise
        return EchoSample(Alignment("no-echo", detail=f"echo+logprobs refused (HTTP {exc.status})"), "ok",
                          bool(generated))
    if echo_arrays(echo) is None:
        return EchoSample(Alignment("no-echo", detail="the echoed reply carries no prompt logprobs"), "ok",
                          bool(generated))
    if not generated:
        return EchoSample(Alignment("unverifiable", detail=f"generated tokens carry no logprobs{refused}"), "ok",
                          False, echo, text)
    verdict = judge_alignment(generated, echo, tol_abs=tol_abs, tol_rel=tol_rel)
    return EchoSample(verdict, "ok", True, echo, text)


def server_fingerprint(entry: dict[str, Any] | None) -> str:
    """A short hash of the server's /v1/models entry for the model (its volatile `created` left out)."""
    stable = {k: v for k, v in (entry or {}).items() if k != "created"}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()[:16]


def default_verdict_path() -> Path:
    """$EVALKIT_PROBE_CACHE, else $XDG_CACHE_HOME/evalkit/probes.json (~/.cache/evalkit/probes.json)."""
    if os.environ.get("EVALKIT_PROBE_CACHE"):
        return Path(os.environ["EVALKIT_PROBE_CACHE"])
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "evalkit" / "probes.json"


class VerdictStore:
    """Alignment verdicts in a small JSON file, so that a rerun asks the server once.

    A file that cannot be read or written only costs a new probe (never an error).
    """

    KEEP = 256
    _lock = threading.Lock()

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @staticmethod
    def key(base_url: str, model: str, fingerprint: str) -> str:
        """The entry of one server: its URL (credentials removed), the model name and the fingerprint."""
        return f"{redact_url(base_url)}|{model}|{fingerprint}"

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> Alignment | None:
        """The stored verdict, or None."""
        entry = self._read().get(key)
        try:
            return Alignment.from_dict(entry) if isinstance(entry, dict) else None
        except (ValueError, TypeError, KeyError):
            return None

    def put(self, key: str, verdict: Alignment) -> None:
        """Store a verdict (atomically: a temporary file renamed over the old one)."""
        with self._lock:
            data = self._read()
            data.pop(key, None)
            data[key] = verdict.as_dict()
            data = dict(list(data.items())[-self.KEEP:])  # the newest entries (test servers come and go)
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False, suffix=".tmp",
                                                 encoding="utf-8") as handle:
                    json.dump(data, handle, indent=1)
                os.replace(handle.name, self.path)
            except OSError:
                return


def declared_context(entry: dict[str, Any] | None) -> int | None:
    """The context length a /v1/models entry declares (vLLM `max_model_len`, llama.cpp `meta.n_ctx_train`...)."""
    if not entry:
        return None
    meta = entry.get("meta")
    for source in (entry, meta if isinstance(meta, dict) else {}):
        for key in (*_CONTEXT_KEYS, "n_ctx_train"):
            value = source.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def _prompt_tokens(client: ApiClient, model: str, prompt: str) -> int | None:
    """The server's count of prompt tokens (usage), or None when it reports none."""
    body = {"model": model, "prompt": prompt, "max_tokens": 1, "temperature": 0.0}
    usage = client.run_all("POST", "/completions", [body], lambda data: data.get("usage") or {})[0]
    count = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return int(count) if isinstance(count, int) and count > 0 else None


def _accepted(client: ApiClient, model: str, prompt: str) -> bool:
    body = {"model": model, "prompt": prompt, "max_tokens": 1, "temperature": 0.0}
    try:
        client.run_all("POST", "/completions", [body], lambda data: data["choices"])
    except HttpStatusError as exc:
        if exc.status in (400, 413, 422):
            return False
        raise
    return True


def context_check(client: ApiClient, model: str, declared: int | None, *, unit: str = " hello",
                  margin: int = 16) -> Check:
    """Send prompts of about `declared + margin` and `declared - 4 * margin` tokens: the first must be rejected,
    the second accepted. Token counts are estimated from the server's own usage of two short prompts."""
    if declared is None:
        return Check("context length", "info", "not declared in /v1/models (max_model_len or similar)")
    if declared > MAX_TESTED_CONTEXT:
        return Check("context length", "info", f"declared {declared}; not tested (over {MAX_TESTED_CONTEXT} tokens)")
    short, longer = _prompt_tokens(client, model, unit * 20), _prompt_tokens(client, model, unit * 40)
    if short is None or longer is None or longer <= short:
        return Check("context length", "info", f"declared {declared}; not tested (no token usage reported)")
    rate = (longer - short) / 20
    base = short - 20 * rate

    def reps(tokens: int) -> int:
        return max(1, math.ceil((tokens - base) / rate))

    if not _accepted(client, model, unit * reps(declared - 4 * margin)):
        return Check("context length", "fail", f"declared {declared}, but a prompt of about "
                                               f"{declared - 4 * margin} tokens was rejected")
    if _accepted(client, model, unit * reps(declared + margin)):
        return Check("context length", "warn", f"declared {declared}, but a prompt of about {declared + margin} "
                                               f"tokens was accepted (the server truncates, or declares wrongly)")
    return Check("context length", "ok", f"declared {declared}, enforced (about {declared + margin} tokens "
                                         f"rejected, {declared - 4 * margin} accepted)")


def _chat_check(client: ApiClient, model: str) -> Check:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 2,
                            "temperature": 0.0, "logprobs": True, "top_logprobs": 2}

    def has_logprobs(data: Any) -> bool:
        return bool((_first_choice(data).get("logprobs") or {}).get("content"))

    try:
        with_lp = client.run_all("POST", "/chat/completions", [body], has_logprobs)[0]
    except HttpStatusError as exc:
        if exc.status in (404, 405):
            return Check("chat endpoint", "warn", f"/chat/completions is missing (HTTP {exc.status})")
        if exc.status not in REFUSED:
            raise
        plain = {k: v for k, v in body.items() if k not in ("logprobs", "top_logprobs")}
        client.run_all("POST", "/chat/completions", [plain], _first_choice)
        return Check("chat endpoint", "ok", "answers; refuses logprobs")
    return Check("chat endpoint", "ok", "answers, with logprobs" if with_lp else "answers, without logprobs")


def endpoint_checks(client: ApiClient, model: str, models: Sequence[dict[str, Any]] | None,
                    sample: EchoSample) -> list[Check]:
    """Rows for /v1/models, /v1/completions (generation logprobs, echo) and /v1/chat/completions."""
    rows = []
    if models is None:
        rows.append(Check("models endpoint", "warn", "/v1/models did not answer"))
    else:
        names = [str(m.get("id")) for m in models]
        if model in names:
            rows.append(Check("models endpoint", "ok", f"lists {model}"))
        else:
            rows.append(Check("models endpoint", "fail", f"model '{model}' is not served here; served: "
                                                         f"{', '.join(names[:10]) or 'none'}; fix the model name"))
    completions = {"ok": "ok", "missing": "warn"}.get(sample.completions, "warn")
    detail = {"ok": "answers", "missing": "/completions is missing"}.get(sample.completions, "not tried")
    if sample.completions == "ok":
        detail += ", generated tokens with logprobs" if sample.generated_logprobs else ", no generated logprobs"
        detail += "; echoes prompt logprobs" if sample.alignment.verdict != "no-echo" else "; no prompt echo"
    rows.append(Check("completions endpoint", completions, detail))
    rows.append(_chat_check(client, model))
    return rows


def offsets_check(sample: EchoSample) -> Check:
    """The text offsets row."""
    if sample.echo is None or echo_arrays(sample.echo) is None:
        return Check("text offsets", "info", "no echoed tokens to check")
    problem = offsets_problem(sample.echo, sample.text)
    if problem is None:
        return Check("text offsets", "ok", f"cover the {len(sample.text)}-character prompt")
    return Check("text offsets", "fail", problem)


def refusal(alignment: Alignment, where: str) -> str:
    """The one line that refuses loglikelihood scoring through a server with untrusted echoed logprobs."""
    fix = ("score generatively with --model-args logprobs=false, or fix the server")
    if alignment.verdict == "unverifiable":
        return (f"{where}: its echoed prompt logprobs cannot be checked ({alignment.detail}); {fix}, or pass "
                f"--model-args probe=false to trust them unchecked")
    if alignment.verdict == "inconclusive":
        return (f"{where}: the check of its echoed prompt logprobs was inconclusive ({alignment.detail}); {fix}, "
                f"or pass --model-args probe=false to trust them unchecked")
    what = {"next-distribution": "are read one position late (each token's logprob comes from the next "
                                 "position's distribution, shift +1; not recoverable)",
            "shifted": alignment.direction()}.get(alignment.verdict, "do not match what it reports when "
                                                                       "generating")
    return f"{where}: its echoed prompt logprobs {what} ({alignment.detail}); loglikelihood scores would be wrong; {fix}"


def alignment_check(alignment: Alignment, where: str) -> Check:
    """The echo alignment row of the report."""
    v = alignment.verdict
    if v == "aligned":
        note = f"; {alignment.detail}" if alignment.detail else ""
        return Check("echo alignment", "ok", f"aligned at {alignment.positions} positions (max |difference| "
                                             f"{alignment.max_error:.2g}){note}")
    if v == "no-echo":
        return Check("echo alignment", "info", f"{alignment.detail}: evalkit scores multiple choice generatively")
    if v == "shifted":
        return Check("echo alignment", "fail", f"{alignment.direction()}; evalkit run re-aligns it and records "
                                               f"logprob_alignment=shifted-corrected, other clients read wrong "
                                               f"numbers")
    return Check("echo alignment", "fail", refusal(alignment, where))
