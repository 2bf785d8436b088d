"""Packed oneDNN weights for batched decoding: used only for decoding-sized inputs inside `decoding_kernels()`,
equal to the stock kernel up to float rounding, left out where they cannot be trusted, and changing no token."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from evalkit.backends import _hf_kernels, hf_backend, load_backend
from evalkit.backends._hf_kernels import decoding_kernels, pack_linears, packed_layers
from evalkit.errors import ConfigError
from evalkit.types import GenConfig, LoglikelihoodRequest


def _model(dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(48, 96), torch.nn.SiLU(), torch.nn.Linear(96, 320, bias=False)).to(dtype)


def _stock(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = x
    for layer in model:
        out = torch.nn.functional.linear(out, layer.weight, layer.bias) if isinstance(layer, torch.nn.Linear) \
            else layer(out)
    return out


@pytest.fixture
def product_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    calls: list[tuple[int, ...]] = []
    real = _hf_kernels._packed_product

    def counted(layer: Any, x: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return real(layer, x)

    monkeypatch.setattr(_hf_kernels, "_packed_product", counted)
    return calls


def test_packed_layers_run_only_decoding_sized_inputs_inside_the_block(product_calls: list[Any]) -> None:
    model = _model()
    assert pack_linears(model) == 2 == packed_layers(model)
    product_calls.clear()  # the check made when packing
    with torch.inference_mode():
        prompt = torch.randn(3, 5, 48)  # a prompt pass: several positions per row
        one_row = torch.randn(1, 1, 48)
        for x in (prompt, one_row, torch.randn(4, 1, 48)):
            assert torch.equal(model(x), _stock(model, x))  # outside the block: the stock kernel, bit for bit
        assert product_calls == []
        with decoding_kernels():
            assert torch.equal(model(prompt), _stock(model, prompt))
            assert torch.equal(model(one_row), _stock(model, one_row))
            assert product_calls == []
            for x in (torch.randn(4, 1, 48), torch.randn(8, 48)):  # a decoding step, and last positions only
                torch.testing.assert_close(model(x), _stock(model, x), rtol=1e-5, atol=1e-5)
        assert [shape[0] for shape in product_calls] == [4, 4, 8, 8]
        too_many = torch.randn(_hf_kernels.MAX_ROWS + 1, 48)
        with decoding_kernels():
            model(too_many)
        assert len(product_calls) == 4


def test_modes_and_the_memory_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    assert pack_linears(_model(), "false") == 0
    untouched = _model()
    monkeypatch.setattr(_hf_kernels, "AUTO_LIMIT_BYTES", 1000)
    assert pack_linears(untouched, "auto") == 0 and "forward" not in vars(untouched[0])
    assert pack_linears(_model(), "true") == 2  # true packs whatever the size
    assert pack_linears(_model(torch.bfloat16)) == 0  # only float32 weights


def test_a_kernel_that_disagrees_leaves_the_model_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    real = _hf_kernels._packed_product
    layers_seen = []

    def wrong_on_the_second_layer(layer: Any, x: torch.Tensor) -> torch.Tensor:
        layers_seen.append(layer)
        return real(layer, x) + (1.0 if len(layers_seen) == 2 else 0.0)

    monkeypatch.setattr(_hf_kernels, "_packed_product", wrong_on_the_second_layer)
    model = _model()
    assert pack_linears(model) == 0
    assert packed_layers(model) == 0 and all("forward" not in vars(layer) for layer in model)
    x = torch.randn(4, 1, 48)
    with decoding_kernels():
        assert torch.equal(model(x), _stock(model, x))


def test_a_weight_changed_after_packing_is_packed_anew(product_calls: list[Any]) -> None:
    model = _model()
    pack_linears(model)
    x = torch.randn(4, 1, 48)
    with torch.no_grad():
        model[0].weight.mul_(2.0)  # an optimizer step changes weights in place
    model[2].weight = torch.nn.Parameter(torch.randn(320, 96))  # load_state_dict(assign=True) replaces them
    with torch.inference_mode(), decoding_kernels():
        torch.testing.assert_close(model(x), _stock(model, x), rtol=1e-5, atol=1e-5)
    assert product_calls[-2:] == [(4, 1, 48), (4, 1, 96)]


def test_packing_again_refreshes_and_false_restores_the_stock_layers() -> None:
    model = _model()
    assert pack_linears(model) == 2
    assert pack_linears(model) == 2 == packed_layers(model)  # a second backend over the same model
    assert pack_linears(model, "false") == 0
    assert packed_layers(model) == 0 and all("forward" not in vars(layer) for layer in model)


def test_one_layer_of_each_shape_is_checked(product_calls: list[Any]) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(48, 48), torch.nn.Linear(48, 48), torch.nn.Linear(48, 96))
    assert pack_linears(model) == 3
    assert product_calls == [(2, 48), (2, 48)]  # the probe through the first 48x48 layer and the 96x48 one


def test_the_block_is_per_thread_and_nests() -> None:
    import threading

    seen = []
    with decoding_kernels():
        with decoding_kernels():
            pass
        seen.append(getattr(_hf_kernels._state, "decoding", False))
        thread = threading.Thread(target=lambda: seen.append(getattr(_hf_kernels._state, "decoding", False)))
        thread.start()
        thread.join()
    seen.append(_hf_kernels._state.decoding)
    assert seen == [True, False, False]


@pytest.mark.integration
def test_packed_decoding_changes_no_token_and_waits_until_decoding_has_run_long_enough() -> None:
    from evalkit.backends._hf_generate import PACK_AFTER_STEPS

    # without drafts: the random Llama repeats itself, so drafted steps (several positions, stock kernels) would
    # finish its rows before PACK_AFTER_STEPS one-position steps had run
    plain = {"seed": "5", "max_length": "512", "prompt_lookup": "false"}
    packed = load_backend("tiny-llama", plain)
    stock = load_backend("tiny-llama", {**plain, "packed_decode": "false"})
    prompts = ["Once upon a time", "The capital of France is", "1, 2, 3, 4,", "Hello there, friend"]
    packed.loglikelihood([LoglikelihoodRequest("Once upon", " a time")])
    assert packed.generator.packed_layers == 0  # scoring alone never packs
    short = [GenConfig(max_tokens=6 + i) for i in range(len(prompts))]  # short answers never pay for packing
    assert packed.generate_many(prompts, short, templated=False) == stock.generate_many(prompts, short,
                                                                                        templated=False)
    assert packed.generator.packed_layers == 0 == packed_layers(packed.model)
    configs = [GenConfig(max_tokens=PACK_AFTER_STEPS + 8 + i) for i in range(len(prompts))]  # packs mid-way
    assert packed.generate_many(prompts, configs, templated=False) == \
        stock.generate_many(prompts, configs, templated=False)
    assert packed.generator.packed_layers == packed_layers(packed.model) > 0
    assert stock.generator.packed_layers == 0 == packed_layers(stock.model)
    wrapped = hf_backend(packed.model, packed.tokenizer)  # a model evalkit did not load is left as it is
    assert wrapped.generate_many(prompts, configs, templated=False) == stock.generate_many(prompts, configs,
                                                                                          templated=False)
    assert packed_layers(packed.model) == 0
    with pytest.raises(ConfigError, match="packed_decode=yes: use auto, true or false"):
        load_backend("tiny-llama", {"packed_decode": "yes"})
