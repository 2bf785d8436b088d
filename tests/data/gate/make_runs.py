"""Regenerates the constructed run directories used by tests/test_gate_*.py and tests/test_api_result_*.py.

    python tests/data/gate/make_runs.py

Per-sample data is constructed (seeded), not produced by a model; the record shapes are the ones evalkit's
task kinds write (multiple choice: `correct`; perplexity: `logprob` + unit counts; LongBench: `score`):
- base/            cmmlu: 200 binary samples over 3 subsets (acc 0.60); wikitext: 40 documents (word perplexity
                   about 37); longbench: 50 per-sample scores in [0, 1]
- noise/           data under another absolute path (manifest); cmmlu: 6 right->wrong and 4 wrong->right flips
                   (a 1-point drop within noise); wikitext and longbench: small changes, up and down in turn
- drop/            cmmlu: 30 right->wrong and 2 wrong->right flips (a 14-point drop); wikitext: every document's
                   log-likelihood 3 % lower (perplexity about 11 % higher); longbench: every score 0.15 lower
- prompt_changed/  identical samples to base/, but the manifest's cmmlu prompt hash differs
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SUBSETS = (("agronomy", 70, "Other"), ("chinese_history", 70, "Humanities"), ("computer_science", 60, "STEM"))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _manifest(prompt: str = "cmmlu-prompt-v1", machine: str = "/home/ci/data") -> dict:
    """The shape evalkit.runner writes; absolute data paths differ between machines."""
    cmmlu_files = {f"{machine}/cmmlu/{split}/{s}.csv": _sha(split + s) for s, _, _ in SUBSETS for split in ("dev", "test")}
    wiki_files = {f"{machine}/wikitext2/wiki.test.raw": _sha("w")}
    return {"seed": 0, "versions": {"evalkit": "0.1.0"},
            "tasks": {"cmmlu": {"spec_sha256": _sha("cmmlu-spec-v1"), "spec_file": "cmmlu.yaml", "version": 1,
                                "prompt_sha256": _sha(prompt), "data_files": cmmlu_files,
                                "data_sha256": _sha("".join(sorted(cmmlu_files.values())))},
                      "wikitext": {"spec_sha256": _sha("wikitext-spec-v1"), "spec_file": "wikitext.yaml",
                                   "version": 1, "prompt_sha256": _sha(""), "data_files": wiki_files,
                                   "data_sha256": _sha("".join(sorted(wiki_files.values())))},
                      "longbench": {"spec_sha256": _sha("longbench-spec-v1"), "spec_file": "longbench.yaml",
                                    "version": 1, "prompt_sha256": _sha("lb"),
                                    "data_files": {f"{machine}/longbench/data/qasper.jsonl": _sha("q")},
                                    "data_sha256": _sha(_sha("q"))}}}


def _base_samples(rng: np.random.Generator) -> tuple[list[dict], list[dict], list[dict]]:
    mc, docs, scored = [], [], []
    for subset, count, _ in SUBSETS:
        correct = rng.permutation(np.arange(count) < round(0.6 * count))
        for i in range(count):
            mc.append({"id": f"{subset}-{i}", "subset": subset, "doc_index": i, "target": "A",
                       "prediction": "A" if correct[i] else "B", "correct": bool(correct[i])})
    for i in range(40):
        words = int(rng.integers(100, 400))
        docs.append({"id": f"wiki/{i}", "subset": "wiki", "doc_index": i, "target": None,
                     "logprob": round(-float(rng.uniform(3.2, 4.0)) * words, 4), "tokens": int(words * 1.3),
                     "words": words, "chars": words * 6, "bytes": words * 6})
    for i in range(50):
        scored.append({"id": f"qasper/{i}", "subset": "qasper", "doc_index": i,
                       "score": round(float(rng.beta(2, 2)), 4)})
    return mc, docs, scored


def _flip(samples: list[dict], rng: np.random.Generator, worse: int, better: int) -> list[dict]:
    out = [dict(s) for s in samples]
    right = [i for i, s in enumerate(out) if s["correct"]]
    wrong = [i for i, s in enumerate(out) if not s["correct"]]
    for i in rng.choice(right, worse, replace=False):
        out[i].update(correct=False, prediction="B")
    for i in rng.choice(wrong, better, replace=False):
        out[i].update(correct=True, prediction="A")
    return out


def _task_results(mc: list[dict], docs: list[dict], scored: list[dict]) -> dict:
    def acc(rows: list[dict]) -> dict:
        p = sum(r["correct"] for r in rows) / len(rows)
        return {"acc": round(p, 6), "acc_stderr": round((p * (1 - p) / (len(rows) - 1)) ** 0.5, 6), "n": len(rows)}

    subtasks = {s: acc([r for r in mc if r["subset"] == s]) for s, _, _ in SUBSETS}
    groups = {g: acc([r for r in mc if r["subset"] in {s for s, _, gg in SUBSETS if gg == g}])
              for g in ("STEM", "Humanities", "Other")}
    logprob = sum(d["logprob"] for d in docs)
    scores = [d["score"] for d in scored]
    return {"cmmlu": {"metrics": acc(mc), "groups": groups, "subtasks": subtasks, "n": len(mc),
                      "info": {"kind": "multiple_choice"}},
            "wikitext": {"metrics": {"word_perplexity": round(math.exp(-logprob / sum(d["words"] for d in docs)), 4),
                                     "token_perplexity": round(math.exp(-logprob / sum(d["tokens"] for d in docs)), 4)},
                         "n": len(docs), "info": {"kind": "perplexity"}},
            "longbench": {"metrics": {"score": round(100 * float(np.mean(scores)), 4)},
                          "subtasks": {"qasper": {"score": round(100 * float(np.mean(scores)), 4), "n": len(scores)}},
                          "n": len(scores), "info": {"kind": "longcontext"}}}


def _write(name: str, mc: list[dict], docs: list[dict], scored: list[dict], manifest: dict) -> None:
    root = HERE / name
    shutil.rmtree(root, ignore_errors=True)
    (root / "samples").mkdir(parents=True)
    results = {"run_id": name, "created": "2026-11-22T16:00:00+00:00",
               "model": {"name": "constructed", "backend": "fake"}, "config": {"seed": 0},
               "tasks": _task_results(mc, docs, scored), "versions": {"evalkit": "0.1.0"}}
    (root / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for task, rows in (("cmmlu", mc), ("wikitext", docs), ("longbench", scored)):
        (root / "samples" / f"{task}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def main() -> None:
    rng = np.random.default_rng(20261122)
    mc, docs, scored = _base_samples(rng)
    _write("base", mc, docs, scored, _manifest())
    updown = np.tile([1.0, -1.0], 50)
    wiggled = [dict(d, logprob=round(d["logprob"] * (1 + 0.004 * float(u)), 4)) for d, u in zip(docs, updown)]
    nudged = [dict(r, score=round(min(1.0, max(0.0, r["score"] + 0.02 * float(u))), 4)) for r, u in zip(scored, updown)]
    _write("noise", _flip(mc, rng, 6, 4), wiggled, nudged, _manifest(machine="/Users/someone/evalkit-data"))
    worse_docs = [dict(d, logprob=round(d["logprob"] * 1.03, 4)) for d in docs]
    worse_scores = [dict(r, score=round(max(0.0, r["score"] - 0.15), 4)) for r in scored]
    _write("drop", _flip(mc, rng, 30, 2), worse_docs, worse_scores, _manifest())
    _write("prompt_changed", mc, docs, scored, _manifest("cmmlu-prompt-v2"))


if __name__ == "__main__":
    main()
