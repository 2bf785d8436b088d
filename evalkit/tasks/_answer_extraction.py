"""Extract the chosen letter from a free-text multiple-choice answer (chat-only APIs, no loglikelihood).

Rules, strongest first; within a rule the *last* match wins, because models reason first and answer last:

1. an explicit answer statement: "答案是 B", "正确答案：B", "故选B", "选择 C", "The answer is (B)",
   "Answer: D", "I choose A", "B is correct", "B选项正确", "\\boxed{B}";
2. an emphasised or named option: "**B**", "选项B", "option B", "it is B";
3. a reply that starts with the letter: "B", "B.", "(B) 北京", "C：因为...";
4. the only choice letter that stands alone anywhere in the text.

Anything else is unextractable (`None`): the caller counts it as such instead of guessing. Negated statements
("答案不是A", "the answer is not A", "A is incorrect") never match a rule.

Examples:
    >>> extract_choice("分析：A项错误，C项也不对。所以答案是 B。")
    'B'
    >>> extract_choice("The answer is (D).")
    'D'
    >>> extract_choice("A cat is not a dog.") is None
    True
    >>> extract_choice("我选Ｅ", choices="ABCDE")
    'E'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

__all__ = ["extract_choice"]

# Openers allowed between a cue and the letter: spaces, colons, "is"-words, quotes, brackets, markdown.
_OPEN = r"[\s:=\"'“”‘’「『【\[(*_]*"
_CLOSE = r"(?![A-Za-z0-9])"

_ZH_CUE = (r"(?:最终|正确|最佳|标准|参考)?答案(?:应该|应当|应|就|即|必然|肯定|一定|只能|可能)?(?:是|为|選|选)?"
           r"(?:选项|選項)?|(?:故|所以|因此|则|应|应该|我|只能|因而|综上)?(?:选择|選擇|选|選)(?!项|項|择|擇)(?:选项)?"
           r"|(?:正确|最佳|最终|合适)?(?:选项|選項)(?:应该|应|就)?(?:是|为)|(?<![问回])答(?=\s*:)")
_EN_CUE = (r"(?:answer|choice|option)\s*(?:is|would\s+be|should\s+be|must\s+be|will\s+be|=|:)\s*"
           r"(?:therefore|thus|clearly|definitely|probably|likely|indeed)?\s*(?:option|choice)?"
           r"|\b(?:answer|ans)\s*[:.]?"
           r"|\bI\s+(?:would\s+)?(?:choose|select|pick|go\s+with)\s*(?:option|choice)?")


@lru_cache(maxsize=64)
def _patterns(letters: str) -> tuple[tuple[re.Pattern[str], ...], ...]:
    x = f"([{re.escape(letters)}])"
    statement = (
        re.compile(rf"(?:{_ZH_CUE}){_OPEN}{x}{_CLOSE}"),
        re.compile(rf"(?i:{_EN_CUE}){_OPEN}{x}{_CLOSE}"),
        re.compile(rf"\\boxed\{{\s*(?:\\text\{{)?{x}\}}"),
        re.compile(rf"(?<![A-Za-z]){x}[)\].\s]*(?:选项|項|项)?\s*(?:是|为)?\s*(?:正确|对的|最佳|最合适)"),
        re.compile(rf"(?<![A-Za-z])\(?{x}\)?\s+is\s+(?:the\s+)?(?:correct|right|best)\b"),
    )
    named = (
        re.compile(rf"\*\*\s*\(?{x}\)?[.:)]?\s*\*\*"),
        re.compile(rf"(?:选项|選項|\b(?i:option))\s*\(?{x}{_CLOSE}"),
        re.compile(rf"\b(?i:it\s+is|it's|so)\s+(?i:option\s+)?\(?{x}{_CLOSE}"),
    )
    leading = (re.compile(rf"^[\s*(\[【]*{x}(?:$|[)\].:、,，;；]|\s+(?![a-z]))"),)
    alone = (re.compile(rf"(?<![A-Za-z]){x}(?![A-Za-z])(?!\s+[a-z])"),)
    return statement, named, leading, alone


def _last_match(patterns: Sequence[re.Pattern[str]], text: str) -> str | None:
    best: tuple[int, str] | None = None
    for pattern in patterns:
        for match in pattern.finditer(text):
            if best is None or match.start(1) > best[0]:
                best = (match.start(1), match.group(1))
    return best[1] if best else None


def extract_choice(text: str, choices: Sequence[str] = "ABCD") -> str | None:
    """The choice letter a free-text answer settles on, or `None` when it does not name one clearly.

    Args:
        text: the model's reply (Chinese or English, possibly with reasoning before the answer).
        choices: the valid letters, e.g. "ABCD" or ["A", "B", "C", "D", "E"] (single upper-case letters).

    Returns:
        One of `choices`, or `None` for an unextractable reply.
    """
    cleaned = [c.strip().upper() for c in choices]
    letters = "".join(dict.fromkeys(cleaned))
    if not letters or any(len(c) != 1 or not ("A" <= c <= "Z") for c in cleaned):
        raise ValueError(f"choices must be single letters such as 'ABCD', got {list(choices)!r}")
    norm = unicodedata.normalize("NFKC", text or "")
    statement, named, leading, alone = _patterns(letters)
    for rule in (statement, named, leading):
        found = _last_match(rule, norm)
        if found is not None:
            return found
    standalone = {m.group(1) for m in alone[0].finditer(norm)}
    return standalone.pop() if len(standalone) == 1 else None
