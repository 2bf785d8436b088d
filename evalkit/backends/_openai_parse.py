"""Pure translation between evalkit requests and OpenAI-compatible JSON (no I/O, unit-testable).

Scoring uses the legacy completions endpoint with `echo` + `logprobs`: the server returns the prompt's tokens,
their log-probabilities and character offsets. A continuation's tokens are those that end after the context
(a token straddling the boundary counts for the continuation).

Examples:
    >>> choice = {"logprobs": {"tokens": ["答案", "：", " A"], "token_logprobs": [None, -0.5, -1.25],
    ...           "text_offset": [0, 2, 3], "top_logprobs": [None, {"：": -0.5}, {" A": -1.25, " B": -2.0}]}}
    >>> continuation_result(choice, context_len=3, prompt_len=5)
    LoglikelihoodResult(logprob=-1.25, is_greedy=True)
"""

from __future__ import annotations

from typing import Any

from evalkit.types import (
    Completion,
    Conversation,
    GenConfig,
    LoglikelihoodResult,
    TokenChoice,
    TokenLogprobs,
    Usage,
)

__all__ = [
    "NoPromptLogprobs",
    "NoTokenLogprobs",
    "chat_body",
    "chat_logprobs_body",
    "completion_body",
    "continuation_result",
    "parse_chat_logprobs",
    "parse_completion",
    "prompt_token_logprobs",
    "realign",
    "score_body",
]


class NoPromptLogprobs(Exception):
    """The server answered without echoed prompt log-probabilities."""


class NoTokenLogprobs(Exception):
    """The server answered a chat request that asked for logprobs without them."""


def _sampling(config: GenConfig) -> dict[str, Any]:
    body: dict[str, Any] = {"temperature": config.temperature, "max_tokens": config.max_tokens, "n": config.n}
    if config.top_p is not None:
        body["top_p"] = config.top_p
    if config.top_k is not None:
        body["top_k"] = config.top_k  # not in OpenAI's API; vLLM, SGLang and evalkit serve accept it
    if config.stop:
        body["stop"] = list(config.stop)
    if config.seed is not None:
        body["seed"] = config.seed
    return body


def chat_body(model: str, conversation: Conversation, config: GenConfig) -> dict[str, Any]:
    """The /chat/completions request for one conversation."""
    messages = [{"role": m.role, "content": m.content} for m in conversation]
    return {"model": model, "messages": messages, **_sampling(config)}


def chat_logprobs_body(model: str, conversation: Conversation, config: GenConfig, top_logprobs: int,
                       prefill: str | None = None) -> dict[str, Any]:
    """A /chat/completions request with per-token logprobs; `prefill` starts the assistant's reply
    (vLLM's `continue_final_message`, which `evalkit serve` also speaks).

    Examples:
        >>> from evalkit.types import Message
        >>> body = chat_logprobs_body("m", (Message("user", "Rate it."),), GenConfig(max_tokens=1), 5, "[[")
        >>> body["messages"][-1], body["continue_final_message"], body["add_generation_prompt"], body["top_logprobs"]
        ({'role': 'assistant', 'content': '[['}, True, False, 5)
    """
    body = chat_body(model, conversation, config)
    body.update(logprobs=True, top_logprobs=top_logprobs)
    if prefill is not None:
        body["messages"].append({"role": "assistant", "content": prefill})
        body.update(continue_final_message=True, add_generation_prompt=False)
    return body


def parse_chat_logprobs(data: Any) -> tuple[TokenChoice, ...]:
    """The generated tokens of the first choice, with their logprobs and top alternatives.

    Examples:
        >>> reply = {"choices": [{"index": 0, "message": {"content": "7]]"}, "logprobs": {"content": [
        ...     {"token": "7", "logprob": -0.2, "top_logprobs": [{"token": "7", "logprob": -0.2},
        ...                                                      {"token": "8", "logprob": -1.9}]},
        ...     {"token": "]]", "logprob": -0.01, "top_logprobs": []}]}}]}
        >>> [(t.text, t.top) for t in parse_chat_logprobs(reply)]
        [('7', (('7', -0.2), ('8', -1.9))), (']]', ())]
    """
    choice = min(data["choices"], key=lambda c: int(c.get("index", 0)))
    content = (choice.get("logprobs") or {}).get("content")
    if content is None:
        raise NoTokenLogprobs("the reply's choices[0].logprobs.content is missing")
    return tuple(TokenChoice(str(t["token"]), float(t["logprob"]),
                             tuple((str(a["token"]), float(a["logprob"])) for a in (t.get("top_logprobs") or ())))
                 for t in content)


def completion_body(model: str, prompt: str, config: GenConfig) -> dict[str, Any]:
    """The /completions request that continues raw `prompt` text."""
    return {"model": model, "prompt": prompt, **_sampling(config)}


def score_body(model: str, prompt: str | list[str], *, top: int = 1, max_tokens: int = 1,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The /completions request that scores `prompt` (one text or a list: one choice each; echo + logprobs).

    `max_tokens=1` by default: vLLM and most servers need at least one new token (it is dropped when
    parsing); `evalkit serve` takes 0.
    """
    return {"model": model, "prompt": prompt, "max_tokens": max_tokens, "echo": True, "logprobs": top,
            "temperature": 0.0, **(extra or {})}


def parse_completion(data: Any, n: int, *, chat: bool) -> Completion:
    """A `Completion` from a chat or text completion reply (choices ordered by their index)."""
    choices = sorted(data["choices"], key=lambda c: int(c.get("index", 0)))
    if len(choices) < n:
        raise ValueError(f"asked for n={n} choices, got {len(choices)}")
    texts = []
    for c in choices[:n]:
        text = c["message"].get("content") if chat else c["text"]
        if text is not None and not isinstance(text, str):
            raise TypeError(f"choice text is {type(text).__name__}, not a string")
        texts.append(text or "")
    usage = data.get("usage") or {}
    return Completion(tuple(texts), Usage(int(usage.get("prompt_tokens") or 0),
                                          int(usage.get("completion_tokens") or 0)),
                      tuple(str(c.get("finish_reason") or "") for c in choices[:n]),
                      reasoning=_reasoning(choices[:n]) if chat else ())


def _reasoning(choices: list[Any]) -> tuple[str, ...]:
    """The thoughts a reasoning server returns beside the answer (`reasoning_content`, vLLM/DeepSeek; or
    `reasoning`), one per choice ("" for none); () when no choice carries any."""
    found = []
    for choice in choices:
        message = choice.get("message") or {}
        value = message.get("reasoning_content") or message.get("reasoning") or ""
        found.append(value if isinstance(value, str) else "")
    return tuple(found) if any(found) else ()


def _echoed(choice: dict[str, Any], prompt_len: int) -> tuple[list[str], list[float | None], list[int], list[Any]]:
    """Tokens, logprobs, offsets and top alternatives of the echoed prompt (generated tokens dropped)."""
    lp = choice.get("logprobs")
    if not isinstance(lp, dict) or not lp.get("tokens") or lp.get("token_logprobs") is None:
        raise NoPromptLogprobs("the reply has no echoed prompt logprobs")
    tokens = [str(t) for t in lp["tokens"]]
    logprobs = list(lp["token_logprobs"])
    offsets = lp.get("text_offset")
    if offsets is None:  # rebuild from token lengths
        offsets, pos = [], 0
        for tok in tokens:
            offsets.append(pos)
            pos += len(tok)
    top = lp.get("top_logprobs") or [None] * len(tokens)
    if not (len(tokens) == len(logprobs) == len(offsets) == len(top)):
        raise ValueError("logprobs arrays have different lengths")
    keep = [i for i, off in enumerate(offsets) if int(off) < prompt_len]
    return ([tokens[i] for i in keep], [logprobs[i] for i in keep], [int(offsets[i]) for i in keep],
            [top[i] for i in keep])


def _is_top(token: str, alternatives: Any) -> bool:
    if not isinstance(alternatives, dict) or not alternatives:
        return False  # the server gave no alternatives: greediness unknown, reported as not greedy
    return bool(max(alternatives, key=lambda k: float(alternatives[k])) == token)


def continuation_result(choice: dict[str, Any], *, context_len: int, prompt_len: int) -> LoglikelihoodResult:
    """Sum of the continuation's token logprobs, and whether each was the top-1 alternative."""
    tokens, logprobs, offsets, top = _echoed(choice, prompt_len)
    total, greedy, seen = 0.0, True, False
    for tok, lp, off, alternatives in zip(tokens, logprobs, offsets, top):
        if off + len(tok) <= context_len and (tok or off < context_len):
            continue  # context (an empty byte-piece at the boundary starts the continuation's character)
        if lp is None:
            raise NoPromptLogprobs("the continuation starts at the first prompt token, which has no logprob")
        seen = True
        total += float(lp)
        if not _is_top(tok, alternatives):
            greedy = False
    if not seen:
        raise ValueError("the echoed tokens do not reach the continuation")
    return LoglikelihoodResult(total, greedy)


def prompt_token_logprobs(choice: dict[str, Any], *, prompt_len: int) -> TokenLogprobs:
    """Per-token logprobs of a whole echoed prompt; a first token without a logprob is left out.

    `evalkit serve` adds the wrapped backend's exact per-token list (`evalkit_token_logprobs`), used as is.
    """
    windows = choice.get("evalkit_windows")
    windows = int(windows) if isinstance(windows, int) and windows > 0 else 1
    raw = choice.get("evalkit_token_logprobs")
    if isinstance(raw, list):
        return TokenLogprobs(tuple(float(v) for v in raw), windows=windows)
    _, logprobs, _, _ = _echoed(choice, prompt_len)
    values = [float(v) for v in logprobs if v is not None]
    if len(values) < len(logprobs) - 1:
        raise ValueError("more than the first token lacks a logprob")
    return TokenLogprobs(tuple(values), windows=windows)


def realign(choice: dict[str, Any], shift: int) -> dict[str, Any]:
    """Undo a server's constant misalignment of echoed logprobs: with `shift=+1` each token carried the next
    token's logprob (and top alternatives), so token j gets the value reported at j-1; `shift=-1` the reverse.
    Tokens and offsets are kept; a position with nothing to take from gets None.

    Examples:
        >>> shifted = {"logprobs": {"tokens": ["a", "b", "c"], "token_logprobs": [-2.0, -3.0, None],
        ...            "top_logprobs": None, "text_offset": [0, 1, 2]}}
        >>> realign(shifted, 1)["logprobs"]["token_logprobs"]
        [None, -2.0, -3.0]
    """
    lp = choice.get("logprobs")
    if not shift or not isinstance(lp, dict):
        return choice

    def moved(values: Any) -> Any:
        if not isinstance(values, list):
            return values
        n = len(values)
        return [values[j - shift] if 0 <= j - shift < n else None for j in range(n)]

    fixed = {**lp, "token_logprobs": moved(lp.get("token_logprobs")), "top_logprobs": moved(lp.get("top_logprobs"))}
    return {**choice, "logprobs": fixed}
