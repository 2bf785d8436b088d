"""lm-eval 0.4.13 versus evalkit on the same model, data and prompts: speed, tokens, memory, parity.

Each phase runs in its own subprocess (so peak memory is its own) and in the same session, so the ratios
compare like with like on this machine:

    python benchmarks/speed_parity.py --data-dir ../shared/data \
        --subjects agronomy,anatomy,astronomy,college_medicine --limit 40 --ppl-docs 6 --ppl-max-length 1024

Phases: lm-eval hf (5-shot CMMLU, its own cmmlu task configs on local files), evalkit (prompt_style=lmeval)
with prefix sharing, evalkit without it (prefix_cache=false), and WikiText perplexity for both.
Needs `pip install 'evalkit[lmeval]'` and the embedded model.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _model_dir() -> str:
    from evalkit.backends._hf_load import _gguf_to_cache

    return str(_gguf_to_cache("smollm2-gguf")[0])


def phase_lmeval_mc(a: argparse.Namespace, work: Path) -> dict[str, Any]:
    from evalkit.lmeval import run_lmeval_mc

    r = run_lmeval_mc("cmmlu", a.subjects.split(","), Path(a.data_dir), _model_dir(), work / "lmeval_mc",
                      limit=a.limit, batch_size=a.batch_size)
    return {"scoring_seconds": r.scoring_seconds, "wall_seconds": r.wall_seconds, "requests": r.requests,
            "logprobs": {f"{s}/{i}": v for (s, i), v in r.logprobs.items()}}


def _evalkit_run(a: argparse.Namespace, work: Path, tasks: str, model_args: str, task_args: str | None,
                 limit: int) -> tuple[dict[str, Any], list[dict[str, Any]], float]:
    from evalkit.runner import RunOptions, execute

    started = time.perf_counter()
    path = execute(RunOptions(model="smollm2", tasks=tasks, model_args=model_args, task_args=task_args,
                              limit=limit, data_dir=Path(a.data_dir), output=work / "runs", no_cache=True,
                              quiet=True))
    wall = time.perf_counter() - started
    results = json.loads((path / "results.json").read_text())
    task = tasks.split(":")[0]
    samples = [json.loads(line) for line in (path / "samples" / f"{task}.jsonl").read_text().splitlines()]
    return results, samples, wall


def _scoring_seconds(results: dict[str, Any]) -> float:
    """Time inside the backend's loglikelihood methods: what lm-eval's timer wraps on its side (the task's
    own time, data reading and metrics included, is reported next to it)."""
    return float(results["backend_stats"]["scoring_ms"]) / 1000


def phase_evalkit_mc(a: argparse.Namespace, work: Path, prefix_cache: bool) -> dict[str, Any]:
    args = f"batch_size={a.evalkit_batch_size},prefix_cache={'true' if prefix_cache else 'false'}"
    results, samples, wall = _evalkit_run(a, work, f"cmmlu:{a.subjects}", args, "prompt_style=lmeval", a.limit)
    return {"scoring_seconds": _scoring_seconds(results), "task_seconds": results["timing"]["cmmlu"],
            "wall_seconds": wall,
            "stats": results.get("backend_stats", {}), "acc": results["tasks"]["cmmlu"]["metrics"]["acc"],
            "logprobs": {s["id"]: [s["choice_logprobs"][k] for k in "ABCD"] for s in samples}}


def _wikitext_docs(a: argparse.Namespace) -> list[str]:
    from evalkit.tasks.perplexity import split_documents

    text = (Path(a.data_dir) / "wikitext2" / "wiki.test.raw").read_text(encoding="utf-8")
    return split_documents(text, "wikitext_articles")[:a.ppl_docs]


def phase_lmeval_ppl(a: argparse.Namespace, work: Path) -> dict[str, Any]:
    from evalkit.lmeval import run_lmeval_wikitext

    r = run_lmeval_wikitext(_wikitext_docs(a), _model_dir(), work / "lmeval_ppl", max_length=a.ppl_max_length,
                            batch_size=a.batch_size)
    return {"scoring_seconds": r.scoring_seconds, "wall_seconds": r.wall_seconds, "loglikelihoods": r.loglikelihoods,
            "word_perplexity": r.word_perplexity, "byte_perplexity": r.byte_perplexity,
            "bits_per_byte": r.bits_per_byte}


def phase_evalkit_ppl(a: argparse.Namespace, work: Path) -> dict[str, Any]:
    args = f"batch_size={a.batch_size},max_length={a.ppl_max_length}"
    results, samples, wall = _evalkit_run(a, work, "wikitext", args, None, a.ppl_docs)
    m = results["tasks"]["wikitext"]["metrics"]
    return {"scoring_seconds": _scoring_seconds(results), "task_seconds": results["timing"]["wikitext"],
            "wall_seconds": wall,
            "loglikelihoods": [s["logprob"] for s in samples], "word_perplexity": m["word_perplexity"],
            "byte_perplexity": m["byte_perplexity"], "bits_per_byte": m["bits_per_byte"],
            "stats": results.get("backend_stats", {})}


PHASES = {
    "lmeval-mc": phase_lmeval_mc,
    "evalkit-mc": lambda a, w: phase_evalkit_mc(a, w, True),
    "evalkit-mc-noprefix": lambda a, w: phase_evalkit_mc(a, w, False),
    "lmeval-ppl": phase_lmeval_ppl,
    "evalkit-ppl": phase_evalkit_ppl,
}


def _run_phase(name: str, argv: list[str], work: Path) -> dict[str, Any]:
    out = work / f"{name}.json"
    cmd = [sys.executable, __file__, *argv, "--phase", name, "--work", str(work)]
    print(f"... {name}", file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL if not os.environ.get("BENCH_VERBOSE") else None,
                   stderr=subprocess.DEVNULL if not os.environ.get("BENCH_VERBOSE") else None)
    return json.loads(out.read_text())


def _mc_parity(ref: dict[str, list[float]], got: dict[str, list[float]]) -> tuple[float, float, int]:
    keys = sorted(ref)
    missing = [k for k in keys if k not in got]
    if missing:
        raise SystemExit(f"evalkit lacks {len(missing)} questions present in the reference, e.g. {missing[:3]}")
    delta = max(abs(x - y) for k in keys for x, y in zip(ref[k], got[k]))
    same = sum(1 for k in keys if max(range(4), key=lambda i: (ref[k][i], -i)) == max(range(4), key=lambda i: (got[k][i], -i)))
    return delta, 100.0 * same / len(keys), len(keys)


def report(r: dict[str, dict[str, Any]]) -> dict[str, Any]:
    lm, ek, slow = r["lmeval-mc"], r["evalkit-mc"], r["evalkit-mc-noprefix"]
    d_ref, same_ref, n = _mc_parity(lm["logprobs"], ek["logprobs"])
    d_own, same_own, _ = _mc_parity(slow["logprobs"], ek["logprobs"])
    lp, ep = r["lmeval-ppl"], r["evalkit-ppl"]
    rel = max(abs(x - y) / abs(x) for x, y in zip(lp["loglikelihoods"], ep["loglikelihoods"]))
    rel_metric = max(abs(lp[k] - ep[k]) / abs(lp[k]) for k in ("word_perplexity", "byte_perplexity", "bits_per_byte"))
    stats = ek["stats"]
    summary = {
        "mc_questions": n,
        "mc_lmeval_scoring_s": lm["scoring_seconds"], "mc_evalkit_scoring_s": ek["scoring_seconds"],
        "mc_ratio_scoring": ek["scoring_seconds"] / lm["scoring_seconds"],
        "mc_lmeval_wall_s": lm["wall_seconds"], "mc_evalkit_wall_s": ek["wall_seconds"],
        "mc_ratio_wall": ek["wall_seconds"] / lm["wall_seconds"],
        "mc_evalkit_noprefix_scoring_s": slow["scoring_seconds"], "mc_evalkit_task_s": ek["task_seconds"],
        "ppl_evalkit_task_s": ep["task_seconds"],
        "tokens_processed": stats.get("tokens_processed"), "unique_tokens": stats.get("unique_tokens"),
        "tokens_processed_over_unique": stats["tokens_processed"] / stats["unique_tokens"],
        "tokens_without_sharing": slow["stats"].get("tokens_processed"),
        "parity_vs_lmeval_max_abs_delta": d_ref, "parity_vs_lmeval_same_prediction_pct": same_ref,
        "parity_vs_unoptimised_max_abs_delta": d_own, "parity_vs_unoptimised_same_prediction_pct": same_own,
        "ppl_lmeval_scoring_s": lp["scoring_seconds"], "ppl_evalkit_scoring_s": ep["scoring_seconds"],
        "ppl_ratio_scoring": ep["scoring_seconds"] / lp["scoring_seconds"],
        "ppl_ratio_wall": ep["wall_seconds"] / lp["wall_seconds"],
        "ppl_max_rel_delta_doc_loglikelihood": rel, "ppl_max_rel_delta_metrics": rel_metric,
        "ppl_word_perplexity": [lp["word_perplexity"], ep["word_perplexity"]],
        "peak_rss_mb": {k: round(v["peak_rss_mb"], 1) for k, v in r.items()},
    }
    return summary


def _print(summary: dict[str, Any], a: argparse.Namespace) -> None:
    s = summary
    print(f"5-shot CMMLU, subjects {a.subjects}, {s['mc_questions']} questions, SmolLM2-135M fp32, "
          f"lm-eval batch {a.batch_size}, evalkit batch {a.evalkit_batch_size}")
    print(f"  scoring time   lm-eval {s['mc_lmeval_scoring_s']:8.1f} s   evalkit {s['mc_evalkit_scoring_s']:7.1f} s"
          f"   ratio {s['mc_ratio_scoring']:.3f}   (target <= 0.20)")
    print(f"  (time inside loglikelihood on both sides; evalkit's whole task incl. data and metrics: "
          f"{s['mc_evalkit_task_s']:.1f} s)")
    print(f"  whole phase    lm-eval {s['mc_lmeval_wall_s']:8.1f} s   evalkit {s['mc_evalkit_wall_s']:7.1f} s"
          f"   ratio {s['mc_ratio_wall']:.3f}   (includes model load and lm-eval task indexing)")
    print(f"  tokens processed {s['tokens_processed']} / unique {s['unique_tokens']} = "
          f"{s['tokens_processed_over_unique']:.3f} (target <= 1.1); without sharing {s['tokens_without_sharing']}")
    print(f"  parity vs lm-eval: max |d loglik| {s['parity_vs_lmeval_max_abs_delta']:.2e}, identical predictions "
          f"{s['parity_vs_lmeval_same_prediction_pct']:.1f}%")
    print(f"  parity vs evalkit prefix_cache=false: max |d loglik| {s['parity_vs_unoptimised_max_abs_delta']:.2e}, "
          f"identical {s['parity_vs_unoptimised_same_prediction_pct']:.1f}% "
          f"(unoptimised scoring {s['mc_evalkit_noprefix_scoring_s']:.1f} s)")
    print(f"WikiText-2 perplexity, {a.ppl_docs} articles, max_length {a.ppl_max_length}, disjoint windows")
    print(f"  scoring time   lm-eval {s['ppl_lmeval_scoring_s']:8.1f} s   evalkit {s['ppl_evalkit_scoring_s']:7.1f} s"
          f"   ratio {s['ppl_ratio_scoring']:.3f}   (target <= 0.8)")
    print(f"  (time inside loglikelihood_rolling on both sides; evalkit's whole task: {s['ppl_evalkit_task_s']:.1f} s)")
    print(f"  max relative |d| per-article loglik {s['ppl_max_rel_delta_doc_loglikelihood']:.2e}, metrics "
          f"{s['ppl_max_rel_delta_metrics']:.2e}; word perplexity lm-eval {s['ppl_word_perplexity'][0]:.4f} "
          f"evalkit {s['ppl_word_perplexity'][1]:.4f}")
    print("  peak RSS (MB): " + ", ".join(f"{k} {v}" for k, v in s["peak_rss_mb"].items()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("EVALKIT_DATA_DIR", "../shared/data"))
    p.add_argument("--subjects", default="agronomy,anatomy,astronomy,college_medicine")
    p.add_argument("--limit", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=8, help="lm-eval's batch size (and evalkit's for perplexity)")
    p.add_argument("--evalkit-batch-size", default="auto",
                   help="evalkit's multiple-choice batch size (auto: rows bounded by padding and memory)")
    p.add_argument("--ppl-docs", type=int, default=6)
    p.add_argument("--ppl-max-length", type=int, default=1024)
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.phase:
        work = Path(a.work)
        result = PHASES[a.phase](a, work)
        result["peak_rss_mb"] = _peak_mb()
        (work / f"{a.phase}.json").write_text(json.dumps(result))
        return
    argv = [a for a in sys.argv[1:]]
    with tempfile.TemporaryDirectory(prefix="evalkit-bench-") as tmp:
        work = Path(tmp)
        results = {name: _run_phase(name, argv, work) for name in PHASES}
    summary = report(results)
    _print(summary, a)
    if a.json:
        Path(a.json).write_text(json.dumps(summary, indent=2))
    if not math.isfinite(summary["mc_ratio_scoring"]):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
