"""Generation against lm-eval 0.4.13: the same generate_until prompts, lm-eval's hf backend vs evalkit natively.

    python benchmarks/generation_vs_lmeval.py [--subject computer_network] [--limit 16] [--max-tokens 48]

C-Eval questions (DATA/ceval/val/<subject>_val.csv) as a generate_until task: lm-eval's own ceval-valid
config (its prompt, description and dev-set few-shot examples) with the output type switched to
generate_until (stop at a newline, `--max-tokens` new tokens, greedy). lm-eval's hf backend (batch
`--batch-size`, default 8) runs it 0-shot and 5-shot; the prompts it built are then continued by evalkit's
transformers backend (`HFBackend.complete`: batched, prefix-shared generation) with the same stop and length.
Both use the embedded SmolLM2 as its cached safetensors folder, float32, CPU, `--threads` torch threads.

Prints per shot count: each side's generation time (the time inside lm-eval's `generate_until` vs inside
`complete`; model loading is printed separately), the ratio evalkit / lm-eval (issue 19's target: <= 0.5
0-shot, <= 0.3 5-shot) and how many outputs are identical. Ratios are measured in the same run on the same
machine; this is not a timed test.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]

_OVERRIDES = """output_type: generate_until
doc_to_choice: null
doc_to_target: "{{answer}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: %d
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""


def _task(subject: str, data_dir: Path, work: Path, max_tokens: int) -> str:
    """lm-eval's ceval-valid config for `subject` on local files, as a generate_until task."""
    from evalkit.lmeval._reference import write_mc_tasks

    (name,) = write_mc_tasks("ceval", [subject], data_dir, work)
    yaml_path = work / f"{name}.yaml"
    yaml_path.write_text(yaml_path.read_text(encoding="utf-8") + _OVERRIDES % max_tokens, encoding="utf-8")
    return name


def run_lmeval(lm: Any, task: str, work: Path, limit: int, shots: int) -> tuple[list[str], list[str], float]:
    """lm-eval's own evaluation; the prompts it sent, the outputs it got, and its generate_until time."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    seen: dict[str, Any] = {}
    original = type(lm).generate_until

    def timed(requests: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        outputs = original(lm, requests, *args, **kwargs)
        seen.update(seconds=time.perf_counter() - started, prompts=[r.args[0] for r in requests], outputs=outputs)
        return outputs

    lm.generate_until = timed
    lm_eval.simple_evaluate(model=lm, tasks=[task], num_fewshot=shots, limit=limit, bootstrap_iters=0,
                            task_manager=TaskManager(include_path=str(work), include_defaults=False))
    return list(seen["prompts"]), list(seen["outputs"]), float(seen["seconds"])


def run_evalkit(backend: Any, prompts: list[str], max_tokens: int) -> tuple[list[str], float]:
    """evalkit's transformers backend continuing the same prompts (raw text, stop at a newline, greedy)."""
    from evalkit.types import GenConfig

    started = time.perf_counter()
    completions = backend.complete(prompts, GenConfig(max_tokens=max_tokens, stop=("\n",)))
    return [c.text for c in completions], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("EVALKIT_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--subject", default="computer_network")
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--shots", default="0,5")
    parser.add_argument("--threads", type=int, default=1)
    a = parser.parse_args()

    import torch

    from evalkit.backends import load_backend
    from evalkit.backends._hf_load import _gguf_to_cache
    from evalkit.lmeval._reference import _hflm

    torch.set_num_threads(a.threads)
    folder = str(_gguf_to_cache("smollm2-gguf")[0])
    work = Path(tempfile.mkdtemp(prefix="gen_vs_lmeval_"))
    task = _task(a.subject, Path(a.data_dir), work, a.max_tokens)
    started = time.perf_counter()
    lm = _hflm(folder, a.batch_size, None)
    lm_load = time.perf_counter() - started
    started = time.perf_counter()
    backend = load_backend("smollm2", {"threads": str(a.threads), "dtype": "float32"})
    backend = backend.load() if hasattr(backend, "load") else backend  # built lazily: load it outside the timing
    ek_load = time.perf_counter() - started
    print(f"C-Eval {a.subject}, {a.limit} prompts, max {a.max_tokens} new tokens, greedy, SmolLM2 float32 CPU, "
          f"{a.threads} thread(s); model load: lm-eval {lm_load:.1f} s, evalkit {ek_load:.1f} s")
    for shots in (int(s) for s in a.shots.split(",")):
        prompts, reference, t_lm = run_lmeval(lm, task, work, a.limit, shots)
        outputs, t_ek = run_evalkit(backend, prompts, a.max_tokens)
        same = sum(x == y for x, y in zip(reference, outputs))
        target = "<= 0.5" if shots == 0 else "<= 0.3"
        print(f"  {shots}-shot ({len(prompts)} prompts, mean {sum(map(len, prompts)) / len(prompts):.0f} chars): "
              f"lm-eval hf (batch {a.batch_size}) {t_lm:7.1f} s | evalkit {t_ek:7.1f} s | "
              f"ratio {t_ek / t_lm:.2f} (target {target}) | identical outputs {same}/{len(prompts)}")
        chars = sum(map(len, outputs)) / max(1, len(outputs))
        stats = getattr(getattr(backend, "generator", None), "stats", None)
        print(f"    outputs: mean {chars:.0f} chars, first {outputs[0]!r}"
              + (f"; evalkit generator stats so far {stats.as_dict()}" if stats is not None else ""))
        for i, (x, y) in enumerate(zip(reference, outputs)):
            if x != y:
                print(f"    differs at {i}: lm-eval {x!r} vs evalkit {y!r}")


if __name__ == "__main__":
    main()
