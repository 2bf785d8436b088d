"""Listwise judging (LLMZoo's "vote"): one judge call ranks the answers of N models (2 ≤ N ≤ 8), best first.

The verdict is written `[[2 > 1 = 3 > 4]]`: answer numbers as presented, best to worst, `>` between ranks,
`=` inside a tie (a comma reads as `>`). The last such verdict in the text counts. It is valid only when it
names every answer 1..N exactly once; anything else (an answer named twice, one left out, a number outside
1..N) is invalid: retried, then left out, never scored.

The answers are shuffled for every vote: vote k of an item is presented in the order drawn by
`random.Random(seed)`, where `seed` is derived from the judge's seed, the item and k and is recorded on the
attempt with the order itself (`order` "2,0,1": the item's models[2] was shown first). Over votes position bias
cancels out, and the bias report measures it.

Ranks are fractional under ties (two answers tied for first both get 1.5), so mean ranks stay comparable.
A small judge that cannot write a ranking can be read in probability mode instead (`--judge-mode probability`,
`evalkit.judges._listwise_probability`), or made to start its reply with `[[` (`reply_prefix` in the YAML).

Examples:
    >>> parse_ranking("Best is 2. [[2 > 1 = 3]]", 3).value
    '2.5,1,2.5'
    >>> parse_ranking("[[1 > 1 > 2]]", 3).error
    'answer 1 named twice'
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from typing import Any

from evalkit.errors import ConfigError
from evalkit.judges._judge import GenerativeJudge, _Fields
from evalkit.judges._parse import ParsedVerdict
from evalkit.judges._records import Attempt, JudgeItem, Vote
from evalkit.types import Conversation, Message

__all__ = ["MAX_LISTWISE", "ListwiseJudge", "check_listwise_models", "format_ranks", "listwise_conversation",
           "parse_ranking", "presented_order", "ranks_of"]

MAX_LISTWISE = 8
_VERDICT = re.compile(r"\[\[\s*(\d+(?:\s*[>=,]\s*\d+)*)\s*\]\]")


def format_ranks(ranks: Sequence[float]) -> str:
    """The stored form of a ranking: one rank per answer, comma-separated ("1,2.5,2.5")."""
    return ",".join(str(int(r)) if float(r).is_integer() else str(r) for r in ranks)


def ranks_of(value: str) -> tuple[float, ...]:
    """The ranks of a stored ranking (see `format_ranks`)."""
    return tuple(float(x) for x in value.split(","))


def parse_ranking(text: str, n: int) -> ParsedVerdict:
    """Parse a ranking of `n` presented answers; `value` holds the rank of each presented answer."""
    hits = _VERDICT.findall(text)
    if not hits:
        return ParsedVerdict(None, text, None, "no [[ranking]] verdict found (e.g. [[2 > 1 = 3]])")
    groups = [[int(x) for x in group.split("=")] for group in re.split(r"[>,]", re.sub(r"\s+", "", hits[-1]))]
    seen: set[int] = set()
    for number in (x for group in groups for x in group):
        if not 1 <= number <= n:
            return ParsedVerdict(None, text, None, f"answer {number} not among 1..{n}")
        if number in seen:
            return ParsedVerdict(None, text, None, f"answer {number} named twice")
        seen.add(number)
    if len(seen) < n:
        missing = ", ".join(str(x) for x in range(1, n + 1) if x not in seen)
        return ParsedVerdict(None, text, None, f"answer(s) {missing} not ranked")
    ranks = [0.0] * n
    position = 1
    for group in groups:
        for number in group:
            ranks[number - 1] = position + (len(group) - 1) / 2
        position += len(group)
    return ParsedVerdict(format_ranks(ranks), text, "strict")


def check_listwise_models(models: Sequence[str], judge: str) -> None:
    """A listwise judge ranks 2..8 models' answers; anything else is a one-line ConfigError."""
    if not 2 <= len(models) <= MAX_LISTWISE:
        raise ConfigError(f"listwise judge '{judge}' ranks the answers of 2 to {MAX_LISTWISE} models; got "
                          f"{len(models)} ({', '.join(models) or 'none'}): pass --models a,b[,...]")


def presented_order(item: JudgeItem, seed: int, sample: int) -> tuple[int, str]:
    """(shuffle seed, order) of vote `sample` of an item: the seed is recorded, the order is its shuffle."""
    digest = hashlib.sha256(f"{seed}/{item.key}/{sample}".encode()).digest()
    shuffle_seed = int.from_bytes(digest[:4], "big")
    order = list(range(len(item.models)))
    random.Random(shuffle_seed).shuffle(order)
    return shuffle_seed, ",".join(str(i) for i in order)


def _block(item: JudgeItem, model_index: int, number: int) -> str:
    turns = item.answers[model_index]
    if item.turn == 1:
        body = turns[0]
    else:
        body = "\n\n".join(f"### User:\n{q}\n\n### Assistant:\n{a}" for q, a in zip(item.questions, turns))
    return f"[Answer {number}]\n{body}\n[End of Answer {number}]"


def listwise_conversation(definition: Any, item: JudgeItem, order: str, data_dir: Any = None) -> Conversation:
    """The judge's chat for one presentation order: `{answers}` holds the numbered answer blocks, `{n}` their
    count; `{question}`, `{question_i}` and `{ref_answer_i}` as for the other judges."""
    variant = "math" if item.references else "general"
    if item.turn > 1:
        variant += "_multi_turn"
    prompt = definition.prompt(variant, data_dir)
    shown = [int(i) for i in order.split(",")]
    fields = _Fields({"question": item.questions[0], "n": str(len(shown)),
                      "answers": "\n\n".join(_block(item, m, k) for k, m in enumerate(shown, 1))})
    fields.update({f"question_{i}": q for i, q in enumerate(item.questions, 1)})
    fields.update({f"ref_answer_{i}": r for i, r in enumerate(item.references, 1)})
    text = prompt.template.format_map(fields)
    return (*([Message("system", prompt.system)] if prompt.system else []), Message("user", text))


class ListwiseJudge(GenerativeJudge):
    """Ranks all answers of an item in one call, in a freshly shuffled order for every vote.

    Same arguments as `GenerativeJudge`; the shuffle of vote k depends on `seed`, the item and k only, so a
    rerun presents the same orders (and a response cache serves it).
    """

    def _orders(self, item: JudgeItem, sample: int) -> tuple[str, ...]:
        return (presented_order(item, self.seed, sample)[1],)

    def _conversation(self, item: JudgeItem, order: str) -> Conversation:
        return listwise_conversation(self.definition, item, order, self.data_dir)

    def _parse(self, item: JudgeItem, order: str, text: str) -> ParsedVerdict:
        parsed = parse_ranking(text, len(item.models))
        if parsed.value is None:
            return parsed
        shown = [int(i) for i in order.split(",")]
        ranks = [0.0] * len(shown)
        for position, rank in enumerate(ranks_of(str(parsed.value))):
            ranks[shown[position]] = rank
        return ParsedVerdict(format_ranks(ranks), parsed.raw, parsed.rule)

    def _attempt(self, item: JudgeItem, order: str, parsed: ParsedVerdict, tries: int, earlier: tuple[str, ...],
                 sample: int) -> Attempt:
        return Attempt(order, parsed.value, parsed.raw, parsed.rule, parsed.error, tries, earlier=earlier,
                       seed=presented_order(item, self.seed, sample)[0])

    def _merge(self, sample: int, item: JudgeItem, parts: Sequence[Attempt]) -> Vote:
        return Vote(self.name, sample, parts[0].value, tuple(parts))

