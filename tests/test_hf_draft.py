"""Prompt-lookup drafts: the lookup and acceptance rules, the backoff after misses, and on real models the
same greedy tokens with drafts as without them (and as transformers' own `generate`), in fewer forwards."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from evalkit.backends import load_backend
from evalkit.backends._hf_draft import Backoff, DraftState, accepted, lookup
from evalkit.types import GenConfig, Message

slow = pytest.mark.integration


def test_lookup_prefers_the_longest_suffix_then_the_latest_occurrence() -> None:
    # the suffix (2, 3) occurred at 1 and (3) alone at 5: the bigram wins although the unigram is more recent
    context = np.array([9, 2, 3, 4, 5, 3, 8, 2, 3])
    assert lookup(context, 3) == [4, 5, 3]
    assert lookup(context, 3, max_ngram=1) == [8, 2, 3]  # latest earlier 3
    assert lookup(np.array([1, 2, 1, 2, 1, 2]), 2) == [1, 2]  # latest earlier (1, 2) sits at 2
    assert lookup(np.array([4, 5, 6]), 5) == [] and lookup(np.array([7]), 5) == []
    assert lookup(np.array([1, 2, 3, 1]), 0) == []


def test_accepted_tokens_stop_at_the_first_disagreement() -> None:
    assert accepted([5, 6, 7], [5, 6, 7, 8]) == [5, 6, 7, 8]  # all three drafts and the bonus token
    assert accepted([5, 6, 7], [5, 1, 7, 8]) == [5, 1]  # 6 was wrong: the argmax there replaces it
    assert accepted([5, 6, 7], [4, 6, 7, 8]) == [4]
    assert accepted([], [3, 9]) == [3]


def test_a_row_backs_off_after_misses_and_recovers_after_a_hit() -> None:
    state = DraftState()
    prompt, generated = [1, 2, 3, 1, 2], [3]  # ...2, 3 occurred before: a draft is there to propose
    assert state.propose(prompt, generated, 4) == [1, 2, 3]
    waits = []
    for _ in range(3):
        state.record(3, 0)
        waits.append(state.backoff.wait)
        while state.propose(prompt, generated, 4) == []:
            pass
    assert waits == [1, 3, 7]
    state.record(3, 1)
    assert state.propose(prompt, generated, 4) == [1, 2, 3]  # a kept token resets the backoff
    assert state.propose(prompt, generated, 0) == []


def test_the_batch_gate_closes_after_poor_drafts_and_reopens_after_its_wait() -> None:
    gate = Backoff()
    assert gate.ready()
    gate.record(False)
    assert [gate.ready() for _ in range(2)] == [False, True]
    gate.record(False)
    assert [gate.ready() for _ in range(4)] == [False, False, False, True]
    gate.record(True)
    assert gate.ready() and gate.misses == 0


@pytest.fixture(scope="module")
def tiny() -> Any:
    return load_backend("tiny-llama", {"seed": "5", "max_length": "512"})


def _generate(backend: Any, prompts: list[str], configs: list[GenConfig], *, drafting: bool,
              gen_batch: int = 32, templated: bool = False) -> list[Any]:
    backend.gen_batch, backend.generator.drafting = gen_batch, drafting
    try:
        return backend.generate_many(prompts, configs, templated=templated)
    finally:
        backend.gen_batch, backend.generator.drafting = 32, True


def _both(backend: Any, prompts: list[str], configs: list[GenConfig]) -> tuple[list[Any], list[Any], int, int, int]:
    """Plain and drafted outputs, the forwards each took, and the draft tokens the drafted run kept."""
    stats = backend.generator.stats
    before = stats.forward_calls
    plain = _generate(backend, prompts, configs, drafting=False)
    plain_forwards = stats.forward_calls - before
    before, kept = stats.forward_calls, stats.draft_accepted
    drafted = _generate(backend, prompts, configs, drafting=True)
    return plain, drafted, plain_forwards, stats.forward_calls - before, stats.draft_accepted - kept


@slow
def test_drafts_change_no_token_of_greedy_or_sampled_rows(tiny: Any) -> None:
    # the random Llama repeats itself, so its own output feeds the lookup; rows are cut at different lengths
    prompts = ["Once upon a time", "1, 2, 3, 4,", "Hello", "A B C A B C A B"]
    configs = [GenConfig(max_tokens=7 + 5 * i) for i in range(3)] + [
        GenConfig(temperature=0.8, max_tokens=12, seed=3)]
    reference = _generate(tiny, prompts, configs, drafting=False, gen_batch=1)  # transformers' generate
    stats = tiny.generator.stats
    before = stats.forward_calls
    plain = _generate(tiny, prompts, configs, drafting=False)
    plain_forwards = stats.forward_calls - before
    before, checked, kept = stats.forward_calls, stats.draft_tokens, stats.draft_accepted
    drafted = _generate(tiny, prompts, configs, drafting=True)
    assert drafted == plain == reference[:3] + plain[3:]  # the sampled row: same draws with and without drafts
    assert [c.usage.completion_tokens for c in drafted[:3]] == [7, 12, 17]
    assert stats.draft_accepted - kept > 0 and stats.draft_tokens > checked
    assert stats.forward_calls - before < plain_forwards


@slow
def test_a_sliding_window_model_never_drafts(tiny: Any) -> None:
    # rejected drafts stay in the cache, masked; a window counting cache positions would then see less context
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    from evalkit.backends import hf_backend

    torch.manual_seed(0)
    config = MistralConfig(vocab_size=len(tiny.tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, sliding_window=16)
    windowed = hf_backend(MistralForCausalLM(config), tiny.tokenizer)
    assert windowed.generator.drafting is False
    outputs = windowed.generate_many(["A B C A B C A B"] * 2, [GenConfig(max_tokens=24)] * 2, templated=False)
    assert [c.usage.completion_tokens for c in outputs] == [24, 24]
    assert windowed.generator.stats.draft_steps == 0 and windowed.generator.stats.forward_calls >= 24
    assert tiny.generator.drafting is True  # the same code with full-attention layers does draft


@slow
def test_a_stop_string_right_after_a_rejected_draft_ends_the_row_there(tiny: Any) -> None:
    # the random Llama says " time" ten times, then "ivar": the draft of more " time"s is cut there
    free = _generate(tiny, ["Once upon a time"], [GenConfig(max_tokens=16)], drafting=False)[0]
    assert free.text.startswith(" time" * 10 + "ivar")
    config = [GenConfig(max_tokens=16, stop=("eivar",))]
    plain = _generate(tiny, ["Once upon a time"], config, drafting=False)
    kept = tiny.generator.stats.draft_accepted
    drafted = _generate(tiny, ["Once upon a time"], config, drafting=True)
    assert drafted == plain
    assert drafted[0].text == " time" * 9 + " tim" and drafted[0].finish_reasons == ("stop",)
    assert tiny.generator.stats.draft_accepted - kept >= 5


_CHOICES = ("以下是关于计算机网络的单项选择题。\n在TCP/IP模型中，负责端到端可靠传输的是哪一层？\n"
            "A. 网络接口层\nB. 网际层\nC. 传输层，它保证数据按序可靠地交付\nD. 应用层\n答案：C.")


@slow
def test_smollm2_copies_an_option_in_fewer_forwards_with_the_same_tokens() -> None:
    backend = load_backend("smollm2", {"threads": "2"})
    prompts = [_CHOICES,
               backend.render_chat((Message("user", "Repeat this sentence exactly: the quick brown fox jumps "
                                                    "over the lazy dog near the old river bank."),)),
               ("List the days of the week: Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday.\n"
                "Again: Monday,")]
    configs = [GenConfig(max_tokens=24, stop=("\n",)), GenConfig(max_tokens=30), GenConfig(max_tokens=11)]
    reference = _generate(backend, prompts, configs, drafting=False, gen_batch=1)
    plain, drafted, plain_forwards, drafted_forwards, kept = _both(backend, prompts, configs)
    assert drafted == plain == reference
    assert "传输层" in drafted[0].text and drafted[0].finish_reasons == ("stop",)  # the option's text, to its end
    assert drafted[2].finish_reasons == ("length",) and drafted[2].usage.completion_tokens == 11  # cut mid-draft
    assert kept >= 10
    assert drafted_forwards < plain_forwards / 2


@slow
def test_smollm2_rows_copying_options_draft_together_in_wide_steps() -> None:
    backend = load_backend("smollm2", {"threads": "2"})
    layers = ["物理层", "数据链路层", "网络层", "传输层", "会话层", "应用层"]
    prompts = [_CHOICES.replace("传输层，它保证数据按序可靠地交付", f"{layer}，它负责第{i + 1}类功能的实现")
               for i, layer in enumerate(layers)]  # six rows: a wide step, more than DRAFT_ROWS
    configs = [GenConfig(max_tokens=24, stop=("\n",))] * len(prompts)
    plain, drafted, plain_forwards, drafted_forwards, kept = _both(backend, prompts, configs)
    assert drafted == plain
    assert [c.text.strip() for c in drafted] == layers  # every row copied its option's name
    assert kept >= 20
    assert drafted_forwards <= plain_forwards / 2
