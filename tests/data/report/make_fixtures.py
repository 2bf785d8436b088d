"""Writes the report test fixtures (deterministic) and synthetic runs of any size.

    python tests/data/report/make_fixtures.py          # rewrites tests/data/report/fixture_runs and lmeval/ (not "runs/": .gitignore hides that name)

The numbers are invented; the shapes follow evalkit's results.json and lm-eval 0.4's results_*.json.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PAYLOAD = '<script>window.__pwned=1;document.title="pwned"</script><img src=x onerror="window.__pwned=2">'
CEVAL_GROUPS = ("STEM", "Social Science", "Humanities", "Other", "hard")
CMMLU_GROUPS = ("STEM", "Social Science", "Humanities", "Other", "China specific")
MT_CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")


def _acc(rng: random.Random, base: float, n: int) -> dict[str, Any]:
    acc = round(min(0.95, max(0.05, base + rng.uniform(-0.08, 0.08))), 4)
    return {"acc": acc, "acc_stderr": round((acc * (1 - acc) / n) ** 0.5, 4), "n": n}


def _mc_task(rng: random.Random, base: float, subjects: tuple[str, ...], groups: tuple[str, ...]) -> dict[str, Any]:
    subtasks = {s: _acc(rng, base, 40) for s in subjects}
    grouped = {g: {**_acc(rng, base, 120), "acc_macro": round(base + rng.uniform(-0.05, 0.05), 4)} for g in groups}
    metrics = {**{k: v for k, v in _acc(rng, base, 40 * len(subjects)).items() if k != "n"},
               "acc_norm": round(base + 0.01, 4), "acc_macro": round(base - 0.01, 4)}
    return {"metrics": metrics, "groups": grouped, "subtasks": subtasks, "n": 40 * len(subjects),
            "info": {"kind": "multiple_choice", "num_fewshot": 5}}


def _ppl_task(rng: random.Random, scale: float) -> dict[str, Any]:
    word = round(scale * rng.uniform(0.9, 1.1), 3)
    return {"metrics": {"token_perplexity": round(word / 1.6, 3), "word_perplexity": word,
                        "byte_perplexity": round(1.5 + scale / 100, 4), "bits_per_byte": round(0.6 + scale / 300, 4)},
            "n": 62, "info": {"kind": "perplexity"}}


def _mt_task(rng: random.Random, base: float, *, ranking: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    groups = {c: {"score": round(min(10, max(1, base + rng.uniform(-2, 2))), 2), "n": 20} for c in MT_CATEGORIES}
    task: dict[str, Any] = {
        "metrics": {"score": base, "score_stderr": 0.11, "turn1": round(base + 0.4, 2), "turn2": round(base - 0.4, 2)},
        "groups": groups, "n": 160,
        "info": {"kind": "multiturn_judge", "judge": "single-v1",
                 "reliability": {"valid_rate": 0.97, "cohen_kappa": 0.62, "fleiss_kappa": 0.58,
                                 "position_consistency": 0.81}}}
    if ranking:
        task["ranking"] = ranking
    return task


def _longbench_task(rng: random.Random, base: float) -> dict[str, Any]:
    datasets = {"narrativeqa": "single-doc QA", "multifieldqa_zh": "single-doc QA", "hotpotqa": "multi-doc QA",
                "gov_report": "summarization", "lcc": "code"}
    subtasks = {d: {"score": round(base + rng.uniform(-10, 10), 2), "n": 20} for d in datasets}
    groups = {c: {"score": round(base + rng.uniform(-8, 8), 2), "n": 20 * list(datasets.values()).count(c)}
              for c in dict.fromkeys(datasets.values())}
    buckets = {b: {"score": round(base + d, 2), "n": 30} for b, d in (("0-4k", 6), ("4-8k", 0), ("8k+", -7))}
    return {"metrics": {"score": base}, "groups": groups, "subtasks": subtasks, "length_buckets": buckets,
            "n": 100, "info": {"kind": "longcontext"}}


def _write_run(root: Path, run_id: str, model: dict[str, Any], tasks: dict[str, Any],
               samples: dict[str, list[dict[str, Any]]], **extra: Any) -> None:
    path = root / run_id
    (path / "samples").mkdir(parents=True, exist_ok=True)
    results = {"run_id": run_id, "created": f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}T{run_id[9:11]}:"
               f"{run_id[11:13]}:{run_id[13:15]}+00:00", "model": model,
               "config": {"tasks": ",".join(tasks), "num_fewshot": 5, "seed": 0, "limit": None},
               "tasks": tasks, "versions": {"evalkit": "0.1.0", "torch": "2.13.0", "transformers": "5.23.0"},
               "timing": {**{t: 12.5 for t in tasks}, "total": 12.5 * len(tasks)}, **extra}
    (path / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    manifest = {"seed": 0, "task_specs": {t: f"sha256:{abs(hash(t)) % 10**12:012d}" for t in sorted(tasks)},
                "data_files": {f"{t}/test.csv": "sha256:" + "ab" * 32 for t in sorted(tasks)},
                "versions": results["versions"]}
    manifest["task_specs"] = {t: "sha256:" + format(sum(map(ord, t)) * 7919, "x").zfill(64) for t in sorted(tasks)}
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    for task, lines in samples.items():
        with (path / "samples" / f"{task}.jsonl").open("w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(json.dumps(line, ensure_ascii=False) + "\n")


def _mc_samples(rng: random.Random, n: int, *, payload: bool) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        correct = rng.random() < 0.5
        prediction = "ABCD"[i % 4] if i or not payload else PAYLOAD
        out.append({"id": f"ceval-{i:03d}", "subset": ("computer_network", "law", "physician")[i % 3],
                    "doc_index": i, "prompt": f"以下是中国关于计算机网络考试的单项选择题。\n问题 {i}: 哪个协议…？\n答案：",
                    "target": "ABCD"[(i + (0 if correct else 1)) % 4], "prediction": prediction, "correct": correct,
                    "choice_logprobs": {k: round(-rng.uniform(0.5, 4), 3) for k in "ABCD"}})
    if payload:
        out[1]["target"] = "needle-target " + PAYLOAD
    return out


def _mt_samples(rng: random.Random, n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        valid = i % 5 != 3
        votes = [{"judge": "gpt-4", "score": rng.randint(3, 9), "raw": "Rating: [[7]]", "valid": True,
                  "reasoning": f"The answer is helpful. {PAYLOAD if i == 0 else ''}"},
                 {"judge": "qwen-judge", "score": rng.randint(3, 9) if valid else None, "raw": "no rating here",
                  "valid": valid, "reasoning": "Could not parse a rating" if not valid else "Fine."}]
        out.append({"id": f"mt-{81 + i}", "subset": MT_CATEGORIES[i % 8], "doc_index": i,
                    "prompt": [f"Question {81 + i}, turn one?", "And turn two?"], "target": "",
                    "responses": [f"Answer one {'<b>bold</b>' if i == 1 else ''}", "Answer two " + PAYLOAD],
                    "score": float(rng.randint(3, 9)), "votes": votes})
    return out


def write_fixture_runs(root: Path) -> None:
    """Four evalkit runs (two of the same model, to merge) and what each family of task writes."""
    rng = random.Random(7)
    ceval_subjects = ("computer_network", "law", "physician", "high_school_physics")
    cmmlu_subjects = ("agronomy", "anatomy", "chinese_history")
    smollm2 = {"backend": "hf", "model": "smollm2", "revision": "main", "dtype": "float32"}
    _write_run(root, "20261101-100000-smollm2-aaaa", smollm2,
               {"ceval": _mc_task(rng, 0.27, ceval_subjects, CEVAL_GROUPS),
                "cmmlu": _mc_task(rng, 0.26, cmmlu_subjects, CMMLU_GROUPS), "wikitext": _ppl_task(rng, 38.0)},
               {"ceval": _mc_samples(rng, 230, payload=True)})
    _write_run(root, "20261101-120000-smollm2-bbbb", smollm2, {"longbench": _longbench_task(rng, 18.0)}, {})
    ranking = [{"model": m, "rating": r, "ci_low": r - 30, "ci_high": r + 28}
               for m, r in (("gpt-4", 1250.0), ("qwen2.5-0.5b", 980.0), ("vicuna-13b-v1.3", 1050.0))]
    _write_run(root, "20261102-090000-qwen2.5-0.5b-cccc", {"backend": "openai", "model": "qwen2.5-0.5b"},
               {"ceval": _mc_task(rng, 0.45, ceval_subjects, CEVAL_GROUPS),
                "cmmlu": _mc_task(rng, 0.47, cmmlu_subjects, CMMLU_GROUPS),
                "mt_bench": _mt_task(rng, 5.1, ranking=ranking)},
               {"mt_bench": _mt_samples(rng, 16)},
               usage={"prompt_tokens": 123456, "completion_tokens": 45678, "cost_usd": 0.42})
    _write_run(root, "20261103-090000-vicuna-13b-v1.3-dddd", {"backend": "answers", "model": "vicuna-13b-v1.3"},
               {"mt_bench": _mt_task(rng, 6.4)}, {"mt_bench": _mt_samples(rng, 8)})


def write_lmeval_fixture(path: Path) -> None:
    """An lm-eval 0.4 results file with two groups of subtasks and a plain task."""
    def entry(acc: float, alias: str) -> dict[str, Any]:
        return {"alias": alias, "acc,none": acc, "acc_stderr,none": 0.03, "acc_norm,none": acc + 0.01,
                "acc_norm_stderr,none": 0.03}
    results = {"ceval-valid": entry(0.41, "ceval-valid"), "ceval-valid_computer_network": entry(0.38, " - computer_network"),
               "ceval-valid_law": entry(0.44, " - law"), "cmmlu": entry(0.43, "cmmlu"),
               "cmmlu_agronomy": entry(0.40, " - agronomy"), "cmmlu_anatomy": entry(0.46, " - anatomy"),
               "wikitext": {"alias": "wikitext", "word_perplexity,none": 21.7, "word_perplexity_stderr,none": "N/A",
                            "byte_perplexity,none": 1.78, "bits_per_byte,none": 0.83}}
    data = {"results": results, "groups": {"ceval-valid": results["ceval-valid"], "cmmlu": results["cmmlu"]},
            "group_subtasks": {"ceval-valid": ["ceval-valid_computer_network", "ceval-valid_law"],
                               "cmmlu": ["cmmlu_agronomy", "cmmlu_anatomy"], "wikitext": []},
            "configs": {}, "versions": {"ceval-valid": 2.0, "cmmlu": 1.0, "wikitext": 2.0},
            "n-shot": {"ceval-valid_law": 5, "cmmlu_agronomy": 5, "wikitext": 0},
            "higher_is_better": {"wikitext": {"word_perplexity": False}},
            "n-samples": {"ceval-valid_computer_network": {"original": 19, "effective": 19},
                          "ceval-valid_law": {"original": 24, "effective": 24},
                          "cmmlu_agronomy": {"original": 169, "effective": 169},
                          "cmmlu_anatomy": {"original": 148, "effective": 148},
                          "wikitext": {"original": 62, "effective": 62}},
            "config": {"model": "hf", "model_args": "pretrained=Qwen/Qwen2.5-0.5B,dtype=float32", "batch_size": 8,
                       "device": "cpu"},
            "git_hash": "abc1234", "date": 1762000000.5, "lm_eval_version": "0.4.13",
            "transformers_version": "5.23.0", "total_evaluation_time_seconds": "812.3"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def write_synthetic_runs(root: Path, *, models: int = 30, tasks: int = 10, samples: int = 2480) -> None:
    """`models` runs over `tasks` tasks (multiple choice with groups, perplexity, judged) and `samples` samples."""
    rng = random.Random(0)
    per_run = max(1, samples // models)
    subjects = tuple(f"subject_{i:02d}" for i in range(20))
    for m in range(models):
        task_map: dict[str, Any] = {}
        for t in range(tasks):
            kind = t % 3
            name = f"task{t:02d}"
            task_map[name] = (_mc_task(rng, 0.3 + m / 100, subjects, CEVAL_GROUPS) if kind == 0 else
                              _ppl_task(rng, 20 + m) if kind == 1 else _mt_task(rng, 3 + m / 8))
        lines = _mt_samples(rng, per_run) if m else _mt_samples(rng, samples - per_run * (models - 1))
        _write_run(root, f"20261110-{m:06d}-model-{m:02d}-{m:04x}", {"backend": "hf", "model": f"model-{m:02d}"},
                   task_map, {"task02": lines})


if __name__ == "__main__":
    target = HERE / "fixture_runs"
    shutil.rmtree(target, ignore_errors=True)
    write_fixture_runs(target)
    write_lmeval_fixture(HERE / "lmeval" / "results_2026-11-01T12-00-00.500000.json")
    print(f"wrote {target} and {HERE / 'lmeval'}")
