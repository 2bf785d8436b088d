"""FinEval as a built-in task (`fineval`): 34 subjects in 4 groups, val scored 5-shot from dev; data dir, hub, demo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evalkit.runner import RunOptions, execute
from evalkit.tasks import _data
from evalkit.tasks._registry import find_task_files, load_task
from evalkit.tasks.multiple_choice import MultipleChoiceSpec

GROUPS = ["Finance", "Accounting", "Economy", "Certificate"]


def _spec() -> MultipleChoiceSpec:
    spec = load_task("fineval")
    assert isinstance(spec, MultipleChoiceSpec)
    return spec


def test_fineval_is_built_in_with_34_subjects_in_4_groups() -> None:
    assert find_task_files()["fineval"].parent.name == "tasks"
    spec = _spec()
    assert len(spec.subjects) == 34 and spec.group_order == GROUPS
    sizes = {g: sum(1 for s in spec.subjects.values() if s.groups == [g]) for g in GROUPS}
    assert sizes == {"Finance": 10, "Accounting": 10, "Economy": 7, "Certificate": 7}
    assert (spec.eval_split, spec.fewshot_split, spec.num_fewshot) == ("val", "dev", 5)


def test_subjects_and_groups_match_the_benchmarks_mapping(data_dir: Path) -> None:
    mapping = json.loads((data_dir / "fineval" / "subject_mapping.json").read_text(encoding="utf-8"))
    spec = _spec()
    assert {s: (i.name_zh, i.groups[0]) for s, i in spec.subjects.items()} == {
        s: (v[1], v[2]) for s, v in mapping.items()}


def test_demo_set_runs_offline_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVALKIT_DATA_DIR", raising=False)
    run_dir = execute(RunOptions(model="fake:echo", tasks="fineval", output=tmp_path, no_cache=True))
    task = json.loads((run_dir / "results.json").read_text())["tasks"]["fineval"]
    assert task["n"] == 18 and task["info"]["data_origin"] == "demo"
    assert list(task["groups"]) == ["Finance", "Accounting", "Economy"]
    assert "DEMO set" in capsys.readouterr().err
    first = json.loads((run_dir / "samples" / "fineval.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["prompt"].startswith("以下是中国关于金融学考试的单项选择题") and first["prompt"].count("答案：") == 6


def test_real_data_all_subjects_five_shot(data_dir: Path, tmp_path: Path) -> None:
    run_dir = execute(RunOptions(model="fake:echo", tasks="fineval", limit=1, data_dir=data_dir, output=tmp_path,
                                 no_cache=True, quiet=True))
    task = json.loads((run_dir / "results.json").read_text())["tasks"]["fineval"]
    assert task["n"] == 34 and list(task["groups"]) == GROUPS and task["info"]["data_origin"] == "local"
    assert task["info"]["skipped_rows"] == 0


def test_the_hub_dataset_is_asked_for_per_subject_config(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, str | None, str]] = []

    def fake_hub(hub: Any, subject: str, split: str) -> list[dict[str, Any]]:
        asked.append((hub.path, hub.name.format(subject=subject), split))
        return [{"id": 0, "question": "q", "A": "1", "B": "2", "C": "3", "D": "4", "answer": "B"}]

    monkeypatch.setattr(_data, "load_hub", fake_hub)
    rows = _data.read_rows(_spec().data, subject="finance", split="val", data_dir=None)
    assert rows is not None and rows.origin == "hub" and rows.location == "hf://SUFE-AIFLM-Lab/FinEval/finance/val"
    assert asked == [("SUFE-AIFLM-Lab/FinEval", "finance", "val")]


@pytest.mark.integration
def test_fineval_on_the_embedded_model(data_dir: Path, tmp_path: Path) -> None:
    run_dir = execute(RunOptions(model="smollm2", tasks="fineval:finance,accounting", limit=5, data_dir=data_dir,
                                 output=tmp_path, no_cache=True, quiet=True))
    task = json.loads((run_dir / "results.json").read_text())["tasks"]["fineval"]
    assert task["n"] == 10 and task["info"]["mode"] == "loglikelihood"
    assert 0.0 <= task["metrics"]["acc"] <= 1.0
