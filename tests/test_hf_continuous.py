"""Continuous batching (`evalkit serve`'s decoding loop) on the tiny random Llama: rows that join a running
batch mid-way, leave it early, wait for room, or fail get exactly what they would get generated alone."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from evalkit.backends import load_backend
from evalkit.backends._hf_continuous import ContinuousBatcher
from evalkit.backends._hf_generate import GenOutput, GenRow
from evalkit.types import GenConfig

pytestmark = pytest.mark.integration  # loads the tiny Llama

_PROMPTS = ["Once upon a time", "The capital of France is", "1, 2, 3, 4,", "A long time ago in a galaxy far away",
            "Hello", "Question: what colour is the sky? Answer:"]
_SHARED = "Q: two plus two?\nA: four\nQ: three plus one?\nA: four\nQ: five minus one?\nA: four\n"


@pytest.fixture(scope="module")
def backend() -> Any:
    return load_backend("tiny-llama", {"seed": "5", "max_length": "512"})


def _rows(backend: Any, prompts: list[str], **settings: Any) -> list[GenRow]:
    return [GenRow(tuple(backend.encode(p)), **{"max_new_tokens": 8 + 2 * i, **settings}) for i, p in enumerate(prompts)]


def _alone(backend: Any, rows: list[GenRow]) -> list[GenOutput]:
    """Each row generated on its own, one call per row (the reference)."""
    return [backend.generator.generate([row])[0] for row in rows]


def test_rows_joining_a_running_batch_get_the_tokens_they_get_alone(backend: Any) -> None:
    first = _rows(backend, _PROMPTS[:3])
    later = _rows(backend, [_SHARED + "Q: one plus three?\nA:", _SHARED + "Q: six minus two?\nA:", _PROMPTS[3],
                            _PROMPTS[5]])
    batcher = ContinuousBatcher(backend.generator, threading.Lock(), window_s=0.0)
    results: dict[str, list[GenOutput]] = {}
    second = threading.Thread(target=lambda: results.__setitem__("later", batcher.generate(later)))

    def on_text(row: int, text: str) -> None:  # called by the decoding thread: the first call is mid-way
        if not second.is_alive() and "later" not in results:
            second.start()

    results["first"] = batcher.generate(first, on_text=on_text)
    second.join()
    assert results["first"] == _alone(backend, first)
    assert results["later"] == _alone(backend, later)
    assert batcher.joins >= 2 and batcher.peak_rows > len(first)  # the later rows ran beside the first ones
    assert {o.finish_reason for o in results["first"] + results["later"]} == {"length"}


def test_sampled_rows_keep_their_own_seeds_whatever_they_run_beside(backend: Any) -> None:
    sampled = _rows(backend, _PROMPTS[:4], temperature=0.9, top_p=0.9, seed=11)
    greedy = _rows(backend, _PROMPTS[2:])
    batcher = ContinuousBatcher(backend.generator, threading.Lock(), window_s=0.05)
    out: list[list[GenOutput]] = [[], []]
    threads = [threading.Thread(target=lambda k=k, rows=rows: out.__setitem__(k, batcher.generate(rows)))
               for k, rows in enumerate([sampled, greedy])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert out[0] == _alone(backend, sampled)
    assert out[1] == _alone(backend, greedy)
    assert len({o.tokens for o in out[0]}) > 1


def test_rows_wait_for_room_under_the_row_limit_and_token_budget(backend: Any) -> None:
    rows = _rows(backend, _PROMPTS)
    batcher = ContinuousBatcher(backend.generator, threading.Lock(), window_s=0.0, max_rows=2)
    assert batcher.generate(rows) == _alone(backend, rows)
    assert batcher.peak_rows == 2 and batcher.joins >= 3  # rows came in as others left
    saved = backend.generator.token_budget
    backend.generator.token_budget = 40  # two rows of prompt + new tokens at most
    try:
        tight = ContinuousBatcher(backend.generator, threading.Lock(), window_s=0.0)
        assert tight.generate(rows) == _alone(backend, rows)
        assert tight.peak_rows <= 2
    finally:
        backend.generator.token_budget = saved


def test_rows_that_stop_early_leave_and_their_batch_mates_are_unchanged(backend: Any) -> None:
    free = _alone(backend, _rows(backend, _PROMPTS))
    stop = backend.decode(list(free[3].tokens[2:4]))  # row 3 stops after two tokens of its own
    rows = [GenRow(r.tokens, r.max_new_tokens, (stop,) if i == 3 else ()) for i, r in
            enumerate(_rows(backend, _PROMPTS))]
    batcher = ContinuousBatcher(backend.generator, threading.Lock(), window_s=0.0)
    got = batcher.generate(rows)
    assert got == _alone(backend, rows)
    assert got[3].finish_reason == "stop" and len(got[3].tokens) < rows[3].max_new_tokens
    assert [o.text for i, o in enumerate(got) if i != 3] == [o.text for i, o in enumerate(free) if i != 3]


def test_an_error_reaches_the_callers_in_flight_and_the_next_call_runs(backend: Any, monkeypatch: Any) -> None:
    rows = _rows(backend, _PROMPTS[:3])
    batcher = ContinuousBatcher(backend.generator, threading.Lock(), window_s=0.0)
    real = backend.generator.forward
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("out of memory (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(backend.generator, "forward", flaky)
    with pytest.raises(RuntimeError, match="simulated"):
        batcher.generate(rows)
    assert batcher.generate(rows) == _alone(backend, rows)


def test_an_error_while_choosing_tokens_reaches_every_caller_instead_of_hanging(backend: Any) -> None:
    batcher = ContinuousBatcher(backend.generator, threading.Lock(), window_s=0.05)
    results: dict[str, Any] = {}

    def broken_stream(row: int, text: str) -> None:  # fails a few steps in, in the middle of decoding
        if batcher.steps >= 2:
            raise ConnectionError("client went away")

    def call(name: str, **kwargs: Any) -> None:
        try:
            results[name] = batcher.generate(_rows(backend, _PROMPTS[:2]), **kwargs)
        except ConnectionError as exc:
            results[name] = exc

    threads = [threading.Thread(target=call, args=("streamed",), kwargs={"on_text": broken_stream}),
               threading.Thread(target=call, args=("plain",))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)  # nobody waits forever
    assert isinstance(results["streamed"], ConnectionError)
    assert isinstance(results["plain"], ConnectionError)  # it shared the failed step
    assert batcher.generate(_rows(backend, _PROMPTS[:2])) == _alone(backend, _rows(backend, _PROMPTS[:2]))


def test_leading_columns_no_row_attends_to_are_cut_from_mask_and_cache() -> None:
    from types import SimpleNamespace

    import torch

    from evalkit.backends._hf_continuous import _Batch, _drop_dead_columns

    keys = torch.arange(2 * 5, dtype=torch.float).reshape(2, 1, 5, 1)
    cache = SimpleNamespace(layers=[SimpleNamespace(keys=keys, values=-keys)])
    mask = torch.tensor([[0, 0, 1, 1, 1], [0, 0, 0, 1, 1]])
    batch = _Batch([], cache, mask, torch.tensor([[3], [2]]))
    _drop_dead_columns(batch)
    assert batch.mask.tolist() == [[1, 1, 1], [0, 1, 1]]
    assert torch.equal(cache.layers[0].keys, keys[..., 2:, :]) and torch.equal(cache.layers[0].values, -keys[..., 2:, :])
    _drop_dead_columns(batch)  # nothing more to cut
    assert batch.mask.shape == (2, 3)


def test_a_request_for_no_tokens_returns_at_once(backend: Any) -> None:
    batcher = ContinuousBatcher(backend.generator, threading.Lock())
    rows = [GenRow(tuple(backend.encode("Hello")), 0), GenRow(tuple(backend.encode("Hello")), 3)]
    got = batcher.generate(rows)
    assert got[0] == GenOutput((), "", "length") and len(got[1].tokens) == 3


def test_serve_generation_uses_continuous_batching_on_the_transformers_backend(backend: Any) -> None:
    from evalkit.server._batching import BatchedBackend

    batched = BatchedBackend(backend, threading.Lock(), window_s=0.0)
    assert batched.continuous is not None
    configs = [GenConfig(max_tokens=6), GenConfig(max_tokens=9, stop=("\n",))]
    got = [batched.complete([p], c)[0] for p, c in zip(_PROMPTS[:2], configs)]
    assert got == [backend.complete([p], c)[0] for p, c in zip(_PROMPTS[:2], configs)]


def test_growing_cache_layers_append_in_place_and_never_write_through_a_copy() -> None:
    import copy

    import torch
    from transformers import LlamaConfig

    from evalkit.backends._hf_cache import decoding_cache, empty_cache, expand_cache

    cache = decoding_cache(empty_cache(LlamaConfig(num_hidden_layers=1, hidden_size=8, num_attention_heads=2,
                                                   num_key_value_heads=1)), room=4)
    layer = cache.layers[0]
    parts = [torch.randn(2, 1, n, 4) for n in (3, 1, 1, 1, 1, 1)]
    layer.update(parts[0], -parts[0])
    store = layer._store[0]
    layer.update(parts[1], -parts[1])
    assert layer._store[0] is store  # appended into the room, no new tensor
    assert torch.equal(layer.keys, torch.cat(parts[:2], dim=-2)) and torch.equal(layer.values, -layer.keys)
    clone = copy.copy(layer)  # shares the store: its first update must move to a store of its own
    clone.update(parts[2], -parts[2])
    layer.update(parts[3], -parts[3])
    assert torch.equal(clone.keys, torch.cat(parts[:3], dim=-2))
    assert torch.equal(layer.keys, torch.cat([*parts[:2], parts[3]], dim=-2))
    layer.batch_select_indices(torch.tensor([1]))
    layer.update(parts[4][1:], -parts[4][1:])
    assert torch.equal(layer.keys, torch.cat([*parts[:2], parts[3], parts[4]], dim=-2)[1:])
    wide = expand_cache(cache, 3)  # a prefix seen by three rows (stride-0 views) grows into a real store
    wide.layers[0].update(parts[5][:1].expand(3, -1, -1, -1), parts[5][:1].expand(3, -1, -1, -1))
    assert wide.layers[0].keys.shape == (3, 1, 7, 4) and layer.keys.shape == (1, 1, 6, 4)


def test_rows_leaving_a_growing_cache_move_down_in_its_store() -> None:
    import torch
    from transformers import LlamaConfig

    from evalkit.backends._hf_cache import decoding_cache, empty_cache

    def grown(rows: int) -> tuple[Any, torch.Tensor]:
        cache = decoding_cache(empty_cache(LlamaConfig(num_hidden_layers=1, hidden_size=8, num_attention_heads=2,
                                                       num_key_value_heads=1)), room=4)
        keys = torch.randn(rows, 1, 3, 4)
        cache.layers[0].update(keys, -keys)
        return cache.layers[0], keys

    layer, keys = grown(4)
    store = layer._store[0].data_ptr()
    layer.batch_select_indices(torch.tensor([0, 2, 3]))  # ascending: moved down in place, no new store
    assert layer._store[0].data_ptr() == store
    assert torch.equal(layer.keys, keys[[0, 2, 3]]) and torch.equal(layer.values, -keys[[0, 2, 3]])
    step = torch.randn(3, 1, 1, 4)
    layer.update(step, -step)
    assert torch.equal(layer.keys, torch.cat([keys[[0, 2, 3]], step], dim=-2))
    layer, keys = grown(3)
    layer.batch_select_indices(torch.tensor([2, 0]))  # reordered rows: selected into a new tensor
    assert torch.equal(layer.keys, keys[[2, 0]]) and torch.equal(layer.values, -keys[[2, 0]])


def test_joined_prefill_parts_decode_into_the_store_they_were_written_to() -> None:
    import torch
    from transformers import LlamaConfig

    from evalkit.backends._hf_cache import empty_cache, expand_cache
    from evalkit.backends._hf_generate import join_caches

    config = LlamaConfig(num_hidden_layers=1, hidden_size=8, num_attention_heads=2, num_key_value_heads=1)
    prefix = empty_cache(config)
    shared = torch.randn(1, 1, 2, 4)
    prefix.update(shared, -shared, 0)
    parts, suffixes = [], [torch.randn(2, 1, 3, 4), torch.randn(1, 1, 1, 4)]
    for suffix in suffixes:  # two prefill parts after a 2-token prefix: 3 and 1 suffix tokens
        part = expand_cache(prefix, suffix.shape[0])
        part.update(suffix, -suffix, 0)
        parts.append(part)
    layer = join_caches(parts, 2, room=4).layers[0]
    store = layer._store[0].data_ptr()
    assert layer._store[0].shape[-2] == 5 + 4  # width + room, allocated once
    step = torch.randn(3, 1, 1, 4)
    layer.update(step, -step)
    assert layer._store[0].data_ptr() == store  # the first decoding step appends: no move to a new store
    padded = torch.cat([suffixes[1].new_zeros(1, 1, 2, 4), suffixes[1]], dim=-2)  # left-padded to the widest
    expected = torch.cat([shared.expand(3, -1, -1, -1), torch.cat([suffixes[0], padded]), step], dim=-2)
    assert torch.equal(layer.keys, expected) and torch.equal(layer.values, -expected)
