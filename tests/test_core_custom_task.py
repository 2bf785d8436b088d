"""A user's own multiple-choice task from one YAML file (the README's FinEval example), no Python."""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.runner import RunOptions, execute

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tasks" / "fineval.yaml"


def test_fineval_example_runs_all_subjects_with_groups(data_dir: Path, tmp_path: Path) -> None:
    run_dir = execute(RunOptions(model="fake:echo", tasks=str(EXAMPLE), limit=2, data_dir=data_dir,
                                 output=tmp_path, no_cache=True, quiet=True))
    task = json.loads((run_dir / "results.json").read_text())["tasks"]["fineval"]
    assert task["n"] == 68 and len(task["subtasks"]) == 34
    assert list(task["groups"]) == ["Finance", "Accounting", "Economy", "Certificate"]
    assert sum(g["subjects"] for g in task["groups"].values()) == 34
    assert task["info"]["skipped_rows"] == 0  # the "D " answer quirk and the BOM are handled
    first = json.loads((run_dir / "samples" / "fineval.jsonl").read_text().splitlines()[0])
    assert first["prompt"].startswith("以下是中国关于") and first["prompt"].endswith("答案：")
    assert first["prompt"].count("答案：") == 6  # five examples and the question
