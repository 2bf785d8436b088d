"""The embedded SmolLM2: batched, prefix-shared greedy generation gives the tokens of transformers' own
sequential `generate`, for rows that end at EOS, at a stop string and at max_tokens, in one batch."""

from __future__ import annotations

import pytest

from evalkit.backends import load_backend
from evalkit.types import GenConfig, Message

pytestmark = pytest.mark.integration

_FIRST = (Message("user", "Name three colours."),)
_CONVERSATIONS = [
    (Message("user", "What is the capital of France?"),),  # a short answer: ends at EOS
    (Message("user", "Write a long story about a dragon who learns to cook."),),  # cut at max_tokens
    (Message("user", "List the days of the week, one per line."),),  # stops at "\n"
    _FIRST,
    # an MT-Bench-like second turn: its prompt starts with the first turn's, so the two share a prefix
    (*_FIRST, Message("assistant", "Red, green and blue."), Message("user", "Now name three animals.")),
    (Message("system", "Answer in one word."), Message("user", "Is the sky blue?")),
]


def test_batched_greedy_generation_matches_sequential_generate_token_for_token() -> None:
    backend = load_backend("smollm2", {"threads": "2"})
    prompts = [backend.render_chat(conv) for conv in _CONVERSATIONS]
    configs = [GenConfig(max_tokens=20, stop=("\n",) if i == 2 else ()) for i in range(len(prompts))]
    backend.gen_batch = 1
    sequential = backend.generate_many(prompts, configs, templated=True)
    backend.gen_batch = 32
    batched = backend.generate_many(prompts, configs, templated=True)
    groups = backend.generator.stats.prefix_groups
    backend.generator.prefix_cache = False
    unshared = backend.generate_many(prompts, configs, templated=True)
    assert batched == sequential
    assert unshared == sequential
    assert groups >= 1 and backend.generator.stats.batches >= 2
    reasons = [c.finish_reasons[0] for c in batched]
    tokens = [c.usage.completion_tokens for c in batched]
    assert reasons[0] == "stop" and tokens[0] < 20 and "Paris" in batched[0].text  # EOS
    assert reasons[1] == "length" and tokens[1] == 20
    assert reasons[2] == "stop" and "\n" not in batched[2].text and tokens[2] < 20
