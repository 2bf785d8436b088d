"""Benchmark: a small local judge in generative mode vs probability mode on official MT-Bench answers.

For each mode it judges turn 1 of the first N non-math MT-Bench questions for each model's official answer
file (FastChat model_answer, ../shared/data/mt_bench/model_answer) and prints the valid rate, seconds per
judgment, per-model mean scores, and the Spearman correlation of the model ranking with the published
GPT-4-judge MT-Bench scores (LMSYS leaderboard, 22 June 2023: https://lmsys.org/blog/2023-06-22-leaderboard).
No threshold: the figures go into the README.

    python benchmarks/judge_modes.py --data-dir ../shared/data --judge-model smollm2 --questions 20 \
        --out benchmarks/results/judge_modes.json

Results are written after every model and mode, so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

# Published MT-Bench scores (GPT-4 single-answer grading), LMSYS leaderboard of 22 June 2023.
PUBLISHED = {
    "gpt-4": 8.99, "gpt-3.5-turbo": 7.94, "claude-v1": 7.90, "claude-instant-v1": 7.85, "vicuna-33b-v1.3": 7.12,
    "wizardlm-30b": 7.01, "guanaco-33b": 6.53, "tulu-30b": 6.43, "guanaco-65b": 6.41,
    "oasst-sft-7-llama-30b": 6.41, "palm-2-chat-bison-001": 6.40, "vicuna-13b-v1.3": 6.39, "mpt-30b-chat": 6.39,
    "wizardlm-13b": 6.35, "vicuna-7b-v1.3": 6.00, "baize-v2-13b": 5.75, "nous-hermes-13b": 5.51,
    "mpt-7b-chat": 5.42, "gpt4all-13b-snoozy": 5.41, "koala-13b": 5.35, "mpt-30b-instruct": 5.22,
    "falcon-40b-instruct": 5.17, "h2ogpt-oasst-open-llama-13b": 4.63, "alpaca-13b": 4.53, "chatglm-6b": 4.50,
}
DEFAULT_MODELS = ("gpt-4", "gpt-3.5-turbo", "claude-v1", "vicuna-33b-v1.3", "vicuna-7b-v1.3", "koala-13b",
                  "falcon-40b-instruct", "alpaca-13b")


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    p.add_argument("--judge-model", default="smollm2")
    p.add_argument("--models", default=",".join(DEFAULT_MODELS))
    p.add_argument("--questions", type=int, default=20)
    p.add_argument("--modes", default="probability,generate")
    p.add_argument("--max-tokens", type=int, default=128, help="generative mode: judge output budget")
    p.add_argument("--order", choices=("mode", "model"), default="mode")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/judge_modes.json"))
    return p.parse_args(argv)


def _spearman(means: dict[str, float]) -> float | None:
    from scipy.stats import spearmanr

    models = [m for m in means if m in PUBLISHED]
    if len(models) < 3:
        return None
    rho = spearmanr([means[m] for m in models], [PUBLISHED[m] for m in models]).statistic
    return float(rho)


def _judge(mode: str, backend: Any, max_tokens: int) -> Any:
    from evalkit.judges import GenerativeJudge, ProbabilityJudge, load_judge_definition

    name = "mt-bench-single-prob" if mode == "probability" else "mt-bench-single"
    definition = load_judge_definition(name)
    if mode == "generate":
        definition = definition.model_copy(update={"max_tokens": max_tokens, "max_retries": 0})
    return (ProbabilityJudge if mode == "probability" else GenerativeJudge)(definition, backend, name=mode)


def _judge_model(mode: str, judge: Any, model: str, items: list[Any], report: dict[str, Any], save: Any) -> None:
    """Judge one model's items in one mode (in chunks, printing progress) and update the report."""
    entry = report["modes"].setdefault(mode, {"judge": judge.definition.name, "models": {}})
    if model in entry["models"]:
        return
    start = time.perf_counter()
    votes = []
    for i in range(0, len(items), 5):
        votes += [v[0] for v in judge.judge(items[i:i + 5])]
        print(f"  {mode} {model}: {len(votes)}/{len(items)} ({time.perf_counter() - start:.0f}s)", flush=True)
    seconds = time.perf_counter() - start
    valid = [float(v.value) for v in votes if v.value is not None]
    masses = [v.parts[0].valid_mass for v in votes if v.parts[0].valid_mass is not None]
    entry["models"][model] = {
        "mean": sum(valid) / len(valid) if valid else None, "valid": len(valid), "n": len(votes),
        "seconds": round(seconds, 2), "rules": dict(Counter(str(v.parts[0].rule) for v in votes)),
        "mean_valid_mass": sum(masses) / len(masses) if masses else None,
        "low_confidence": sum(v.parts[0].low_confidence for v in votes)}
    print(f"{mode:12s} {model:22s} mean={entry['models'][model]['mean']} valid={len(valid)}/{len(votes)} "
          f"{seconds / len(votes):.1f}s/judgment", flush=True)
    _finish(entry)
    save()


def _finish(entry: dict[str, Any]) -> None:
    rows = entry["models"].values()
    n = sum(r["n"] for r in rows)
    entry["valid_rate"] = sum(r["valid"] for r in rows) / n if n else None
    entry["seconds_per_judgment"] = sum(r["seconds"] for r in rows) / n if n else None
    entry["spearman_vs_published"] = _spearman({m: r["mean"] for m, r in entry["models"].items()
                                                if r["mean"] is not None})


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    from evalkit.backends import load_backend
    from evalkit.judges import build_items, load_judge_definition, load_model_answers, load_questions

    args = _args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    questions = [q for q in load_questions(args.data_dir, hub=False) if q.category != "math"][: args.questions]
    answers = load_model_answers(args.data_dir / "mt_bench" / "model_answer", models)
    definition = load_judge_definition("mt-bench-single")
    items_by_model = {m: build_items(definition, questions, {m: answers[m]}, turns=(1,)) for m in models}
    report: dict[str, Any] = {"judge_model": args.judge_model, "questions": [q.question_id for q in questions],
                              "models": models, "published": {m: PUBLISHED.get(m) for m in models},
                              "generate_max_tokens": args.max_tokens, "modes": {}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.is_file():  # resume: models already judged in a mode are skipped
        previous = json.loads(args.out.read_text())
        if previous.get("questions") == report["questions"] and previous.get("judge_model") == args.judge_model:
            report["modes"] = previous.get("modes", {})

    def save() -> None:
        args.out.write_text(json.dumps(report, indent=1) + "\n")

    start = time.perf_counter()
    backend = load_backend(args.judge_model)
    report["load_seconds"] = round(time.perf_counter() - start, 1)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    judges = {mode: _judge(mode, backend, args.max_tokens) for mode in modes}
    if args.order == "model":  # an interrupted run has both modes for the models it finished
        for model, items in items_by_model.items():
            for mode in modes:
                _judge_model(mode, judges[mode], model, items, report, save)
    else:  # every model in the first mode before the next mode starts
        for mode in modes:
            for model, items in items_by_model.items():
                _judge_model(mode, judges[mode], model, items, report, save)
    for mode, entry in report["modes"].items():
        print(f"{mode}: valid rate {entry['valid_rate']:.3f}, {entry['seconds_per_judgment']:.1f} s/judgment, "
              f"Spearman vs published {entry['spearman_vs_published']}")
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
