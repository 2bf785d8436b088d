"""An OpenAI-compatible HTTP server over any evalkit backend (FastAPI): /v1/models, /v1/chat/completions,
/v1/completions (text continuation, and echo + logprobs for scoring).

Chat completions also take `logprobs` / `top_logprobs` (each generated token's logprob and alternatives,
OpenAI's format) and vLLM's `continue_final_message` + `add_generation_prompt: false` (continue a forced
start of the assistant's reply), which is what probability-mode judges use over HTTP.

Concurrent requests are batched (`_batching`): on the transformers backend, generation rows join the batch
being decoded between steps (continuous batching); elsewhere, and for scoring, requests that arrive within a
few milliseconds run as one backend call. Each keeps its own stop strings and sampling settings, and a greedy
answer is the same whatever it was batched with. `stream: true` sends server-sent events (`_stream`). Backend
calls (and decoding steps) still run one at a time (a lock), so a backend need not be thread-safe.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from evalkit.backends._adapt import as_base_backend
from evalkit.backends._protocol import Backend
from evalkit.errors import BackendError, EvalkitError, UnsupportedRequest
from evalkit.server._batching import BatchedBackend
from evalkit.server._faults import FaultSchedule, install_faults
from evalkit.server._stream import Chunks, Emit, stream_sse
from evalkit.types import Completion, Conversation, GenConfig, Message, TokenChoice

__all__ = ["ApiError", "create_app"]

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class ApiError(Exception):
    """An error answered as OpenAI's `{"error": {...}}` body with an HTTP status."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str
    temperature: float = 1.0
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = Field(default=None, ge=0)
    stop: str | list[str] | None = None
    n: int = Field(default=1, ge=1, le=128)
    seed: int | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None


class ChatMessageIn(BaseModel):
    """One incoming chat message; content may be a string or a list of text parts."""

    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(_Body):
    """The subset of OpenAI's chat completion request that evalkit serves."""

    messages: list[ChatMessageIn]
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    continue_final_message: bool = False  # vLLM's extension: continue the last (assistant) message
    add_generation_prompt: bool = True


class CompletionRequest(_Body):
    """The subset of OpenAI's (legacy) completion request that evalkit serves, plus evalkit's scoring hints."""

    prompt: str | list[str]
    echo: bool = False
    logprobs: int | None = Field(default=None, ge=0, le=20)
    evalkit_context_chars: int | list[int] | None = None
    evalkit_rolling: bool = False
    evalkit_stride: int | None = Field(default=None, ge=1)


def _config(body: _Body, max_tokens: int | None, default_max: int = 256) -> GenConfig:
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    return GenConfig(temperature=body.temperature, top_k=body.top_k, top_p=body.top_p,
                     max_tokens=default_max if max_tokens is None else max_tokens, stop=stop, n=body.n,
                     seed=body.seed)


def _message(msg: ChatMessageIn) -> Message:
    role = _ROLES.get(msg.role)
    if role is None:
        raise ApiError(400, f"message role '{msg.role}' is not supported (use system, user or assistant)")
    content = msg.content
    if isinstance(content, list):
        content = "".join(str(p.get("text", "")) for p in content if p.get("type", "text") == "text")
    return Message(role, content or "")  # type: ignore[arg-type]


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


class _Service:
    """The backend plus the lock that serialises calls to it."""

    def __init__(self, backend: Backend, model_name: str, *, batch_window_s: float = 0.005,
                 max_batch: int = 64) -> None:
        self.backend = as_base_backend(backend)  # what it can do is asked through its capability flags
        self.model_name = model_name
        self.lock = threading.Lock()
        self.batched = BatchedBackend(self.backend, self.lock, window_s=batch_window_s, max_items=max_batch)

    def check_model(self, model: str) -> None:
        if model != self.model_name:
            raise ApiError(404, f"model '{model}' is not served here; this server serves '{self.model_name}'",
                           "model_not_found")

    def chat(self, req: ChatRequest) -> dict[str, Any] | Iterator[str]:
        """A chat completion reply, or (stream=true) its server-sent events."""
        self.check_model(req.model)
        config = _config(req, req.max_completion_tokens or req.max_tokens)
        conversation = tuple(_message(m) for m in req.messages)
        prompt = self._raw_chat_prompt(req, conversation)
        if req.logprobs:
            if req.stream:
                raise ApiError(400, "stream=true with logprobs is not supported by evalkit serve; send stream=false")
            return self._chat_with_logprobs(req, config, prompt if prompt is not None else
                                            self._render(conversation, add_generation_prompt=True))
        if prompt is not None and not self.backend.can_complete:
            raise ApiError(400, "this backend cannot continue raw text, so continue_final_message and "
                                "add_generation_prompt=false are not available; send a plain chat request")

        def run(emit: Emit | None) -> list[Completion]:
            stream = None if emit is None else (lambda _i, j, text: emit(j, text))
            if prompt is None:
                return [self.batched.generate(conversation, config, stream)]
            return self.batched.complete([prompt], config, stream)

        if req.stream:
            return stream_sse(Chunks(self.model_name, chat=True), config.n, run, include_usage=_usage_wanted(req))
        done = run(None)[0]
        choices = [{"index": i, "message": {"role": "assistant", "content": text},
                    "finish_reason": _finish(done, i), "logprobs": None} for i, text in enumerate(done.texts)]
        return self._chat_reply(choices, done.usage.prompt_tokens, done.usage.completion_tokens)

    def _chat_reply(self, choices: list[dict[str, Any]], prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": self.model_name, "choices": choices, "usage": _usage(prompt_tokens, completion_tokens)}

    def _render(self, conversation: Conversation, *, add_generation_prompt: bool) -> str:
        if not self.backend.can_render_chat:
            raise ApiError(400, "this backend has no chat template to render, so logprobs, "
                                "continue_final_message and add_generation_prompt=false are not available")
        return self.backend.render_chat(conversation, add_generation_prompt=add_generation_prompt)

    def _raw_chat_prompt(self, req: ChatRequest, conversation: Conversation) -> str | None:
        """The rendered prompt when the request shapes it (vLLM's semantics), else None (plain chat)."""
        if req.continue_final_message:
            if req.add_generation_prompt:
                raise ApiError(400, "continue_final_message=true needs add_generation_prompt=false "
                                    "(a reply cannot both continue and start a new assistant turn)")
            if not conversation or conversation[-1].role != "assistant":
                raise ApiError(400, "continue_final_message=true needs the last message to be the assistant's "
                                    "start of the reply")
            return self._render(conversation[:-1], add_generation_prompt=True) + conversation[-1].content
        if not req.add_generation_prompt:
            return self._render(conversation, add_generation_prompt=False)
        return None

    def _chat_with_logprobs(self, req: ChatRequest, config: GenConfig, prompt: str) -> dict[str, Any]:
        if not self.backend.can_complete_logprobs:
            raise ApiError(400, "this backend cannot report logprobs of generated tokens; send logprobs=false")
        top = req.top_logprobs or 0
        with self.lock:
            sequences = self.backend.complete_logprobs([prompt], config, top)[0]
            prompt_tokens = len(self.backend.encode(prompt)) if self.backend.can_tokenize else len(prompt)
        choices = [{"index": i, "message": {"role": "assistant", "content": "".join(t.text for t in tokens)},
                    "finish_reason": "length" if len(tokens) >= config.max_tokens else "stop",
                    "logprobs": {"content": [_token_json(t, top) for t in tokens]}}
                   for i, tokens in enumerate(sequences)]
        return self._chat_reply(choices, prompt_tokens, sum(len(t) for t in sequences))

    def complete(self, req: CompletionRequest) -> dict[str, Any] | Iterator[str]:
        """A text completion reply (generation and/or echoed prompt scores), or its server-sent events."""
        self.check_model(req.model)
        prompts = [req.prompt] if isinstance(req.prompt, str) else list(req.prompt)
        config = _config(req, req.max_tokens, default_max=16)
        hints = req.evalkit_context_chars
        hint_list = [hints] * len(prompts) if isinstance(hints, int) else hints
        if hint_list is not None and len(hint_list) != len(prompts):
            raise ApiError(400, f"evalkit_context_chars has {len(hint_list)} entries for {len(prompts)} prompts")
        if req.stream:
            return self._complete_stream(req, prompts, config)
        if req.logprobs is not None and not req.echo and config.max_tokens > 0:
            return self._complete_with_logprobs(prompts, config, req.logprobs)
        choices: list[dict[str, Any]] = []
        prompt_tokens = completion_tokens = 0
        scores = self._scores(prompts, req, hint_list)
        generated = self._generate(prompts, config) if config.max_tokens > 0 else None
        for i, prompt in enumerate(prompts):
            score = scores[i]
            prompt_tokens += score["num_tokens"] if score else len(prompt)
            texts = generated[i].texts if generated else ("",) * config.n
            for j, text in enumerate(texts):
                choice: dict[str, Any] = {"index": i * config.n + j, "text": (prompt if req.echo else "") + text,
                                          "finish_reason": _finish(generated[i], j) if generated else "length",
                                          "logprobs": None}
                if score is not None:
                    choice["logprobs"] = _with_generated(score["logprobs"], text, len(prompt))
                    if "raw" in score:
                        choice["evalkit_token_logprobs"] = score["raw"]
                        choice["evalkit_windows"] = score["windows"]
                choices.append(choice)
            if generated:
                completion_tokens += generated[i].usage.completion_tokens
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
                "model": self.model_name, "choices": choices, "usage": _usage(prompt_tokens, completion_tokens)}

    def _complete_with_logprobs(self, prompts: list[str], config: GenConfig, top: int) -> dict[str, Any]:
        """Generated tokens with their logprobs and `top` alternatives, in the legacy completions format
        (what `evalkit probe` compares echoed prompt logprobs with)."""
        if not self.backend.can_complete_logprobs:
            raise ApiError(400, "this backend cannot report logprobs of generated tokens; send logprobs=null")
        with self.lock:
            sequences = self.backend.complete_logprobs(prompts, config, top)
            prompt_tokens = sum(len(self.backend.encode(p)) if self.backend.can_tokenize else len(p) for p in prompts)
        choices: list[dict[str, Any]] = []
        for i, (prompt, samples) in enumerate(zip(prompts, sequences)):
            for j, tokens in enumerate(samples):
                offsets = list(accumulate((len(t.text) for t in tokens), initial=len(prompt)))[:-1]
                choices.append({"index": i * config.n + j, "text": "".join(t.text for t in tokens),
                                "finish_reason": "length" if len(tokens) >= config.max_tokens else "stop",
                                "logprobs": {"tokens": [t.text for t in tokens],
                                             "token_logprobs": [t.logprob for t in tokens],
                                             "top_logprobs": [dict(t.top[:top]) for t in tokens],
                                             "text_offset": offsets}})
        generated = sum(len(c["logprobs"]["tokens"]) for c in choices)
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
                "model": self.model_name, "choices": choices,
                "usage": _usage(prompt_tokens, generated)}

    def _scores(self, prompts: list[str], req: CompletionRequest, hints: list[int] | None
                ) -> list[dict[str, Any] | None]:
        if req.logprobs is None:
            return [None] * len(prompts)
        if not req.echo:
            if req.max_tokens == 0:
                raise ApiError(400, "max_tokens=0 with logprobs needs echo=true (scoring the prompt)")
            raise ApiError(400, "logprobs of generated tokens are not available from evalkit serve; "
                                "use echo=true with max_tokens=0 to score a prompt")
        if hints is not None and not req.evalkit_rolling:
            return list(self.batched.score_splits(prompts, hints))
        return list(self.batched.score_rolling(prompts, req.evalkit_stride))

    def _generate(self, prompts: list[str], config: GenConfig, emit: Emit | None = None) -> list[Completion]:
        if not self.backend.can_complete:
            raise ApiError(400, "this backend cannot continue raw text; use /v1/chat/completions, or "
                                "max_tokens=0 with echo+logprobs to score")
        stream = None if emit is None else (lambda i, j, text: emit(i * config.n + j, text))
        return self.batched.complete(prompts, config, stream)

    def _complete_stream(self, req: CompletionRequest, prompts: Sequence[str], config: GenConfig) -> Iterator[str]:
        if req.echo or req.logprobs is not None or config.max_tokens == 0:
            raise ApiError(400, "stream=true serves generated text only (no echo, logprobs or max_tokens=0); "
                                "send stream=false")
        if not self.backend.can_complete:
            raise ApiError(400, "this backend cannot continue raw text; use /v1/chat/completions")
        return stream_sse(Chunks(self.model_name, chat=False), len(prompts) * config.n,
                          lambda emit: self._generate(list(prompts), config, emit),
                          include_usage=_usage_wanted(req))


def _usage_wanted(body: _Body) -> bool:
    return bool((body.stream_options or {}).get("include_usage"))


def _token_json(token: TokenChoice, top: int) -> dict[str, Any]:
    """One entry of OpenAI's `choices[i].logprobs.content`."""
    return {"token": token.text, "logprob": token.logprob, "bytes": list(token.text.encode("utf-8")),
            "top_logprobs": [{"token": text, "logprob": lp, "bytes": list(text.encode("utf-8"))}
                             for text, lp in token.top[:top]]}


def _finish(done: Completion, i: int) -> str:
    return done.finish_reasons[i] if i < len(done.finish_reasons) and done.finish_reasons[i] else "stop"


def _with_generated(logprobs: dict[str, Any], text: str, prompt_len: int) -> dict[str, Any]:
    """Append generated text as one token without a logprob (evalkit backends give none for samples)."""
    if not text:
        return logprobs
    out = {k: (list(v) if isinstance(v, list) else v) for k, v in logprobs.items()}
    out["tokens"].append(text)
    out["token_logprobs"].append(None)
    out["text_offset"].append(prompt_len)
    if out["top_logprobs"] is not None:
        out["top_logprobs"].append(None)
    return out


def _reply(result: dict[str, Any] | Iterator[str]) -> dict[str, Any] | StreamingResponse:
    if isinstance(result, dict):
        return result
    return StreamingResponse(result, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def create_app(backend: Backend, model_name: str, *, faults: FaultSchedule | None = None,
               batch_window_ms: float = 5.0, max_batch: int = 64) -> FastAPI:
    """The FastAPI app serving `backend` under the name `model_name`.

    Args:
        backend: any evalkit backend.
        model_name: the id listed by /v1/models and expected in requests' `model`.
        faults: a deterministic fault schedule (tests of API clients); None serves normally.
        batch_window_ms: how long the first queued request waits for others to join its batch.
        max_batch: the most requests (prompts) in one batch.
    """
    service = _Service(backend, model_name, batch_window_s=batch_window_ms / 1000, max_batch=max_batch)
    app = FastAPI(title="evalkit serve", version="1")
    app.state.service = service
    if faults is not None:
        install_faults(app, faults)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.kind)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(400, f"invalid request: {where}: {first.get('msg', exc)}", "invalid_request_error")

    @app.exception_handler(EvalkitError)
    async def _backend_error(_request: Request, exc: EvalkitError) -> JSONResponse:
        status = 400 if isinstance(exc, UnsupportedRequest) else 500
        kind = "unsupported_request" if isinstance(exc, UnsupportedRequest) else (
            "backend_error" if isinstance(exc, BackendError) else "server_error")
        return _error(status, str(exc), kind)

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        identity = backend.identity
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": 0,
                                            "owned_by": "evalkit", "root": identity.model,
                                            "evalkit_identity": identity.as_dict()}]}

    @app.post("/v1/chat/completions", response_model=None)
    def chat(req: ChatRequest) -> dict[str, Any] | StreamingResponse:
        return _reply(service.chat(req))

    @app.post("/v1/completions", response_model=None)
    def completions(req: CompletionRequest) -> dict[str, Any] | StreamingResponse:
        return _reply(service.complete(req))

    @app.get("/health")
    def health() -> dict[str, Literal["ok"]]:
        return {"status": "ok"}

    return app
