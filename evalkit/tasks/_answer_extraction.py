"""Extract the chosen letter(s) from a free-text multiple-choice answer: a documented cascade.

Stages, tried in order; the first that finds a letter decides, and the result names the stage and pattern:

1. ``strict`` — the format our prompts ask for: the LAST non-empty line is ``答案：B`` / ``Answer: B``
   (also ``最终答案``/``Final answer``, optional markdown, brackets and a full stop).
2. ``lenient`` — a short list of unambiguous patterns in groups, strongest first; within a group the *last*
   match wins, because models reason first and answer last:

   a. an answer statement: ``zh_statement`` ("答案是 B", "正确答案为：B", "故选B", "选择 C", "正确选项是C",
      "答：B"), ``en_statement`` ("The answer is (B)", "Answer: D", "I choose A"), ``boxed`` ("\\boxed{B}"),
      ``zh_letter_correct`` ("B选项正确", "B是正确的"), ``en_letter_correct`` ("B is correct");
   b. an emphasised or named option: ``bold_letter`` ("**B**"), ``named_option`` ("选项B", "option B"),
      ``it_is`` ("it is B", "so B");
   c. ``last_line_letter``: the reply's last line is only a letter ("...D 也不对。\\n\\nC");
   d. ``leading_letter``: the reply starts with a letter ("B", "B.", "(B) 北京", "C：因为...") and no other
      option label ("A." "B:" "C、") appears in it (an "A. 错误 / B. 错误 / ..." walk-through is not an answer);
   e. ``single_letter``: in a short reply (at most 200 characters on two lines), exactly one distinct
      choice letter stands alone, and it is not negated or offered as an alternative ("not A", "A or C").

   Group b counts only when it names one letter throughout ("option A ... option C" is a comparison, not an
   answer). An output cut off by max_tokens (`truncated=True`) is read by stage 1 and group a only.

3. ``model`` — optional: an extractor model (any evalkit backend) is asked only to map the answer to a letter
   (`extract_with_model`); its calls go through the backend it is given, so the runner's cache applies.

Otherwise the stage is ``none`` and the letter is `None`: the caller counts the answer as unextractable and
wrong, never guesses. Negations ("答案不是A", "the answer is not A", "A is incorrect") and alternatives
("答案是A或B", "A or B") never match. Letters are upper-case choice letters after NFKC normalisation, so
full-width letters ("Ｂ") and punctuation ("：", "（") count; a lower-case "a" is an English article.

Examples:
    >>> extract_answer("分析：A项错误，C项也不对。\\n答案：B")
    Extraction(letter='B', stage='strict', pattern='strict_last_line')
    >>> extract_answer("A和C都不对，所以选B").letter
    'B'
    >>> extract_answer("对不起，我无法回答这个问题。")
    Extraction(letter=None, stage='none', pattern=None)
    >>> extract_choice("我选Ｅ", choices="ABCDE")
    'E'
    >>> extract_multi("正确答案为A、C、D").letters
    'ACD'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from evalkit.types import GenConfig, Message

if TYPE_CHECKING:
    from evalkit.backends._protocol import Backend

__all__ = ["STAGES", "Extraction", "MultiExtraction", "extract_answer", "extract_choice", "extract_lenient",
           "extract_multi", "extract_strict", "extract_with_model", "extractor_conversation"]

Stage = Literal["strict", "lenient", "model", "none"]
STAGES: tuple[Stage, ...] = ("strict", "lenient", "model", "none")


@dataclass(frozen=True)
class Extraction:
    """The letter an answer settles on, the cascade stage that found it and the name of the pattern."""

    letter: str | None
    stage: Stage
    pattern: str | None


@dataclass(frozen=True)
class MultiExtraction:
    """The set of letters a multi-answer reply settles on, as a sorted string ("ABD"), or `None`."""

    letters: str | None
    stage: Stage
    pattern: str | None


_NONE = Extraction(None, "none", None)

# Openers allowed between a cue and the letter: spaces, colons, "is"-words, quotes, brackets, markdown.
_OPEN = r"[\s:=\"'“”‘’「『【\[(*_]*"

_ZH_CUE = (r"(?:最终|正确|最佳|标准|参考)?答案(?:应该|应当|应|就|即|必然|肯定|一定|只能|可能)?(?:是|为|選|选)?"
           r"(?:选项|選項)?|(?:故|所以|因此|则|应|应该|我|只能|因而|综上)?(?:选择|選擇|选|選)(?!项|項|择|擇)(?:选项|的是|是|为)?"
           r"|(?:正确|最佳|最终|合适)?(?:选项|選項)(?:应该|应|就)?(?:是|为)|(?<![问回])答(?=\s*:)")
_EN_CUE = (r"(?:answer|choice|option)\s*(?:is|would\s+be|should\s+be|must\s+be|will\s+be|=|:)\s*"
           r"(?:therefore|thus|clearly|definitely|probably|likely|indeed|actually)?\s*(?:option|choice)?"
           r"|\b(?:answer|ans)\s*[:.]?"
           r"|\bI\s+(?:would\s+)?(?:choose|select|pick|go\s+with)\s*(?:option|choice)?")
_STRICT_CUE = r"(?:\*\*)?(?:最终答案|正确答案|答案|(?i:final\s+answer|answer))(?:\*\*)?\s*:\s*"


def _close(x: str) -> str:
    """After a letter: not part of a word, and not the first of alternatives ("A或B", "A or B", "A/B")."""
    return (rf"(?![A-Za-z0-9])(?![)\]】*\s]*(?:或者?|还是|和|与|及|、|/|\bor\b|\band\b)\s*\(?{x}(?![A-Za-z]))")


@lru_cache(maxsize=64)
def _patterns(letters: str) -> tuple[tuple[tuple[str, re.Pattern[str]], ...], ...]:
    x = f"([{re.escape(letters)}])"
    bare = f"[{re.escape(letters)}]"
    close = _close(bare)
    statement = (
        ("zh_statement", re.compile(rf"(?:{_ZH_CUE}){_OPEN}{x}{close}")),
        ("en_statement", re.compile(rf"(?i:{_EN_CUE}){_OPEN}{x}{close}")),
        ("boxed", re.compile(rf"\\boxed\{{\s*(?:\\text\{{)?{x}\}}")),
        ("zh_letter_correct",
         re.compile(rf"(?<![A-Za-z和与或、/]){x}[)\].:\s]*(?:选项|項|项)?\s*(?:是|为)?\s*(?:正确|对的|最佳|最合适)")),
        ("en_letter_correct", re.compile(rf"(?<![A-Za-z])\(?{x}\)?\s+is\s+(?:the\s+)?(?:correct|right|best)\b")),
    )
    named = (
        ("bold_letter", re.compile(rf"\*\*\s*\(?{x}\)?[.:)]?\s*\*\*")),
        ("named_option", re.compile(rf"(?:选项|選項|\b(?i:option))\s*\(?{x}{close}")),
        ("it_is", re.compile(rf"\b(?i:it\s+is|it's|so)\s+(?i:option\s+)?\(?{x}{close}")),
    )
    last_line = (("last_line_letter", re.compile(rf"(?:^|\n)[\s*#>(\[【]*{x}[)\]】*.。!！]*\s*$")),)
    leading = (("leading_letter", re.compile(rf"^[\s*(\[【]*{x}(?:$|[)\].:、,，;；]|\s+(?![a-z]))")),)
    return statement, named, last_line, leading


@lru_cache(maxsize=64)
def _aux_patterns(letters: str) -> tuple[re.Pattern[str], ...]:
    x = f"([{re.escape(letters)}])"
    bare = f"[{re.escape(letters)}]"
    strict = re.compile(rf"^[\s#>*]*{_STRICT_CUE}[*\s]*[(\[【]?{x}[)\]】]?[*\s]*[.。]?[*\s]*$")
    alone = re.compile(rf"(?<![A-Za-z]){x}(?![A-Za-z])(?!\s+[a-z])")
    label = re.compile(rf"(?:^|[\s;；,，。])[*(\[【]*{x}[)\].:、]", re.MULTILINE)
    # "A or C", "A还是B", "not A", "不是A", "A is wrong", "A不对": a lone letter in such a reply is no answer
    doubt = re.compile(rf"(?<![A-Za-z]){bare}\s*(?:\bor\b|或|还是|/)\s*\(?{bare}(?![A-Za-z])"
                       rf"|(?i:\bnot|n't|不是|并非)\s*(?i:option\s*|选项)?\(?{bare}(?![A-Za-z])"
                       rf"|(?<![A-Za-z]){bare}\)?\s*(?i:is\s+(?:not|wrong|incorrect)|不对|错误|不正确|是错)")
    return strict, alone, label, doubt


def _letters(choices: Sequence[str]) -> str:
    cleaned = [c.strip().upper() for c in choices]
    if not cleaned or any(len(c) != 1 or not ("A" <= c <= "Z") for c in cleaned):
        raise ValueError(f"choices must be single letters such as 'ABCD', got {list(choices)!r}")
    return "".join(dict.fromkeys(cleaned))


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").strip()


def _last_match(patterns: Sequence[tuple[str, re.Pattern[str]]], text: str) -> tuple[str, str] | None:
    best: tuple[int, str, str] | None = None
    for name, pattern in patterns:
        for match in pattern.finditer(text):
            if best is None or match.start(1) > best[0]:
                best = (match.start(1), match.group(1), name)
    return (best[1], best[2]) if best else None


def extract_strict(text: str, choices: Sequence[str] = "ABCD") -> Extraction:
    """Stage 1: the last non-empty line is the answer line our prompts ask for (``答案：B``, ``Answer: B``)."""
    letters = _letters(choices)
    lines = [line for line in _normalise(text).splitlines() if line.strip()]
    if lines:
        match = _aux_patterns(letters)[0].match(lines[-1])
        if match:
            return Extraction(match.group(1), "strict", "strict_last_line")
    return _NONE


_SHORT_REPLY = 200  # characters (and at most two non-empty lines) for the `single_letter` rule


def extract_lenient(text: str, choices: Sequence[str] = "ABCD", *, truncated: bool = False) -> Extraction:
    """Stage 2: the documented lenient patterns (module docstring), strongest group first.

    With `truncated=True` (the output hit max_tokens) only answer statements count: a reply cut off in
    its reasoning names options it was still weighing, not its answer.
    """
    letters = _letters(choices)
    norm = _normalise(text)
    statement, named, last_line, leading = _patterns(letters)
    found = _last_match(statement, norm)
    if found is not None or truncated:
        return Extraction(found[0], "lenient", found[1]) if found else _NONE
    named_letters = {m.group(1) for _, p in named for m in p.finditer(norm)}
    found = _last_match(named, norm) if len(named_letters) == 1 else None  # "option A ... option C": ambiguous
    found = found or _last_match(last_line, norm)
    if found is not None:
        return Extraction(found[0], "lenient", found[1])
    _, alone, label, doubt = _aux_patterns(letters)
    found = _last_match(leading, norm)
    if found is not None and {m.group(1) for m in label.finditer(norm)} <= {found[0]}:
        return Extraction(found[0], "lenient", found[1])
    standalone = {m.group(1) for m in alone.finditer(norm)}
    short = len(norm) <= _SHORT_REPLY and len([x for x in norm.splitlines() if x.strip()]) <= 2
    if short and len(standalone) == 1 and not doubt.search(norm):
        return Extraction(standalone.pop(), "lenient", "single_letter")
    return _NONE


def extract_answer(text: str, choices: Sequence[str] = "ABCD", *, truncated: bool = False) -> Extraction:
    """Stages 1 and 2 of the cascade (stage 3 needs a model: `extract_with_model`).

    Args:
        text: the model's answer, thinking already removed (see `evalkit.tasks._thinking.split_thinking`).
        choices: the valid letters, e.g. "ABCD" or ["A", "B", "C", "D", "E"].
        truncated: the output was cut off by max_tokens (finish reason "length"): only the strict line and
            answer statements are read.

    Returns:
        The letter with stage "strict" or "lenient", or `Extraction(None, "none", None)`.
    """
    found = extract_strict(text, choices)
    return found if found.letter is not None else extract_lenient(text, choices, truncated=truncated)


def extract_choice(text: str, choices: Sequence[str] = "ABCD") -> str | None:
    """The choice letter a free-text answer settles on (stages 1-2), or `None` when it does not name one.

    Args:
        text: the model's reply (Chinese or English, possibly with reasoning before the answer).
        choices: the valid letters, e.g. "ABCD" or ["A", "B", "C", "D", "E"] (single upper-case letters).

    Returns:
        One of `choices`, or `None` for an unextractable reply.
    """
    return extract_answer(text, choices).letter


# --- several letters (multi-answer questions, e.g. CMB's 多项选择题) ---------------------------------------

_SEP = r"(?:\s*(?:、|,|，|;|；|和|与|及|以及|&|/|\band\b)\s*|\s+)"


@lru_cache(maxsize=64)
def _multi_patterns(letters: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    x = f"[{re.escape(letters)}]"
    group = rf"(\(?{x}\)?(?:{_SEP}?\(?{x}\)?)*)(?![A-Za-z0-9])"
    return (
        ("strict_last_line", re.compile(rf"(?:^|\n)[\s#>*]*{_STRICT_CUE}[*\s]*{group}[*\s]*[.。]?[*\s]*$")),
        ("zh_statement", re.compile(rf"(?:{_ZH_CUE}|正确的(?:选项|是|有))(?:有|是|为)?{_OPEN}{group}")),
        ("en_statement", re.compile(rf"(?i:(?:answers?|options?|choices?)\s*(?:are|is|:)\s*(?:options?)?){_OPEN}{group}")),
        ("bold_letter", re.compile(rf"\*\*\s*{group}[.:)]?\s*\*\*")),
        ("last_line_letter", re.compile(rf"(?:^|\n)[\s*#>(\[【]*{group}[)\]】*.。]*\s*$")),
    )


def extract_multi(text: str, choices: Sequence[str] = "ABCDE") -> MultiExtraction:
    """The set of letters a multi-answer reply gives ("答案：ABD", "正确答案为A、C", "The answers are A and C").

    The strict last line is tried first, then the lenient statements (last match wins), then a last line
    made only of letters. Letters come back sorted and without repeats; no match gives `letters=None`.

    Examples:
        >>> extract_multi("分析略。\\n答案：A、B、D")
        MultiExtraction(letters='ABD', stage='strict', pattern='strict_last_line')
        >>> extract_multi("The correct answers are A and C.").letters
        'AC'
    """
    letters = _letters(choices)
    norm = _normalise(text)
    patterns = _multi_patterns(letters)
    strict = [m for m in patterns[0][1].finditer(norm)]
    if strict:
        return MultiExtraction(_sorted_letters(strict[-1].group(1), letters), "strict", patterns[0][0])
    best: tuple[int, str, str] | None = None
    for name, pattern in patterns[1:]:
        for match in pattern.finditer(norm):
            if best is None or match.start(1) > best[0]:
                best = (match.start(1), match.group(1), name)
    if best is None:
        return MultiExtraction(None, "none", None)
    return MultiExtraction(_sorted_letters(best[1], letters), "lenient", best[2])


def _sorted_letters(found: str, letters: str) -> str:
    return "".join(sorted({c for c in found if c in letters}))


# --- stage 3: an extractor model -----------------------------------------------------------------------------

_EXTRACTOR_PROMPT = (
    "You read another model's answer to a multiple-choice question and report which option it chose.\n"
    "Do not solve the question yourself. Reply with exactly one letter from {letters}, or NONE if the answer "
    "chooses no option, several options, or refuses.\n\n{question}"
    "Answer to classify:\n\"\"\"\n{answer}\n\"\"\"\n\nThe option it chose (one letter or NONE):")
_ANSWER_TAIL = 2000  # characters: the conclusion is at the end of a long chain of thought


def extractor_conversation(answer: str, choices: Sequence[str], question: str | None = None) -> tuple[Message, ...]:
    """The one-message conversation the extractor model gets (our wording; it never sees the reference)."""
    letters = _letters(choices)
    shown = answer if len(answer) <= _ANSWER_TAIL else "..." + answer[-_ANSWER_TAIL:]
    context = f"Question and options:\n\"\"\"\n{question.strip()}\n\"\"\"\n\n" if question else ""
    return (Message("user", _EXTRACTOR_PROMPT.format(letters="/".join(letters), question=context,
                                                     answer=shown.strip())),)


def extract_with_model(answers: Sequence[str], choices: Sequence[str], backend: Backend,
                       questions: Sequence[str | None] | None = None, *, max_tokens: int = 8) -> list[Extraction]:
    """Stage 3: ask `backend` (greedy, one call for all answers) which letter each answer chose.

    The reply is read with stages 1-2 (so "B", "Answer: B" and "(B)" count); "NONE" or anything else gives
    stage "none". A found letter has stage "model" and pattern "model:<backend model name>".

    Args:
        answers: model answers that stages 1-2 could not read (thinking removed).
        choices: the valid letters.
        backend: any evalkit backend; wrap it in the response cache to cache its calls.
        questions: optional question + options text per answer, shown to the extractor.
        max_tokens: generation budget of the extractor's reply.
    """
    if not answers:
        return []
    shown = list(questions) if questions is not None else [None] * len(answers)
    conversations = [extractor_conversation(a, choices, q) for a, q in zip(answers, shown)]
    replies = backend.generate(conversations, GenConfig(temperature=0.0, max_tokens=max_tokens))
    name = f"model:{backend.identity.model}"
    out = []
    for reply in replies:
        text = reply.text.strip()
        found = _NONE if re.match(r"(?i)\W*none\b", text) else extract_answer(text, choices)
        out.append(replace(found, stage="model", pattern=name) if found.letter is not None else _NONE)
    return out
