"""CoT C-Eval through `evalkit serve`: sequential (concurrency 1) vs concurrency 8, and in-process.

    python benchmarks/cot_serve.py --data-dir ../shared/data [--subject computer_network] [--limit 20]
                                   [--max-tokens 256] [--model smollm2]

One model is loaded once and served on 127.0.0.1 by `evalkit serve`'s app (its request batching on); the same
`mode=cot` run is made three ways and the script prints each wall time, the ratios, and whether the extracted
letters are identical (greedy decoding: they must be). Not a timed test: figures depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from evalkit.backends import load_backend
from evalkit.runner import RunOptions, execute
from evalkit.server import create_app, serve_in_thread


def _run(options: dict[str, Any], out: Path, **extra: Any) -> tuple[float, list[Any]]:
    started = time.perf_counter()
    run = execute(RunOptions(output=out, **options, **extra))
    seconds = time.perf_counter() - started
    rows = [json.loads(line) for line in (run / "samples" / "ceval.jsonl").read_text(encoding="utf-8").splitlines()]
    return seconds, [(r["id"], r["prediction"]) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--subject", default="computer_network")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--max-tokens", default="256")
    parser.add_argument("--model", default="smollm2")
    ns = parser.parse_args()
    options = {"tasks": f"ceval:{ns.subject}", "limit": ns.limit, "data_dir": ns.data_dir, "quiet": True,
               "no_cache": True, "task_args": {"mode": "cot", "max_tokens": ns.max_tokens}}
    backend = load_backend(ns.model)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        local, local_letters = _run(options, root / "local", model=backend)
        with serve_in_thread(create_app(backend, ns.model)) as url:
            one, one_letters = _run(options, root / "c1", model=f"openai:{ns.model}", base_url=url, concurrency=1)
            eight, eight_letters = _run(options, root / "c8", model=f"openai:{ns.model}", base_url=url,
                                        concurrency=8)
    print(f"CoT C-Eval {ns.subject}, {len(local_letters)} questions, max_tokens {ns.max_tokens}, {ns.model}")
    print(f"in-process:                {local:8.1f} s")
    print(f"evalkit serve, sequential: {one:8.1f} s")
    print(f"evalkit serve, conc. 8:    {eight:8.1f} s   (sequential / conc. 8 = {one / eight:.2f}x)")
    print(f"identical letters: in-process vs sequential {local_letters == one_letters}, "
          f"sequential vs conc. 8 {one_letters == eight_letters}")


if __name__ == "__main__":
    main()
