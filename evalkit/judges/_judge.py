"""A judge is a scorer: items in, votes out. This module holds the generative judge (parse free text).

Votes are distinct samples: vote k of a judge is generated with seed `seed + k` (so a response cache keeps
them apart); when more than one vote is asked for at temperature 0, `vote_temperature` is used instead, since
greedy samples would all be equal. An invalid judgment is retried up to `max_retries` times at
`retry_temperature` with a fresh seed, then recorded as invalid.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

from evalkit.backends._adapt import as_base_backend
from evalkit.backends._protocol import Backend
from evalkit.errors import TaskSpecError
from evalkit.judges._parse import ParsedVerdict, parse_pairwise, parse_rating
from evalkit.judges._records import Attempt, JudgeItem, JudgeStats, Vote, preference_of, verdict_of
from evalkit.judges._spec import JudgeDefinition
from evalkit.types import Completion, Conversation, GenConfig, Message

__all__ = ["GenerativeJudge", "Scorer", "build_conversation", "merge_orders", "orders_of"]

_SWAP = {"A": "B", "B": "A", "tie": "tie"}


class Scorer(Protocol):
    """Anything that votes on items: one list of votes per item."""

    name: str
    stats: JudgeStats

    def judge(self, items: Sequence[JudgeItem]) -> list[list[Vote]]: ...

    def planned_calls(self, items: Sequence[JudgeItem]) -> int: ...


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:
        raise TaskSpecError(f"judge prompt field '{{{key}}}' has no value for this item; "
                            "use the fields listed in evalkit/judges/_spec.py")


def orders_of(item: JudgeItem) -> tuple[str, ...]:
    """Presentation orders to judge: both for pairwise (always), none for single grading."""
    return ("AB", "BA") if item.pairwise else ("",)


def _fields(item: JudgeItem, order: str) -> dict[str, str]:
    fields = {"question": item.questions[0]}
    for i, q in enumerate(item.questions, 1):
        fields[f"question_{i}"] = q
    for i, ref in enumerate(item.references, 1):
        fields[f"ref_answer_{i}"] = ref
    if not item.pairwise:
        shown = {"": item.answers[0]}
    else:
        first, second = (0, 1) if order == "AB" else (1, 0)
        shown = {"_a": item.answers[first], "_b": item.answers[second]}
    for suffix, turns in shown.items():
        fields[f"answer{suffix}"] = turns[0]
        for i, text in enumerate(turns, 1):
            fields[f"answer{suffix}_{i}"] = text
    return fields


def build_conversation(definition: JudgeDefinition, item: JudgeItem, order: str,
                       data_dir: Any = None) -> Conversation:
    """The judge's chat: system prompt (if any) and the filled template for this item and order."""
    variant = "math" if item.references else "general"
    if item.turn > 1:
        variant += "_multi_turn"
    prompt = definition.prompt(variant, data_dir)
    text = prompt.template.format_map(_Fields(_fields(item, order)))
    messages = [Message("system", prompt.system)] if prompt.system else []
    return (*messages, Message("user", text))


def parse_for(definition: JudgeDefinition, item: JudgeItem, order: str, text: str) -> ParsedVerdict:
    """Parse one judge output; pairwise verdicts are turned back into the item's orientation."""
    if definition.aspects:
        from evalkit.judges._rubric import parse_rubric

        return parse_rubric(text, definition.aspects)
    if not item.pairwise:
        low, high = definition.scale
        return parse_rating(text, low, high, fallbacks=definition.fallbacks)
    parsed = parse_pairwise(text, graded=definition.graded, fallbacks=definition.fallbacks)
    if order == "BA" and isinstance(parsed.value, str):
        return ParsedVerdict(_SWAP[parsed.value], parsed.raw, parsed.rule, parsed.error, parsed.strength)
    return parsed


def merge_orders(judge: str, sample: int, item: JudgeItem, parts: Sequence[Attempt]) -> Vote:
    """One vote from the attempts of one sample: single → its value; pairwise → agreement or tie."""
    if not item.pairwise:
        part = parts[0]
        return Vote(judge, sample, part.value, tuple(parts))
    if any(p.value is None for p in parts):
        return Vote(judge, sample, None, tuple(parts))
    prefs = [p.preference if p.preference is not None else preference_of(str(p.value)) for p in parts]
    verdicts = {p.value for p in parts}
    consistent = len(verdicts) == 1
    if parts[0].distribution is not None:  # probability mode: the continuous preference, both orders averaged
        pref = sum(prefs) / len(prefs)
        return Vote(judge, sample, verdict_of(pref), tuple(parts), pref, consistent)
    verdict = str(parts[0].value) if consistent else "tie"
    return Vote(judge, sample, verdict, tuple(parts), preference_of(verdict), consistent)


class GenerativeJudge:
    """Judges by generating text with a backend and parsing the verdict (FastChat's way, made strict).

    Args:
        definition: the judge definition (prompts, scale, retries, fallbacks).
        backend: any evalkit backend (`generate` is used).
        name: a label for this judge in votes and reports (usually the model spec).
        votes: samples per item.
        seed: base seed; vote k uses `seed + k`, retry r of it `seed + k + r * votes`.
        data_dir: where FastChat's judge prompts are read from, if the definition uses them.
    """

    def __init__(self, definition: JudgeDefinition, backend: Backend, *, name: str | None = None,
                 votes: int = 1, seed: int = 0, data_dir: Any = None, vote_temperature: float = 0.7) -> None:
        self.definition = definition
        self.backend = backend
        self.name = name or backend.identity.model
        self.votes = max(1, votes)
        self.seed = seed
        self.data_dir = data_dir
        self.vote_temperature = vote_temperature
        self.stats = JudgeStats()

    def planned_calls(self, items: Sequence[JudgeItem]) -> int:
        """Judge calls without retries (each retry adds one)."""
        return sum(len(self._orders(item, 0)) for item in items) * self.votes

    def _config(self, sample: int, retry: int) -> GenConfig:
        temperature = self.definition.temperature
        if self.votes > 1 and temperature <= 0:
            temperature = self.vote_temperature
        if retry:
            temperature = max(temperature, self.definition.retry_temperature)
        return GenConfig(temperature=temperature, max_tokens=self.definition.max_tokens, n=1,
                         seed=self.seed + sample + retry * self.votes)

    def _orders(self, item: JudgeItem, sample: int) -> tuple[str, ...]:
        """The presentation orders of one item in one vote sample."""
        return orders_of(item)

    def _conversation(self, item: JudgeItem, order: str) -> Conversation:
        return build_conversation(self.definition, item, order, self.data_dir)

    def _parse(self, item: JudgeItem, order: str, text: str) -> ParsedVerdict:
        return parse_for(self.definition, item, order, text)

    def _attempt(self, item: JudgeItem, order: str, parsed: ParsedVerdict, tries: int, earlier: tuple[str, ...],
                 sample: int) -> Attempt:
        return Attempt(order, parsed.value, parsed.raw, parsed.rule, parsed.error, tries, earlier=earlier,
                       aspects=parsed.aspects)

    def _merge(self, sample: int, item: JudgeItem, parts: Sequence[Attempt]) -> Vote:
        return merge_orders(self.name, sample, item, parts)

    def _generate(self, convs: list[Conversation], config: GenConfig) -> list[Completion]:
        """Generate the judge replies; with a `reply_prefix`, the reply is forced to start with it where the
        backend can continue a rendered chat prompt (local models), and the prefix is part of the parsed text."""
        prefix = self.definition.reply_prefix
        base = as_base_backend(self.backend)
        if not prefix or not (base.can_render_chat and base.can_complete):
            return self.backend.generate(convs, config)
        completions = base.complete([base.render_chat(c) + prefix for c in convs], config)
        return [replace(c, texts=tuple(prefix + t for t in c.texts)) for c in completions]

    def _run_sample(self, items: Sequence[JudgeItem], sample: int) -> dict[tuple[int, str], Attempt]:
        pending = [(i, order) for i, item in enumerate(items) for order in self._orders(item, sample)]
        convs = {key: self._conversation(items[key[0]], key[1]) for key in pending}
        done: dict[tuple[int, str], Attempt] = {}
        for retry in range(self.definition.max_retries + 1):
            if not pending:
                break
            completions = self._generate([convs[k] for k in pending], self._config(sample, retry))
            self.stats.calls += len(pending)
            self.stats.retries += len(pending) if retry else 0
            still: list[tuple[int, str]] = []
            for key, completion in zip(pending, completions):
                self.stats.prompt_tokens += completion.usage.prompt_tokens
                self.stats.completion_tokens += completion.usage.completion_tokens
                parsed = self._parse(items[key[0]], key[1], completion.text)
                if retry == 0 and parsed.valid:
                    self.stats.first_try_parsed += 1
                earlier = (*done[key].earlier, done[key].raw) if key in done else ()
                done[key] = self._attempt(items[key[0]], key[1], parsed, retry + 1, earlier, sample)
                if not parsed.valid:
                    still.append(key)
            pending = still
        return done

    def judge(self, items: Sequence[JudgeItem]) -> list[list[Vote]]:
        """Votes per item: `votes` samples, each with both orders merged for pairwise items."""
        start = time.perf_counter()
        out: list[list[Vote]] = [[] for _ in items]
        for sample in range(self.votes):
            attempts = self._run_sample(items, sample)
            for i, item in enumerate(items):
                parts = [attempts[(i, order)] for order in self._orders(item, sample)]
                for part in parts:
                    self.stats.judgments += 1
                    if part.rule:
                        self.stats.rules[part.rule] = self.stats.rules.get(part.rule, 0) + 1
                out[i].append(self._merge(sample, item, parts))
        self.stats.seconds += time.perf_counter() - start
        return out
