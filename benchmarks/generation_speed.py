"""Generation speed: batched, prefix-shared generation vs sequential, and `evalkit perf` against `evalkit serve`.

    python benchmarks/generation_speed.py [--limit 80] [--max-tokens 128] [--requests 16] [--skip-serve]

1. MT-Bench answer generation with the embedded model (SmolLM2, CPU): both turns of the first `--limit`
   questions of DATA/mt_bench/question.jsonl, greedy. Sequential is transformers' own `generate`, one
   prompt at a time (`--model-args gen_batch=1`, what the backend did before batching); batched is the
   default backend (prefix-shared batches, second turns sharing their first turn's prompt). Prints both
   times, the ratio (target >= 3x) and whether every answer is identical.
2. `evalkit serve --model smollm2` in a subprocess, loaded by `evalkit perf` (streamed chat requests, greedy)
   at concurrency 1, 2, 4, 8. Prints output tokens/s per level, the ratio at 8 vs 1 (target >= 3x) and
   whether every level gave the same answers.

Figures are ratios measured in the same run on the same machine; this is not a timed test. `--threads`
(default 1) sets torch's threads in both arms: on a CPU shared with other busy processes, multi-threaded
matrix products with more than one row stall on descheduled OpenMP threads (measured on a 2-core machine at
load 8: a 576x1536 linear layer on 8 rows took 30 ms with 2 threads and 1 ms with 1), which penalises
exactly the batched arm.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _questions(limit: int) -> list[list[str]]:
    data = Path(os.environ.get("EVALKIT_DATA_DIR", ROOT.parent / "shared" / "data"))
    path = data / "mt_bench" / "question.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [list(row["turns"][:2]) for row in rows[:limit]]


def _two_turns(backend: Any, questions: list[list[str]], config: Any) -> tuple[list[str], float]:
    from evalkit.types import Message

    started = time.perf_counter()
    first = [(Message("user", q[0]),) for q in questions]
    answers = [c.text for c in backend.generate(first, config)]
    second = [(*conv, Message("assistant", a), Message("user", q[1]))
              for conv, a, q in zip(first, answers, questions)]
    answers += [c.text for c in backend.generate(second, config)]
    return answers, time.perf_counter() - started


def mt_bench(limit: int, max_tokens: int, threads: int) -> None:
    from evalkit.backends import load_backend
    from evalkit.types import GenConfig

    questions = _questions(limit)
    backend = load_backend("smollm2", {"threads": str(threads)})
    config = GenConfig(max_tokens=max_tokens)
    backend.gen_batch = 1
    sequential, t_seq = _two_turns(backend, questions, config)
    backend.gen_batch = 32
    batched, t_batch = _two_turns(backend, questions, config)
    same = sum(a == b for a, b in zip(sequential, batched))
    print(f"MT-Bench answers ({len(questions)} questions x 2 turns, max_tokens={max_tokens}, SmolLM2 greedy)")
    print(f"  sequential (gen_batch=1): {t_seq:8.1f} s")
    print(f"  batched, prefix-shared:   {t_batch:8.1f} s   speed-up {t_seq / t_batch:.2f}x (target >= 3x)")
    print(f"  identical answers: {same}/{len(sequential)}   generator stats: {backend.generator.stats.as_dict()}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("evalkit serve exited before it was ready")
        try:
            if httpx.get(url + "/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("evalkit serve did not become ready")


def serve_perf(levels: list[int], requests: int, max_tokens: int, limit: int, threads: int,
               window_ms: float | None = None) -> None:
    from evalkit.perf import PerfSettings, run_sweep

    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1"
    server = subprocess.Popen([sys.executable, "-m", "evalkit", "serve", "--model", "smollm2", "--port", str(port),
                               "--log-level", "warning", "--model-args", f"threads={threads}",
                               *(["--batch-window-ms", str(window_ms)] if window_ms is not None else [])], cwd=ROOT)
    try:
        _wait_ready(url, server)
        prompts = tuple(q[0] for q in _questions(max(limit, requests)))[:requests]
        settings = PerfSettings(url, "smollm2", prompts, max_tokens=max_tokens, temperature=0.0)
        texts: dict[int, list[str]] = {}
        report = run_sweep(settings, levels, requests, source="mt_bench first turns", live=False,
                           on_level=lambda level, records: texts.__setitem__(level, [r.text for r in records]))
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"evalkit perf against evalkit serve (SmolLM2, {requests} streamed greedy requests per level, "
          f"max_tokens={max_tokens})")
    print(f"  {'conc':>4} {'req/s':>7} {'out tok/s':>10} {'TTFT p50 ms':>12} {'TPOT p50 ms':>12} "
          f"{'ITL p50 ms':>11} {'latency p50 s':>14} {'errors':>6}")
    for level in report["levels"]:
        print(f"  {level['concurrency']:>4} {level['requests_per_s']:>7.3f} {level['output_tokens_per_s']:>10.2f} "
              f"{level['ttft_ms']['p50'] or 0:>12.1f} {level['tpot_ms']['p50'] or 0:>12.1f} "
              f"{level['itl_ms']['p50'] or 0:>11.1f} {level['latency_s']['p50'] or 0:>14.2f} {level['failed']:>6}")
    by_level = {level["concurrency"]: level for level in report["levels"]}
    low, high = min(by_level), max(by_level)
    ratio = by_level[high]["output_tokens_per_s"] / max(by_level[low]["output_tokens_per_s"], 1e-9)
    same = all(texts[level] == texts[low] for level in texts)
    print(f"  throughput at {high} vs {low}: {ratio:.2f}x (target >= 3x); greedy answers identical at every "
          f"level: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=80, help="MT-Bench questions (80 = all)")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--requests", type=int, default=16, help="requests per concurrency level")
    parser.add_argument("--concurrency", default="1,2,4,8")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in every arm")
    parser.add_argument("--batch-window-ms", type=float, help="evalkit serve's --batch-window-ms (default: its own)")
    parser.add_argument("--skip-mtbench", action="store_true")
    parser.add_argument("--skip-serve", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not args.skip_mtbench:
        mt_bench(args.limit, args.max_tokens, args.threads)
    if not args.skip_serve:
        serve_perf([int(x) for x in args.concurrency.split(",")], args.requests, args.max_tokens, args.limit,
                   args.threads, args.batch_window_ms)


if __name__ == "__main__":
    main()
