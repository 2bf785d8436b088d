"""OpenAI-compatible API backend: `--model openai:<name> --base-url URL` (OpenAI, vLLM, SGLang, llama.cpp,
`evalkit serve`), with the key read from an environment variable.

`generate` uses /chat/completions; `loglikelihood` and `loglikelihood_rolling` use /completions with
`echo` + `logprobs` where the server offers them (`logprobs=auto|true|false` in --model-args); `complete`
continues raw text through /completions. `chat_logprobs` asks /chat/completions for per-token `top_logprobs`
(probability-mode judges), with a forced start of the reply where the server can continue one (`prefill`).
`stats()` returns the request, retry, token and cost counters.

--model-args: base_url, api_key_env (default OPENAI_API_KEY), concurrency (8), timeout (120 s),
max_retries (6), backoff_base (0.5 s), backoff_max (30 s), logprobs (auto), price_in / price_out (USD per
1M tokens), revision (a model version to pin in results and cache keys), score_batch (16: prompts per
scoring request to `evalkit serve`), prefill (auto: on for `evalkit serve` and vLLM servers, which continue a
final assistant message with `continue_final_message`; true/false to say so for other servers), probe (true:
check the server's echoed logprobs before the first scoring call; false trusts them unchecked), probe_cache
(the JSON file of verdicts, default ~/.cache/evalkit/probes.json; "off" asks every run).

Before it scores, the backend checks that the server's echoed prompt logprobs agree with what it reports when
generating (`evalkit probe` runs the same check). A server that is off by exactly one position is re-aligned
(`stats().logprob_alignment == "shifted-corrected"`); any other disagreement refuses scoring with one line.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from evalkit._redact import redact_url
from evalkit.backends._openai_http import ApiClient, ApiStats, HttpStatusError, RetryPolicy
from evalkit.backends._openai_parse import (
    NoPromptLogprobs,
    NoTokenLogprobs,
    chat_body,
    chat_logprobs_body,
    completion_body,
    continuation_result,
    parse_chat_logprobs,
    parse_completion,
    prompt_token_logprobs,
    realign,
    score_body,
)
from evalkit.backends._probe import (
    VerdictStore,
    alignment_probe,
    default_verdict_path,
    refusal,
    server_fingerprint,
)
from evalkit.backends._probe_align import Alignment
from evalkit.backends._protocol import BackendBase, ModelIdentity
from evalkit.errors import BackendError, ConfigError, UnsupportedRequest
from evalkit.types import (
    Completion,
    Conversation,
    GenConfig,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    TokenChoice,
    TokenLogprobs,
)

__all__ = ["LogprobsMisaligned", "OpenAIBackend", "create"]

T = TypeVar("T")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_UNSUPPORTED_STATUS = frozenset({400, 404, 405, 422, 501})


class LogprobsMisaligned(BackendError):
    """The server's echoed prompt logprobs disagree with its own generation: scoring through it is refused."""


def normalize_base_url(url: str) -> str:
    """Strip credentials, query and trailing slashes; a bare host gets "/v1".

    Examples:
        >>> normalize_base_url("http://127.0.0.1:8000")
        'http://127.0.0.1:8000/v1'
        >>> normalize_base_url("https://user:secret@api.example.com/v1/?x=1")
        'https://api.example.com/v1'
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"base_url '{redact_url(url)}' is not an http(s) URL; example: "
                          f"base_url=http://127.0.0.1:8000/v1")
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, host, path, "", ""))


class OpenAIBackend(BackendBase):
    """A model behind an OpenAI-compatible HTTP API.

    Args:
        model: the model name the server knows (sent as `model`).
        base_url: the API root, e.g. "http://127.0.0.1:8000/v1".
        api_key: the bearer token (read from the environment by `create`); never stored in identity or logs.
        concurrency: requests in flight at once.
        policy: retries, backoff and timeout.
        logprobs: "auto" (try, then remember), "true" (the server supports echo+logprobs) or "false".
        price_in, price_out: USD per 1M prompt / completion tokens (for `stats().cost_usd`).
        revision: a model version string to record in the identity.
        score_batch: prompts per scoring request to `evalkit serve` (one per request to other servers).
        prefill: "auto", "true" or "false" (see `supports_prefill`).
        key_env: the environment variable the key came from (named in 401 messages).
        probe: check the echoed logprobs before the first scoring call (False: trust them, recorded as
            logprob_alignment "unchecked").
        probe_cache: the verdict file (None: `default_verdict_path()`; "off": no file).
    """

    can_complete = can_chat_logprobs = True

    def __init__(self, model: str, *, base_url: str = DEFAULT_BASE_URL, api_key: str | None = None,
                 concurrency: int = 8, policy: RetryPolicy | None = None, logprobs: str = "auto",
                 price_in: float | None = None, price_out: float | None = None, revision: str = "",
                 score_batch: int = 16, prefill: str = "auto", key_env: str = "OPENAI_API_KEY",
                 probe: bool = True, probe_cache: str | Path | None = None) -> None:
        if logprobs not in ("auto", "true", "false"):
            raise ConfigError(f"logprobs={logprobs}: use logprobs=auto, logprobs=true or logprobs=false")
        if prefill not in ("auto", "true", "false"):
            raise ConfigError(f"prefill={prefill}: use prefill=auto, prefill=true or prefill=false")
        self._prefill: bool | None = {"auto": None, "true": True, "false": False}[prefill]
        self.model = model
        self.base_url = normalize_base_url(base_url)
        self._client = ApiClient(self.base_url, api_key, concurrency=concurrency, policy=policy,
                                 price_in=price_in, price_out=price_out, key_env=key_env)
        self._logprobs_mode = logprobs
        self._logprobs_ok: bool | None = {"auto": None, "true": True, "false": False}[logprobs]
        self._owner: str | None = None
        self._models: list[dict[str, Any]] | None = None
        self._models_fetched = False
        self._probe_lock = threading.Lock()
        self._probe = probe
        self._verdicts = None if str(probe_cache).lower() == "off" else VerdictStore(probe_cache or
                                                                                     default_verdict_path())
        self._trust_lock = threading.Lock()
        self._alignment: str | None = None
        self._refused: str | None = None
        self._shift = 0
        self._revision = revision
        self._score_batch = max(1, score_batch)

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r})"

    @property
    def identity(self) -> ModelIdentity:
        """`openai|<model>|<revision>|base_url=...` (no key, ever)."""
        return ModelIdentity(backend="openai", model=self.model, revision=self._revision,
                             details={"base_url": self.base_url})

    @property
    def concurrency(self) -> int:
        """Requests in flight at once (the cache wrapper sizes its chunks from it)."""
        return self._client.concurrency

    @property
    def client(self) -> ApiClient:
        """The HTTP client (counted requests and retries; `evalkit probe` sends its checks through it)."""
        return self._client

    def max_connections(self) -> int:
        """Its `concurrency` (the response cache sizes its chunks from it)."""
        return self.concurrency

    def stats(self) -> ApiStats:
        """Requests, retries (by reason), failures, prompt/completion tokens, cost so far, and the verdict on
        the server's echoed logprobs (`logprob_alignment`, None until something was scored)."""
        return replace(self._client.stats(), logprob_alignment=self._alignment)

    # --- generation --------------------------------------------------------------------------------
    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        """One chat completion request per conversation (with `n` choices)."""
        bodies = [chat_body(self.model, conv, config) for conv in conversations]
        try:
            return self._client.run_all("POST", "/chat/completions", bodies,
                                        lambda data: parse_completion(data, config.n, chat=True))
        except HttpStatusError as exc:
            raise self._explained(exc) from None

    def complete(self, prompts: Sequence[str], config: GenConfig) -> list[Completion]:
        """Continue raw prompt text through /completions (no chat template)."""
        bodies = [completion_body(self.model, p, config) for p in prompts]
        try:
            return self._client.run_all("POST", "/completions", bodies,
                                        lambda data: parse_completion(data, config.n, chat=False))
        except HttpStatusError as exc:
            raise self._explained(exc) from None

    @property
    def supports_prefill(self) -> bool:
        """Whether the server continues a final assistant message (`evalkit serve`, vLLM; or prefill=true)."""
        if self._prefill is None:
            self._prefill = self._server_owner() in ("evalkit", "vllm")
        return self._prefill

    def chat_logprobs(self, conversations: Sequence[Conversation], config: GenConfig, top_logprobs: int,
                      prefills: Sequence[str | None] | None = None) -> list[tuple[TokenChoice, ...]]:
        """One chat completion per conversation with each generated token's logprob and `top_logprobs`
        alternatives; `prefills[i]` (if given) is the forced start of reply i (needs `supports_prefill`)."""
        starts = list(prefills) if prefills is not None else [None] * len(conversations)
        if any(p is not None for p in starts) and not self.supports_prefill:
            raise UnsupportedRequest(f"openai:{self.model} at {self.base_url} cannot continue a forced start of "
                                     "the reply; read the verdict from the generated tokens instead, or set "
                                     "prefill=true if the server takes continue_final_message")
        bodies = [chat_logprobs_body(self.model, conv, replace(config, n=1), top_logprobs, start)
                  for conv, start in zip(conversations, starts)]
        try:
            return self._client.run_all("POST", "/chat/completions", bodies, parse_chat_logprobs)
        except NoTokenLogprobs as exc:
            raise UnsupportedRequest(f"openai:{self.model} at {self.base_url} returns no token logprobs ({exc}); "
                                     "judge in the generative mode (--judge-mode generate) instead") from None
        except HttpStatusError as exc:
            self._raise_if_unknown_model(exc)
            if exc.status in _UNSUPPORTED_STATUS:
                raise UnsupportedRequest(f"openai:{self.model} at {self.base_url} refused logprobs/top_logprobs "
                                         f"({exc}); judge in the generative mode (--judge-mode generate) "
                                         "instead") from None
            raise

    # --- scoring -----------------------------------------------------------------------------------
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        """Score continuations from echoed prompt logprobs; UnsupportedRequest when the server has none.

        `evalkit serve` gets up to `score_batch` prompts per request with their exact context lengths (so
        the wrapped backend scores them as one batch); other servers get one prompt per request.
        """
        if not requests:
            return []
        self._require_logprobs()
        self._ensure_trusted()
        evalkit = self._is_evalkit_server()
        size = self._score_batch if evalkit else 1
        groups = []
        for start in range(0, len(requests), size):
            part = requests[start:start + size]
            prompts = [r.context + r.continuation for r in part]
            body = score_body(self.model, prompts[0] if size == 1 else prompts, max_tokens=0 if evalkit else 1,
                              extra={"evalkit_context_chars": [len(r.context) for r in part]} if evalkit else None)
            groups.append((body, [partial(continuation_result, context_len=len(r.context), prompt_len=len(p))
                                  for r, p in zip(part, prompts)]))
        return self._score(groups)

    def loglikelihood_rolling(self, texts: Sequence[str], *, stride: int | None = None) -> list[TokenLogprobs]:
        """Per-token logprobs of whole texts (the server's own windowing; the first token has no logprob
        on most servers and is left out)."""
        if not texts:
            return []
        self._require_logprobs()
        self._ensure_trusted()
        evalkit = self._is_evalkit_server()
        if stride is not None and not evalkit:
            warnings.warn(f"{self.base_url}: stride={stride} cannot be sent to this server; it windows texts "
                          f"itself", RuntimeWarning, stacklevel=2)
        extra = {"evalkit_rolling": True, **({"evalkit_stride": stride} if stride is not None else {})}
        groups = [(score_body(self.model, t, max_tokens=0 if evalkit else 1, extra=extra if evalkit else None),
                   [partial(prompt_token_logprobs, prompt_len=len(t))]) for t in texts]
        return self._score(groups)

    def _score(self, groups: Sequence[tuple[dict[str, Any], Sequence[Callable[[dict[str, Any]], T]]]]) -> list[T]:
        """Post scoring requests; parse the replies' choices (one per prompt) inside the retry loop."""
        auto = self._logprobs_ok is None
        shift = self._shift

        def wrap(parsers: Sequence[Callable[[dict[str, Any]], T]]) -> Callable[[Any], list[T]]:
            def parse_reply(data: Any) -> list[T]:
                choices = sorted(data["choices"], key=lambda c: int(c.get("index", 0)))
                if len(choices) != len(parsers) or not all(isinstance(c, dict) for c in choices):
                    raise ValueError(f"expected {len(parsers)} choices, got {len(choices)}")
                try:
                    return [parse(realign(choice, shift)) for parse, choice in zip(parsers, choices)]
                except NoPromptLogprobs as exc:
                    if auto:
                        raise  # not retried: this server cannot score
                    raise ValueError(str(exc)) from None  # configured logprobs=true: a malformed reply
            return parse_reply

        try:
            replies = self._client.run_each("POST", "/completions", [(body, wrap(ps)) for body, ps in groups])
        except NoPromptLogprobs as exc:
            self._logprobs_ok = False
            raise UnsupportedRequest(self._unsupported(f"its /completions replies carry no echoed prompt "
                                                       f"logprobs: {exc}")) from None
        except HttpStatusError as exc:
            self._raise_if_unknown_model(exc)
            if auto and exc.status in _UNSUPPORTED_STATUS:
                self._logprobs_ok = False
                raise UnsupportedRequest(self._unsupported(f"it refused echo+logprobs: {exc}")) from None
            raise
        self._logprobs_ok = True
        return [result for reply in replies for result in reply]

    def _require_logprobs(self) -> None:
        if self._logprobs_ok is False:
            why = "logprobs=false is set" if self._logprobs_mode == "false" else "it showed no prompt logprobs"
            raise UnsupportedRequest(self._unsupported(why))

    def _unsupported(self, why: str) -> str:
        return (f"openai:{self.model} at {self.base_url} cannot score text ({why}): loglikelihood needs "
                f"/v1/completions with echo+logprobs; use generative multiple choice (generate + answer "
                f"extraction) instead, or a server that returns prompt logprobs (vLLM, evalkit serve)")

    def _is_evalkit_server(self) -> bool:
        """Whether the server is `evalkit serve` (it then takes exact context/continuation splits)."""
        return self._server_owner() == "evalkit"

    def _server_owner(self) -> str:
        """`owned_by` of this model in the server's /v1/models ("" when unknown or unreachable)."""
        if self._owner is None:
            self._owner = str((self.model_entry() or {}).get("owned_by") or "")
        return self._owner

    def server_models(self) -> list[dict[str, Any]] | None:
        """The server's /v1/models entries (asked once; None when it does not answer)."""
        with self._probe_lock:
            if not self._models_fetched:
                def entries(data: Any) -> list[dict[str, Any]]:
                    return [m for m in data.get("data", []) if isinstance(m, dict)]
                try:
                    self._models = self._client.run_all("GET", "/models", [None], entries)[0]
                except Exception:  # noqa: BLE001 - any failure means "a plain OpenAI-compatible server"
                    self._models = None
                self._models_fetched = True
            return self._models

    def model_entry(self) -> dict[str, Any] | None:
        """This model's /v1/models entry, if the server lists it."""
        return next((m for m in self.server_models() or [] if m.get("id") == self.model), None)

    # --- trust -------------------------------------------------------------------------------------
    def _raise_if_unknown_model(self, exc: HttpStatusError) -> None:
        explained = self._explained(exc)
        if explained is not exc:
            raise explained from None

    def _explained(self, exc: HttpStatusError) -> HttpStatusError:
        """A 404 for a model the server does not list becomes an error that names the served models."""
        if exc.status != 404:
            return exc
        try:
            self._require_listed_model()
        except HttpStatusError as explained:
            return HttpStatusError(f"HTTP 404: {explained}", 404)
        return exc

    def check_alignment(self) -> Alignment:
        """The verdict on this server's echoed prompt logprobs: from the verdict file, else asked (and kept)."""
        key = VerdictStore.key(self.base_url, self.model, server_fingerprint(self.model_entry()))
        cached = self._verdicts.get(key) if self._verdicts is not None else None
        if cached is not None:
            return cached
        verdict = alignment_probe(self._client, self.model).alignment
        if self._verdicts is not None and verdict.verdict != "inconclusive":
            self._verdicts.put(key, verdict)
        return verdict

    def _ensure_trusted(self) -> None:
        """Check the server once before scoring: re-align a one-position shift, refuse any other defect."""
        with self._trust_lock:
            if self._refused is not None:
                raise LogprobsMisaligned(self._refused)
            if self._alignment is not None:
                return
            if not self._probe:
                self._alignment = "unchecked"
                return
            if self._is_evalkit_server():  # exact context/continuation splits, not the echo checked here
                self._alignment = "exact (evalkit serve)"
                return
            verdict = self.check_alignment()
            if not verdict.trusted and (verdict.verdict != "no-echo" or "HTTP 404" in verdict.detail):
                self._require_listed_model()  # a failed check and an unlisted model: most likely a typo
            self._accept(verdict)

    def _require_listed_model(self) -> None:
        names = [str(m.get("id")) for m in self.server_models() or []]
        if names and self.model not in names:
            raise HttpStatusError(f"model '{self.model}' is not served at {self.base_url} (it serves: "
                                  f"{', '.join(names[:10])}): fix the name in --model openai:NAME", 404)

    def _accept(self, verdict: Alignment) -> None:
        where = f"openai:{self.model} at {self.base_url}"
        if verdict.verdict == "no-echo":
            if self._logprobs_ok is None:
                self._logprobs_ok = False
                raise UnsupportedRequest(self._unsupported(verdict.detail))
            self._refused = f"{where}: {verdict.detail}, but logprobs=true is set; set logprobs=false"
        elif verdict.verdict == "aligned":
            self._alignment = "aligned"
            return
        elif verdict.verdict == "shifted" and abs(verdict.shift) == 1:
            self._shift, self._alignment = verdict.shift, "shifted-corrected"
            warnings.warn(f"{where}: echoed prompt logprobs are {verdict.direction()}; evalkit re-aligns them "
                          f"(backend_stats.logprob_alignment=shifted-corrected)", RuntimeWarning, stacklevel=3)
            return
        else:
            self._refused = refusal(verdict, where)
        raise LogprobsMisaligned(self._refused)


def _float(args: dict[str, str], key: str) -> float | None:
    if key not in args or args[key] == "":
        return None
    try:
        return float(args[key])
    except ValueError:
        raise ConfigError(f"--model-args {key}={args[key]} is not a number") from None


def create(model: str, args: dict[str, str]) -> OpenAIBackend:
    """Factory for `openai:<model>`; the CLI passes --base-url as `base_url`, --concurrency as `concurrency`."""
    known = {"base_url", "api_key_env", "concurrency", "timeout", "max_retries", "backoff_base", "backoff_max",
             "max_retry_after", "logprobs", "price_in", "price_out", "revision", "score_batch", "prefill", "probe",
             "probe_cache"}
    if "api_key" in args:
        raise ConfigError("never pass the API key in --model-args; put it in an environment variable and name "
                          "it with api_key_env=VAR (default OPENAI_API_KEY)")
    unknown = sorted(set(args) - known)
    if unknown:
        raise ConfigError(f"openai backend: unknown --model-args {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(known))}")
    env_name = args.get("api_key_env", "OPENAI_API_KEY")
    defaults = RetryPolicy()
    policy = RetryPolicy(
        max_retries=int(_float(args, "max_retries") or defaults.max_retries),
        backoff_base=_float(args, "backoff_base") or defaults.backoff_base,
        backoff_max=_float(args, "backoff_max") or defaults.backoff_max,
        max_retry_after=_float(args, "max_retry_after") or defaults.max_retry_after,
        timeout=_float(args, "timeout") or defaults.timeout)
    return OpenAIBackend(model, base_url=args.get("base_url") or DEFAULT_BASE_URL,
                         api_key=os.environ.get(env_name) or None,
                         concurrency=int(_float(args, "concurrency") or 8), policy=policy,
                         logprobs=args.get("logprobs", "auto").lower(), price_in=_float(args, "price_in"),
                         price_out=_float(args, "price_out"), revision=args.get("revision", ""),
                         score_batch=int(_float(args, "score_batch") or 16),
                         prefill=args.get("prefill", "auto").lower(), key_env=env_name,
                         probe=_flag(args, "probe", True), probe_cache=args.get("probe_cache") or None)


def _flag(args: dict[str, str], key: str, default: bool) -> bool:
    value = args.get(key, "").strip().lower()
    if not value:
        return default
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"--model-args {key}={args[key]}: use {key}=true or {key}=false")
    return value in ("true", "1", "yes")
