"""Loglikelihood multiple choice through the model's chat template, laid out as lm-eval 0.4.13 lays it out.

`--task-args apply_chat_template=true[,fewshot_as_multiturn=true|false]` builds what lm-eval's
`--apply_chat_template [--fewshot_as_multiturn]` builds (`ConfigurableTask.fewshot_context`, `build_qa_turn`,
`multiturn_to_singleturn`, `HFLM.apply_chat_template`):

- the task's description, when it has one, is the system message, unchanged (trailing blank line included);
  a template that rejects the system role (a jinja2 TemplateError) is rendered again without it, as lm-eval does;
- multi-turn (the default with a chat template, as in lm-eval): each few-shot example is a user turn (its
  question text) and an assistant turn (its answer letter), then the question as the last user turn;
- single-turn: one user message, the plain few-shot text without the description
  (Σ question + target delimiter + answer + few-shot delimiter, then the question);
- the template adds the generation prompt; the option letter is scored right after it with no target delimiter
  (lm-eval drops the delimiter under a chat template when the task has no `gen_prefix`);
- a template that switches thinking on (`enable_thinking`, e.g. Qwen3) is rendered with `enable_thinking=False`:
  an option letter scored after an opened thought would measure the wrong thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2.exceptions import TemplateError

from evalkit.errors import ConfigError
from evalkit.types import Conversation, Message

__all__ = ["CHAT_TASK_ARGS", "ChatScoring", "chat_turns", "parse_chat_options", "render_for_scoring",
           "thinking_switch"]

CHAT_TASK_ARGS = frozenset({"apply_chat_template", "fewshot_as_multiturn"})
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


@dataclass(frozen=True)
class ChatScoring:
    """Whether loglikelihood prompts go through the chat template, and how few-shot examples are laid out."""

    apply_chat_template: bool = False
    fewshot_as_multiturn: bool = False


def _flag(args: Mapping[str, str], key: str) -> bool | None:
    if key not in args:
        return None
    value = args[key].strip().lower()
    if value not in _TRUE + _FALSE:
        raise ConfigError(f"--task-args {key}={args[key]}: use true or false")
    return value in _TRUE


def parse_chat_options(task_args: Mapping[str, str]) -> ChatScoring:
    """`apply_chat_template` / `fewshot_as_multiturn` from the task args, with lm-eval's defaults and check.

    Raises:
        ConfigError: a value that is not a boolean, or fewshot_as_multiturn=true without a chat template.
    """
    chat = bool(_flag(task_args, "apply_chat_template"))
    multiturn = _flag(task_args, "fewshot_as_multiturn")
    if multiturn and not chat:
        raise ConfigError("--task-args fewshot_as_multiturn=true: needs apply_chat_template=true; add it or drop "
                          "fewshot_as_multiturn")
    return ChatScoring(chat, chat if multiturn is None else multiturn)


def chat_turns(description: str, shots: Sequence[tuple[str, str]], question: str, *, multiturn: bool,
               target_delimiter: str = " ", fewshot_delimiter: str = "\n\n") -> Conversation:
    """The conversation lm-eval's `fewshot_context` makes of a description, (text, answer) shots and a question.

    Examples:
        >>> [m.role for m in chat_turns("Sys.\\n\\n", [("Q1", "A")], "Q2", multiturn=True)]
        ['system', 'user', 'assistant', 'user']
        >>> chat_turns("", [("Q1", "A")], "Q2", multiturn=False)[-1].content
        'Q1 A\\n\\nQ2'
    """
    turns: list[Message] = [Message("system", description)] if description else []
    if multiturn:
        for text, answer in shots:
            turns += [Message("user", text), Message("assistant", answer)]
        turns.append(Message("user", question))
    else:
        plain = "".join(text + target_delimiter + answer + fewshot_delimiter for text, answer in shots)
        turns.append(Message("user", plain + question))
    return tuple(turns)


def _tokenizer(backend: Any) -> Any:
    """The Hugging Face tokenizer behind a backend and its wrappers (cache, adapters), or None.

    A deferred backend not loaded yet is loaded now (its `render_chat` would load it anyway), so every prompt
    of a run is rendered the same way.
    """
    for _ in range(8):
        for name in ("tokenizer", "_tokenizer"):
            found = getattr(backend, name, None)
            if found is not None and hasattr(found, "apply_chat_template"):
                return found
        inner = getattr(backend, "inner", None) or getattr(backend, "_inner", None)
        if inner is None and hasattr(backend, "loaded") and callable(getattr(backend, "load", None)):
            inner = backend.load()
        if inner is None:
            return None
        backend = inner
    return None


def thinking_switch(tokenizer: Any) -> dict[str, Any]:
    """`{"enable_thinking": False}` for a chat template that reads that variable, else `{}`."""
    template = getattr(tokenizer, "chat_template", None)
    texts = template.values() if isinstance(template, Mapping) else [template]
    return {"enable_thinking": False} if any(isinstance(t, str) and "enable_thinking" in t for t in texts) else {}


def _render(backend: Any, tokenizer: Any, conversation: Conversation) -> str:
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        return str(backend.render_chat(conversation, add_generation_prompt=True))
    messages = [{"role": m.role, "content": m.content} for m in conversation]
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                             continue_final_message=False, **thinking_switch(tokenizer)))


def render_for_scoring(backend: Any, conversation: Conversation) -> str:
    """The chat template's text of `conversation`, ready for the option letter (generation prompt added).

    As lm-eval's `HFLM.apply_chat_template`: a template error with a system message is retried without it.
    """
    tokenizer = _tokenizer(backend)
    try:
        return _render(backend, tokenizer, conversation)
    except TemplateError:
        if not any(m.role == "system" for m in conversation):
            raise
        return _render(backend, tokenizer, tuple(m for m in conversation if m.role != "system"))
