"""Chat prompts of generative multiple choice: answer-only (`generate`) and chain of thought (`cot`).

The conversation is the benchmark's own header (its answer-only instruction, e.g. C-Eval's "以下是中国关于…
考试的单项选择题，请选出其中的正确答案。", rendered by the task) followed by our answer-format instruction,
then few-shot exemplars as user/assistant turns (C-Eval's chat setting), then the question.

- `generate`: exemplar replies are "答案：B" / "Answer: B"; the model is asked for that line only.
- `cot`: exemplar replies are C-Eval's CoT form: "让我们一步一步思考，\\n<explanation>\\n答案：B" (the dev split's
  `explanation` column; C-Eval ends its exemplars with "所以答案是B。", we end them with the strict answer line
  the extraction cascade reads first). Exemplars without an explanation are left out; when none has one
  (CMMLU, user tasks) the prompt is 0-shot CoT: the instruction asks the model to think step by step.

Examples:
    >>> conv = build_conversation("cot", "1+1=?", ("1", "2"), "AB", language="en")
    >>> conv[-1].content.splitlines()[-3:]
    ['1+1=?', 'A. 1', 'B. 2']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from evalkit.types import Message

__all__ = ["Exemplar", "Language", "build_conversation", "detect_language", "format_question"]

Language = Literal["zh", "en"]

_INSTRUCTIONS: dict[tuple[str, str], str] = {
    ("zh", "generate"): "请直接给出答案，不要解释，只回答一行“答案：X”，X 是 {letters} 中的一个字母。",
    ("zh", "cot"): "请一步一步思考，先写出推理过程，最后单独一行写“答案：X”，X 是 {letters} 中的一个字母。",
    ("en", "generate"): "Give the answer directly, without explanation, as a single line \"Answer: X\" where X is "
                        "one of {letters}.",
    ("en", "cot"): "Think step by step and write out your reasoning, then end with a separate last line "
                   "\"Answer: X\" where X is one of {letters}.",
}
_ANSWER_LINE = {"zh": "答案：{letter}", "en": "Answer: {letter}"}
_COT_OPENING = {"zh": "让我们一步一步思考，\n", "en": "Let's think step by step.\n"}


@dataclass(frozen=True)
class Exemplar:
    """A solved few-shot question: options in order, the correct letter, the worked reasoning if any."""

    question: str
    options: tuple[str, ...]
    answer: str
    explanation: str = ""


def detect_language(*texts: str) -> Language:
    """"zh" when any text holds a CJK ideograph, else "en"."""
    return "zh" if any("\u4e00" <= ch <= "\u9fff" for text in texts for ch in text) else "en"


def format_question(question: str, options: Sequence[str], letters: Sequence[str]) -> str:
    """The question and its lettered options, one per line (C-Eval's layout without the trailing "答案：")."""
    lines = [question.strip()]
    lines += [f"{letter}. {option}" for letter, option in zip(letters, options)]
    return "\n".join(lines)


def _reply(mode: str, shot: Exemplar, language: Language) -> str:
    answer = _ANSWER_LINE[language].format(letter=shot.answer)
    if mode == "cot":
        return _COT_OPENING[language] + shot.explanation.strip() + "\n" + answer
    return answer


def usable_exemplars(mode: str, shots: Sequence[Exemplar]) -> list[Exemplar]:
    """The exemplars a mode can show: all for `generate`, those with an explanation for `cot`."""
    return [s for s in shots if mode != "cot" or s.explanation.strip()]


def build_conversation(mode: str, question: str, options: Sequence[str], letters: Sequence[str], *,
                       header: str = "", shots: Sequence[Exemplar] = (),
                       language: Language = "zh") -> tuple[Message, ...]:
    """The chat conversation for one question.

    Args:
        mode: "generate" or "cot".
        question: the question text.
        options: the option texts, in the order shown (a rotation under circular evaluation).
        letters: the option labels.
        header: the benchmark's rendered description (its answer-only instruction), "" for none.
        shots: few-shot exemplars (filtered by `usable_exemplars` for the mode).
        language: the language of our instruction and exemplar replies.
    """
    labels = list(letters)[: len(options)]
    instruction = _INSTRUCTIONS[(language, mode)].format(letters="/".join(labels))
    preamble = (header.rstrip() + "\n" if header.strip() else "") + instruction + "\n\n"
    turns: list[Message] = []
    for shot in usable_exemplars(mode, shots):
        text = format_question(shot.question, shot.options, labels)
        turns.append(Message("user", (preamble if not turns else "") + text))
        turns.append(Message("assistant", _reply(mode, shot, language)))
    final = format_question(question, options, labels)
    turns.append(Message("user", (preamble if not turns else "") + final))
    return tuple(turns)
