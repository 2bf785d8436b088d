"""Server-sent events for `stream: true` (OpenAI's chunk format, ending with `data: [DONE]`).

The request's generation runs in a worker thread (it waits for its batch); every piece of text the batch
decodes for it is put on a queue, and the response iterates the queue. Text is sent once it is final: the
tail that could still begin a stop string is held back until the next token decides it.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from evalkit.types import Completion

__all__ = ["Chunks", "stream_sse"]

Emit = Callable[[int, str], None]  # (choice index, new text)


@dataclass
class Chunks:
    """Builds the chunk objects of one streamed response (`chat.completion.chunk` or `text_completion`)."""

    model: str
    chat: bool
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created: int = field(default_factory=lambda: int(time.time()))

    def _wrap(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        prefix = "chatcmpl-" if self.chat else "cmpl-"
        return {"id": prefix + self.id, "object": kind, "created": self.created, "model": self.model,
                "choices": choices, **extra}

    def opening(self, index: int) -> dict[str, Any] | None:
        """Chat streams open each choice with the assistant role."""
        if not self.chat:
            return None
        return self._wrap([{"index": index, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                            "finish_reason": None}])

    def text(self, index: int, text: str, finish: str | None = None) -> dict[str, Any]:
        """A piece of text of choice `index` (and its finish reason on the last chunk)."""
        if self.chat:
            delta = {"content": text} if text else {}
            return self._wrap([{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}])
        return self._wrap([{"index": index, "text": text, "logprobs": None, "finish_reason": finish}])

    def usage(self, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        """The final usage chunk (`stream_options: {"include_usage": true}`): no choices."""
        return self._wrap([], usage={"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                     "total_tokens": prompt_tokens + completion_tokens})


def _event(payload: dict[str, Any]) -> str:
    return "data: " + orjson.dumps(payload).decode() + "\n\n"


def _error_payload(exc: BaseException) -> dict[str, Any]:
    status = getattr(exc, "status", 500)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return {"error": {"message": message, "type": getattr(exc, "kind", "server_error"), "code": status}}


def stream_sse(chunks: Chunks, choices: int, run: Callable[[Emit], Sequence[Completion]], *,
               include_usage: bool) -> Iterator[str]:
    """SSE lines for a generation: `run(emit)` generates (calling `emit` as text arrives) and returns the
    completions; choice index = prompt index x n + sample index, as in the non-streamed reply."""
    events: queue.Queue[tuple[str, Any]] = queue.Queue()

    def work() -> None:
        try:
            events.put(("done", run(lambda index, text: events.put(("text", (index, text))))))
        except Exception as exc:  # noqa: BLE001  sent to the client as an error event
            events.put(("error", exc))

    threading.Thread(target=work, daemon=True, name="evalkit-serve-stream").start()
    for index in range(choices):
        opening = chunks.opening(index)
        if opening is not None:
            yield _event(opening)
    while True:
        kind, value = events.get()
        if kind == "text":
            yield _event(chunks.text(*value))
            continue
        if kind == "error":
            yield _event(_error_payload(value))
            break
        done: Sequence[Completion] = value
        n = max((len(c.texts) for c in done), default=0)
        for i, completion in enumerate(done):
            for j in range(len(completion.texts)):
                reason = completion.finish_reasons[j] if j < len(completion.finish_reasons) else "stop"
                yield _event(chunks.text(i * n + j, "", reason or "stop"))
        if include_usage:
            yield _event(chunks.usage(sum(c.usage.prompt_tokens for c in done),
                                      sum(c.usage.completion_tokens for c in done)))
        break
    yield "data: [DONE]\n\n"
