"""`--repeats K` for generative tasks: K answers per prompt, sample k drawn with seed `seed + k`.

Each sample index is its own backend call with its own seed, so the response cache keys every sample apart: a
rerun with the same K answers from the cache, and a rerun with a larger K computes only the new samples.
K greedy answers would all be the same, so a greedy configuration samples at `SAMPLING_TEMPERATURE` when
K > 1 (the task records the temperature it used). Metrics over the samples are in
`evalkit.metrics._sampling` (`sampling_metrics` for letters, `score_sampling_metrics` for scores).

Examples:
    >>> from evalkit.types import GenConfig
    >>> [(c.seed, c.temperature) for c in repeat_configs(GenConfig(max_tokens=8), repeats=3, seed=10)]
    [(10, 0.7), (11, 0.7), (12, 0.7)]
    >>> [(c.seed, c.temperature) for c in repeat_configs(GenConfig(temperature=0.2), repeats=2, seed=0)]
    [(0, 0.2), (1, 0.2)]
    >>> [(c.seed, c.temperature) for c in repeat_configs(GenConfig(), repeats=1, seed=5)]
    [(5, 0.0)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from evalkit.errors import ConfigError
from evalkit.tasks._kind import RunContext
from evalkit.types import Completion, GenConfig, Message

__all__ = ["SAMPLING_TEMPERATURE", "generate_repeats", "repeat_configs", "repeat_count", "repeats_info",
           "sample_entries", "sampling_temperature"]

SAMPLING_TEMPERATURE = 0.7  # used when --repeats K > 1 meets a greedy configuration


def sampling_temperature(temperature: float, repeats: int) -> float:
    """`temperature`, or `SAMPLING_TEMPERATURE` when it is greedy and K > 1 samples are wanted."""
    return SAMPLING_TEMPERATURE if repeats > 1 and temperature <= 0.0 else temperature


def repeat_configs(config: GenConfig, *, repeats: int, seed: int) -> list[GenConfig]:
    """The K configurations of `config`'s samples: seeds `seed + k`, one answer each, sampling when K > 1."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    temperature = sampling_temperature(config.temperature, repeats)
    return [replace(config, n=1, seed=seed + k, temperature=temperature) for k in range(repeats)]


def generate_repeats(backend: Any, conversations: Sequence[tuple[Message, ...]], config: GenConfig, *,
                     repeats: int, seed: int) -> list[list[Completion]]:
    """Generate K answers for every conversation: result[k][i] is sample k of conversation i."""
    return [list(backend.generate(list(conversations), c)) if conversations else []
            for c in repeat_configs(config, repeats=repeats, seed=seed)]


def sample_entries(answers: Sequence[Sequence[Completion]], i: int, seed: int,
                   score: Callable[[str], dict[str, Any]]) -> list[dict[str, Any]]:
    """Record `i`'s K samples (answers[k][i]) as its `samples` list: the seed, the answer with any thinking
    stripped, and what `score` makes of that answer.

    Examples:
        >>> from evalkit.types import Usage
        >>> answers = [[Completion(("<think>hm</think>4",), Usage(1, 1))], [Completion(("5",), Usage(1, 1))]]
        >>> sample_entries(answers, 0, 7, lambda a: {"exact_match": float(a == "4")})
        [{'seed': 7, 'prediction': '4', 'exact_match': 1.0}, {'seed': 8, 'prediction': '5', 'exact_match': 0.0}]
    """
    from evalkit.tasks._thinking import split_thinking

    entries = []
    for k, completions in enumerate(answers):
        answer = split_thinking(completions[i].texts[0]).answer
        entries.append({"seed": seed + k, "prediction": answer, **score(answer)})
    return entries


def repeat_count(ctx: RunContext) -> int:
    """`--repeats K`: answers sampled per record (1 when the flag is absent).

    Examples:
        >>> repeat_count(RunContext()), repeat_count(RunContext(repeats=3))
        (1, 3)
    """
    count = 1 if ctx.repeats is None else ctx.repeats
    if count < 1:
        raise ConfigError(f"--repeats {count}: samples per record must be at least 1; use --repeats 1 or more")
    return count


def repeats_info(ctx: RunContext, temperature: float) -> dict[str, Any]:
    """results.json `info` facts of a K > 1 run: K, the seed of each sample and the temperature they used.

    Examples:
        >>> repeats_info(RunContext(seed=5, repeats=2), 0.0)
        {'repeats': 2, 'seeds': [5, 6], 'temperature': 0.7}
    """
    count = repeat_count(ctx)
    return {"repeats": count, "seeds": [ctx.seed + k for k in range(count)],
            "temperature": sampling_temperature(temperature, count)}
