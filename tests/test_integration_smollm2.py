"""The real embedded model on real data: the main job, and parity with lm-eval 0.4.13 itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

from evalkit.runner import RunOptions, execute


def _samples(run_dir: Path, task: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "samples" / f"{task}.jsonl").read_text().splitlines()]


def test_main_job_on_the_embedded_default_works_offline(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "EVALKIT_DATA_DIR"} | {"EVALKIT_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "evalkit", "run", "--model", "smollm2", "--tasks",
                             "ceval,cmmlu,wikitext", "--limit", "2", "--output", str(tmp_path / "runs")],
                            capture_output=True, text=True, env=env, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = next(p for p in (tmp_path / "runs").iterdir() if p.is_dir())
    results = json.loads((run_dir / "results.json").read_text())
    assert results["model"]["model"] == "smollm2-gguf"
    assert results["tasks"]["ceval"]["n"] == 6 and results["tasks"]["wikitext"]["metrics"]["word_perplexity"] > 1


def _evalkit_mc(task: str, subjects: str, data_dir: Path, out: Path, **model_args: str) -> dict[str, list[float]]:
    args = ",".join(f"{k}={v}" for k, v in model_args.items()) or None
    run_dir = execute(RunOptions(model="smollm2", tasks=f"{task}:{subjects}", task_args="prompt_style=lmeval",
                                 model_args=args, limit=4, data_dir=data_dir, output=out, no_cache=True, quiet=True))
    return {s["id"]: [s["choice_logprobs"][k] for k in "ABCD"] for s in _samples(run_dir, task)}


def _argmax(values: list[float]) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))


@pytest.mark.parametrize("task,subjects", [("cmmlu", "agronomy,college_law"), ("ceval", "computer_network")])
def test_loglikelihoods_equal_lmeval(task: str, subjects: str, data_dir: Path, tmp_path: Path) -> None:
    from evalkit.backends._hf_load import _gguf_to_cache
    from evalkit.lmeval import run_lmeval_mc

    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    ref = run_lmeval_mc(task, subjects.split(","), data_dir, str(_gguf_to_cache("smollm2-gguf")[0]),
                        tmp_path / "lmeval", limit=4, batch_size=4)
    ours = _evalkit_mc(task, subjects, data_dir, tmp_path / "runs")
    assert len(ref.logprobs) == len(ours) == 4 * len(subjects.split(","))
    for (subject, index), lls in ref.logprobs.items():
        mine = ours[f"{subject}/{index}"]
        assert max(abs(a - b) for a, b in zip(lls, mine)) <= 1e-4
        assert _argmax(lls) == _argmax(mine)


def test_prefix_sharing_equals_the_unoptimised_path_on_real_prompts(data_dir: Path, tmp_path: Path) -> None:
    fast = _evalkit_mc("cmmlu", "anatomy,astronomy", data_dir, tmp_path / "a")
    slow = _evalkit_mc("cmmlu", "anatomy,astronomy", data_dir, tmp_path / "b", prefix_cache="false")
    assert fast.keys() == slow.keys()
    for key in fast:
        assert max(abs(a - b) for a, b in zip(fast[key], slow[key])) <= 1e-4
        assert _argmax(fast[key]) == _argmax(slow[key])


def test_wikitext_perplexity_equals_lmeval(data_dir: Path, tmp_path: Path) -> None:
    from evalkit.backends._hf_load import _gguf_to_cache
    from evalkit.lmeval import run_lmeval_wikitext
    from evalkit.tasks.perplexity import split_documents

    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    docs = split_documents((data_dir / "wikitext2" / "wiki.test.raw").read_text(encoding="utf-8"),
                           "wikitext_articles")[:2]
    custom = tmp_path / "wiki.txt"  # two shortened articles keep it quick on CPU; both sides score this text
    custom.write_text("\n".join(doc[:3000] for doc in docs), encoding="utf-8")
    docs = split_documents(custom.read_text(encoding="utf-8"), "wikitext_articles")
    assert len(docs) == 2
    ref = run_lmeval_wikitext(docs, str(_gguf_to_cache("smollm2-gguf")[0]), tmp_path / "lm", max_length=256)
    run_dir = execute(RunOptions(model="smollm2", tasks="wikitext", task_args={"path": str(custom)},
                                 model_args="max_length=256", output=tmp_path / "runs", no_cache=True, quiet=True))
    results = json.loads((run_dir / "results.json").read_text())["tasks"]["wikitext"]["metrics"]
    for key, value in (("word_perplexity", ref.word_perplexity), ("byte_perplexity", ref.byte_perplexity),
                       ("bits_per_byte", ref.bits_per_byte)):
        assert results[key] == pytest.approx(value, rel=1e-4), key
