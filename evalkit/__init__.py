"""evalkit: evaluate large language models and publish the results as static leaderboards."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from evalkit._lazy import lazy_getattr

if TYPE_CHECKING:
    from evalkit.api import RunResult

# libgomp's default wait policy (spin a while, then sleep) makes every parallel region of PyTorch pay a slow
# wake-up of the sleeping worker threads on virtual machines: measured on a 2-vCPU VM, decoding one token of
# SmolLM2-135M took 0.1-0.66 s with the default and 0.055 s with an explicit policy, and a 481-token prefill
# 10 s against 2 s. Either explicit policy avoids it; PASSIVE leaves idle cores free. Must precede the first
# `import torch` (the OpenMP runtime reads it once); a value already in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
__all__ = ["RunResult", "__version__", "evaluate"]


def evaluate(*args: Any, **kwargs: Any) -> Any:
    """Run an evaluation in-process and return a RunResult (see `evalkit.api.evaluate`)."""
    from evalkit.api import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


__getattr__ = lazy_getattr("evalkit", {"RunResult": "evalkit.api"}, globals())
