"""Weights packed once for oneDNN, used by the matrix products of batched decoding on CPU.

A decoding step multiplies one row per running sequence by every weight matrix of the model. With more than
one row, PyTorch's CPU build sends a float32 `linear` to MKL's sgemm, which lays the weight out anew on every
call. oneDNN, given the weight laid out once ahead of time (`mkldnn._reorder_linear_weight`), computes the
same product in about half the time for the output projection (49,152 x 576 on 2 to 64 rows) and 10-50 %
less for the layers' projections; measured with one thread on the 2-core AMD EPYC machine this project is
built on, where SmolLM2's decoding step at 8 rows went from 243 to 197 ms.

Only decoding uses the packed weights (`decoding_kernels()`, entered by `Generator.forward`, on steps of at
most `MAX_ROWS` rows and one position each). Scoring, prompt passes and single-row steps (MKL's
matrix-vector path is as fast) keep the stock kernels, so log-likelihoods and lm-eval parity do not move. The
two kernels sum in a different order, so logits differ in the last bits (about 1e-6); greedy outputs are
checked token for token against unpacked generation in the tests and benchmarks.

The packed copy costs the linear weights' memory once more, so `auto` packs only float32 models on CPU whose
linear weights total at most `AUTO_LIMIT_BYTES`. One layer of each weight shape is checked against the stock
kernel when packed (layers of one shape run the same oneDNN kernel): a PyTorch build whose oneDNN ops are
missing or disagree leaves the model as it was. A weight changed after packing (a model evaluated between
training steps) is noticed by its tensor's version counter and packed anew.
"""

from __future__ import annotations

import contextlib
import threading
import types
from collections.abc import Iterator
from typing import Any

__all__ = ["AUTO_LIMIT_BYTES", "MAX_ROWS", "decoding_kernels", "pack_linears", "packed_layers"]

AUTO_LIMIT_BYTES = 2 << 30
MAX_ROWS = 256  # beyond this the product is no longer small enough for the packing to matter
_state = threading.local()


@contextlib.contextmanager
def decoding_kernels() -> Iterator[None]:
    """Within this block (on this thread), packed layers run decoding-sized inputs through oneDNN."""
    previous = getattr(_state, "decoding", False)
    _state.decoding = True
    try:
        yield
    finally:
        _state.decoding = previous


def packed_layers(model: Any) -> int:
    """How many of `model`'s linear layers carry a packed weight."""
    return sum(1 for module in model.modules() if "_evalkit_packed" in vars(module))


def pack_linears(model: Any, mode: str = "auto") -> int:
    """Pack `model`'s float32 CPU `nn.Linear` weights for decoding; returns how many layers were packed.

    `mode` is `auto` (only when the packed copies total at most `AUTO_LIMIT_BYTES`), `true` (whatever the
    size) or `false` (nothing; layers packed by an earlier call go back to the stock kernel). Nothing is
    packed when oneDNN is unavailable or a packed layer disagrees with the stock kernel. A layer whose weight
    is replaced or changed in place afterwards (an optimizer step, `load_state_dict`) is packed anew at its
    next decoding step.
    """
    import torch

    layers = [m for m in model.modules() if type(m) is torch.nn.Linear and _eligible(m)]
    if mode == "false" or not torch.backends.mkldnn.is_available() or (
            mode == "auto" and sum(m.weight.numel() * 4 for m in layers) > AUTO_LIMIT_BYTES):
        for layer in layers:
            _unpack(layer)
        return 0
    checked: set[tuple[int, int, bool]] = set()
    try:
        for layer in layers:
            shape = (layer.out_features, layer.in_features, layer.bias is not None)
            _pack(layer, check=shape not in checked)
            checked.add(shape)
    except (RuntimeError, AttributeError, _Disagrees):
        for layer in layers:
            _unpack(layer)
        return 0
    return len(layers)


class _Disagrees(Exception):
    """A packed layer's product differs from the stock kernel's beyond float rounding."""


def _eligible(layer: Any) -> bool:
    import torch

    weight = layer.weight
    ours_or_stock = "forward" not in vars(layer) or "_evalkit_packed" in vars(layer)
    return (weight.device.type == "cpu" and weight.dtype == torch.float32 and weight.dim() == 2
            and not hasattr(layer, "_hf_hook") and ours_or_stock)


def _pack(layer: Any, *, check: bool) -> None:
    import torch

    with torch.no_grad():
        _repack(layer)
        if check:
            probe = torch.randn(2, layer.in_features, generator=torch.Generator().manual_seed(0))
            stock = torch.nn.functional.linear(probe, layer.weight, layer.bias)
            ours = _packed_product(layer, probe)
            if not torch.allclose(ours, stock, rtol=1e-4, atol=1e-5 * float(stock.abs().max()) + 1e-6):
                raise _Disagrees(repr(layer))
    layer.forward = types.MethodType(_forward, layer)


def _repack(layer: Any) -> Any:
    """Lay the layer's current weight out for oneDNN; remembers which tensor, at which version, it came from."""
    import torch

    weight = layer.weight
    packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach())
    layer._evalkit_packed = (weight, weight._version, packed)
    return packed


def _unpack(layer: Any) -> None:
    layer.__dict__.pop("forward", None)
    layer.__dict__.pop("_evalkit_packed", None)


def _packed_product(layer: Any, x: Any) -> Any:
    import torch

    source, version, packed = layer._evalkit_packed
    if layer.weight is not source or source._version != version:
        with torch.no_grad():
            packed = _repack(layer)
    return torch.ops.mkldnn._linear_pointwise(x, packed, layer.bias, "none", [], "")


def _forward(self: Any, x: Any) -> Any:
    import torch

    one_position = x.dim() == 2 or (x.dim() == 3 and x.shape[1] == 1)
    if (getattr(_state, "decoding", False) and one_position and 2 <= x.shape[0] <= MAX_ROWS
            and x.dtype == torch.float32 and not x.requires_grad):
        return _packed_product(self, x)
    return torch.nn.functional.linear(x, self.weight, self.bias)
