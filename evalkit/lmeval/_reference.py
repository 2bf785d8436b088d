"""Run lm-eval 0.4.13 itself on local files, as the reference evalkit's numbers are checked against.

lm-eval's own task configs (its cmmlu / ceval-valid / wikitext YAMLs, found in the installed package) are
`include`d unchanged; only the dataset source is redirected to JSON Lines files written from the local
CSVs with every field kept a string (reading a CSV through `datasets` would turn an option "01" into 1).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import MissingDependency

__all__ = ["LmevalMC", "LmevalPPL", "lmeval_task_dir", "run_lmeval_mc", "run_lmeval_wikitext"]

_MC = {
    # evalkit task -> (lm-eval folder, lm-eval task prefix, eval split file pattern, dev pattern, eval split)
    "cmmlu": ("cmmlu", "cmmlu_", "cmmlu/test/{s}.csv", "cmmlu/dev/{s}.csv", "test"),
    "ceval": ("ceval", "ceval-valid_", "ceval/val/{s}_val.csv", "ceval/dev/{s}_dev.csv", "validation"),
}


def lmeval_task_dir() -> Path:
    try:
        import lm_eval
    except ImportError:
        raise MissingDependency("the lm-eval reference", "lmeval", "lm_eval") from None
    return Path(lm_eval.__file__).parent / "tasks"


def _csv_to_jsonl(src: Path, dst: Path) -> None:
    # `explanation` (C-Eval dev only) is dropped: `datasets` wants one schema for all splits of a task
    with src.open(encoding="utf-8-sig", newline="") as fh:
        rows = [{(k or "").strip(): v for k, v in row.items() if k != "explanation"} for row in csv.DictReader(fh)]
    with dst.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_mc_tasks(task: str, subjects: Sequence[str], data_dir: Path, out: Path) -> list[str]:
    """One lm-eval task YAML per subject that includes lm-eval's own config and reads local JSONL."""
    folder, prefix, test_pat, dev_pat, split = _MC[task]
    names = []
    for subject in subjects:
        test, dev = out / f"{task}_{subject}_test.jsonl", out / f"{task}_{subject}_dev.jsonl"
        _csv_to_jsonl(data_dir / test_pat.format(s=subject), test)
        _csv_to_jsonl(data_dir / dev_pat.format(s=subject), dev)
        name = f"evalkitref_{task}_{subject}"
        official = lmeval_task_dir() / folder / f"{prefix}{subject}.yaml"
        split_key = "test_split" if split == "test" else "validation_split"
        yaml_text = "\n".join([
            f"include: {official}", f"task: {name}", "dataset_path: json", "dataset_name: null",
            "dataset_kwargs:", "  data_files:", f"    {split}: {test}", f"    dev: {dev}",
            f"{split_key}: {split}", "fewshot_split: dev", ""])
        (out / f"{name}.yaml").write_text(yaml_text, encoding="utf-8")
        names.append(name)
    return names


@dataclass
class LmevalMC:
    """Per question: choice loglikelihoods (A..D) keyed by (subject, doc_index), and the scoring time."""

    logprobs: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    scoring_seconds: float = 0.0
    wall_seconds: float = 0.0
    requests: int = 0


def _hflm(pretrained: str, batch_size: int, max_length: int | None) -> Any:
    from lm_eval.models.huggingface import HFLM

    kwargs: dict[str, Any] = {"pretrained": pretrained, "dtype": "float32", "device": "cpu",
                              "batch_size": batch_size}
    if max_length:
        kwargs["max_length"] = max_length
    return HFLM(**kwargs)


def _timed(lm: Any, method: str, box: list[float]) -> None:
    original = getattr(lm, method)

    def wrapper(requests: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(requests, *args, **kwargs)
        finally:
            box[0] += time.perf_counter() - start

    setattr(lm, method, wrapper)


def run_lmeval_mc(task: str, subjects: Sequence[str], data_dir: Path, pretrained: str, work: Path, *,
                  limit: int | None, num_fewshot: int = 5, batch_size: int = 8) -> LmevalMC:
    """Evaluate subjects with lm-eval's hf model; return its per-choice loglikelihoods."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    work.mkdir(parents=True, exist_ok=True)
    names = write_mc_tasks(task, subjects, data_dir, work)
    started = time.perf_counter()
    lm = _hflm(pretrained, batch_size, None)
    box = [0.0]
    _timed(lm, "loglikelihood", box)
    out = lm_eval.simple_evaluate(model=lm, tasks=names, num_fewshot=num_fewshot, limit=limit, log_samples=True,
                                  task_manager=TaskManager(include_path=str(work)), bootstrap_iters=0)
    result = LmevalMC(scoring_seconds=box[0], wall_seconds=time.perf_counter() - started)
    for name, subject in zip(names, subjects):
        for sample in out["samples"][name]:
            lls = [float(resp[0]) for resp in sample["filtered_resps"]]
            result.logprobs[(subject, int(sample["doc_id"]))] = lls
            result.requests += len(lls)
    return result


@dataclass
class LmevalPPL:
    loglikelihoods: list[float]
    word_perplexity: float
    byte_perplexity: float
    bits_per_byte: float
    scoring_seconds: float
    wall_seconds: float


def run_lmeval_wikitext(documents: Sequence[str], pretrained: str, work: Path, *, max_length: int | None,
                        batch_size: int = 8) -> LmevalPPL:
    """lm-eval's `wikitext` task (its detokenizer and word/byte counting) over the given raw documents."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    work.mkdir(parents=True, exist_ok=True)
    data = work / "wikitext_docs.jsonl"
    with data.open("w", encoding="utf-8") as fh:
        for doc in documents:
            fh.write(json.dumps({"page": doc}, ensure_ascii=False) + "\n")
    official = lmeval_task_dir() / "wikitext" / "wikitext.yaml"
    (work / "evalkitref_wikitext.yaml").write_text("\n".join([
        f"include: {official}", "task: evalkitref_wikitext", "dataset_path: json", "dataset_name: null",
        "dataset_kwargs:", "  data_files:", f"    test: {data}", "training_split: null",
        "validation_split: null", "test_split: test", ""]), encoding="utf-8")
    started = time.perf_counter()
    lm = _hflm(pretrained, batch_size, max_length)
    box = [0.0]
    _timed(lm, "loglikelihood_rolling", box)
    out = lm_eval.simple_evaluate(model=lm, tasks=["evalkitref_wikitext"], log_samples=True,
                                  task_manager=TaskManager(include_path=str(work)), bootstrap_iters=0)
    metrics = out["results"]["evalkitref_wikitext"]
    lls = [float(s["filtered_resps"][0]) if not isinstance(s["filtered_resps"][0], (list, tuple))
           else float(s["filtered_resps"][0][0]) for s in out["samples"]["evalkitref_wikitext"]]
    return LmevalPPL(lls, float(metrics["word_perplexity,none"]), float(metrics["byte_perplexity,none"]),
                     float(metrics["bits_per_byte,none"]), box[0], time.perf_counter() - started)
