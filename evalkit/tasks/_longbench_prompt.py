"""LongBench prompts: filling templates, the token budget, middle truncation and v2 answer extraction.

Middle truncation keeps the start (instructions, the beginning of the document) and the end (the question)
of a prompt that is longer than the budget, as the official scripts do, before any chat template:

- LongBench v1 / -E (`pred.py`): `half = budget // 2`; the text becomes `decode(ids[:half]) + decode(ids[-half:])`
  (two separate decodes; an odd budget keeps `budget - 1` tokens).
- LongBench v2 (`pred.py` of v2): `ids[:budget // 2] + ids[-(budget // 2):]` with Python's floor division of the
  negative number, i.e. the tail keeps `ceil(budget / 2)` tokens; the kept ids are decoded once.

Examples:
    >>> middle_truncate(list(range(10)), 6)
    ([0, 1, 2], [7, 8, 9])
    >>> middle_truncate(list(range(10)), 5, style="v2")
    ([0, 1], [7, 8, 9])
    >>> shorten_for_sample("x" * 100, keep=10)
    'xxxxxxxxxx\\n[... 80 characters omitted in this sample file ...]\\nxxxxxxxxxx'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from evalkit.backends._adapt import as_base_backend
from evalkit.backends._protocol import Backend, BackendBase, TokenizerAccess
from evalkit.errors import ConfigError, DataError
from evalkit.types import Message

__all__ = ["Truncation", "budget_for", "extract_choice", "fill_v1", "fill_v2", "middle_truncate",
           "shorten_for_sample", "truncate_prompt"]

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
RETOKENIZE_SLACK = 16  # tokens kept free in the default budget (see budget_for)


@dataclass(frozen=True)
class Truncation:
    """A prompt after middle truncation, and the token counts behind it."""

    text: str
    prompt_tokens: int  # before truncation; 0 when the backend has no tokenizer
    kept_tokens: int
    truncated: bool


def fill_v1(template: str, record: Mapping[str, Any], *, where: str) -> str:
    """`template.format(**record)` as the official script, with a clear error for a missing field."""
    missing = [m for m in _PLACEHOLDER.findall(template) if m not in record]
    if missing:
        raise DataError(f"{where}: the record has no field {missing[0]!r} that the prompt template uses")
    return template.format(**record)


def fill_v2(template: str, record: Mapping[str, Any], *, cot: str = "") -> str:
    """Replace $DOC$, $Q$, $C_A$..$C_D$ (stripped, as the official script) and $COT$."""
    text = template.replace("$DOC$", str(record.get("context", "")).strip())
    text = text.replace("$Q$", str(record["question"]).strip())
    for letter in "ABCD":
        text = text.replace(f"$C_{letter}$", str(record[f"choice_{letter}"]).strip())
    return text.replace("$COT$", cot)


def middle_truncate(tokens: Sequence[int], budget: int,
                    style: Literal["v1", "v2"] = "v1") -> tuple[list[int], list[int]]:
    """(head, tail) token lists kept from `tokens`; unchanged (tail empty) when it fits the budget."""
    if len(tokens) <= budget:
        return list(tokens), []
    if budget < 2:
        raise ConfigError(f"LongBench: a prompt budget of {budget} tokens cannot keep a head and a tail; "
                          f"raise --task-args max_length")
    half = budget // 2
    tail = half if style == "v1" else budget - half
    return list(tokens[:half]), list(tokens[len(tokens) - tail:])


def truncate_prompt(prompt: str, tokenizer: TokenizerAccess | None, budget: int | None,
                    style: Literal["v1", "v2"] = "v1") -> Truncation:
    """Middle-truncate `prompt` to `budget` tokens of the backend's tokenizer (no tokenizer: unchanged)."""
    if tokenizer is None or budget is None:
        return Truncation(prompt, 0, 0, False)
    ids = tokenizer.encode(prompt)
    head, tail = middle_truncate(ids, budget, style)
    if not tail:
        return Truncation(prompt, len(ids), len(ids), False)
    if style == "v1":
        text = tokenizer.decode(head) + tokenizer.decode(tail)
    else:
        text = tokenizer.decode(head + tail)
    return Truncation(text, len(ids), len(head) + len(tail), True)


def _lookup_model(table: Mapping[str, int], model: str) -> int | None:
    """model2maxlen by the backend's model name, or its last path component (`org/name` -> `name`)."""
    for key in (model, model.rstrip("/").rsplit("/", 1)[-1]):
        if key in table:
            return table[key]
    return None


def chat_overhead(backend: Backend | BackendBase) -> int:
    """Tokens the chat template adds around a user message (0 unless it can render chat and tokenize)."""
    base = as_base_backend(backend)
    if not (base.can_render_chat and base.can_tokenize):
        return 0
    return len(base.encode(base.render_chat((Message("user", ""),))))


def budget_for(backend: Backend | BackendBase, *, max_new_tokens: int, task_args: Mapping[str, str],
               model_table: Mapping[str, int], uses_chat: bool) -> tuple[int | None, str]:
    """The prompt budget in tokens and the rule that chose it.

    1. `--task-args max_length=N`;
    2. else the config's model2maxlen entry for the backend's model name (as the official scripts);
    3. else the backend's context length minus the new tokens minus the chat template's own tokens
       (where the dataset uses the template) minus `RETOKENIZE_SLACK` tokens, because the decoded head and
       tail may re-encode to a few more tokens at the cut; so prompt + answer always fit the model.
    Without a tokenizer on the backend there is no budget (prompts are sent whole, rule says so).
    """
    backend = as_base_backend(backend)
    if not backend.can_tokenize:
        return None, "backend has no tokenizer: prompts not truncated"
    if "max_length" in task_args:
        try:
            value = int(task_args["max_length"])
        except ValueError:
            raise ConfigError(f"--task-args max_length={task_args['max_length']}: use a positive integer") from None
        if value < 2:
            raise ConfigError(f"--task-args max_length={value}: use at least 2 tokens")
        return value, "task-args max_length"
    model = backend.identity.model
    listed = _lookup_model(model_table, str(model))
    if listed is not None:
        return listed, f"model2maxlen[{model}]"
    overhead = chat_overhead(backend) if uses_chat else 0
    value = backend.max_length - max_new_tokens - overhead - RETOKENIZE_SLACK
    if value < 2:
        raise ConfigError(f"LongBench: the model's context ({backend.max_length} tokens) leaves no room for a "
                          f"prompt next to {max_new_tokens} new tokens; pass --task-args max_length=N")
    return value, f"model context - max new tokens - chat template tokens - {RETOKENIZE_SLACK}"


_ANSWER_PATTERNS = (re.compile(r"The correct answer is \(([A-D])\)"), re.compile(r"The correct answer is ([A-D])"))


def extract_choice(response: str) -> str | None:
    """LongBench v2's answer extraction: drop "*", then "The correct answer is (X)", then "... is X".

    Examples:
        >>> extract_choice("**The correct answer is (B)**")
        'B'
        >>> extract_choice("The correct answer is C.") , extract_choice("I think (D)")
        ('C', None)
    """
    text = response.replace("*", "")
    for pattern in _ANSWER_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1)
    return None


def shorten_for_sample(prompt: str, keep: int = 1000) -> str:
    """Head and tail of a long prompt for the samples file, with a marker saying how much was left out."""
    if len(prompt) <= 2 * keep + 40:
        return prompt
    omitted = len(prompt) - 2 * keep
    return f"{prompt[:keep]}\n[... {omitted} characters omitted in this sample file ...]\n{prompt[-keep:]}"
