"""RunResult: loading run directories, addressing tasks/groups/subtasks, samples, pandas, save."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from evalkit.api import MissingResult, RunResult
from evalkit.errors import DataError

RUNS = Path(__file__).parent / "data" / "gate"


@pytest.fixture()
def run() -> RunResult:
    return RunResult.load(RUNS / "base")


def test_load_from_directory_or_results_file(run: RunResult) -> None:
    same = RunResult.load(str(RUNS / "base" / "results.json"))
    assert same == run
    assert run.run_id == "base" and run.path == RUNS / "base"
    assert set(run.tasks) == {"cmmlu", "wikitext", "longbench"}
    assert run.manifest["tasks"]["cmmlu"]["spec_sha256"]
    assert run.model["name"] == "constructed"


def test_score_addresses_task_group_and_subtask(run: RunResult) -> None:
    raw = json.loads((RUNS / "base" / "results.json").read_text())["tasks"]["cmmlu"]
    assert run.score("cmmlu", "acc") == raw["metrics"]["acc"]
    assert run.score("cmmlu/STEM", "acc") == raw["groups"]["STEM"]["acc"]
    assert run.score("cmmlu/agronomy", "acc") == raw["subtasks"]["agronomy"]["acc"]
    assert run.stderr("cmmlu", "acc") == raw["metrics"]["acc_stderr"]
    assert run.stderr("wikitext", "word_perplexity") is None
    assert run.resolve("cmmlu/STEM")[1:3] == ("group", "STEM")
    assert run.resolve("cmmlu/agronomy")[1:3] == ("subtask", "agronomy")


def test_missing_lookups_say_what_exists(run: RunResult) -> None:
    with pytest.raises(MissingResult, match=r"no task 'mmlu' \(tasks: cmmlu, wikitext, longbench\)"):
        run.score("mmlu", "acc")
    with pytest.raises(KeyError):
        run.score("cmmlu", "f1")
    with pytest.raises(DataError, match=r"no group or subtask 'Law' \(known: STEM, Humanities, Other, agronomy"):
        run.score("cmmlu/Law", "acc")
    assert str(MissingResult("plain message")) == "plain message"


def test_groups_and_subtasks(run: RunResult) -> None:
    groups = run.groups("cmmlu")
    assert set(groups) == {"STEM", "Humanities", "Other"}
    assert sum(g["n"] for g in groups.values()) == run.tasks["cmmlu"].n == 200
    assert set(run.subtasks("cmmlu")) == {"agronomy", "chinese_history", "computer_science"}
    assert run.groups("wikitext") == {}


def test_samples_and_subset_filter(run: RunResult) -> None:
    samples = run.samples("cmmlu")
    assert len(samples) == 200 and {"id", "subset", "doc_index", "correct"} <= set(samples[0])
    assert sum(s["correct"] for s in samples) / 200 == run.score("cmmlu", "acc")
    stem = run.samples("cmmlu/computer_science")
    assert len(stem) == 60 and {s["subset"] for s in stem} == {"computer_science"}
    with pytest.raises(DataError, match="no samples for task 'ceval'"):
        run.samples("ceval")


def test_to_pandas_one_row_per_task_metric_with_stderr(run: RunResult) -> None:
    df = run.to_pandas()
    assert list(df.columns) == ["task", "level", "name", "metric", "value", "stderr", "n"]
    headline = df[df.level == "task"].set_index(["task", "metric"])
    assert list(headline.index) == [("cmmlu", "acc"), ("wikitext", "word_perplexity"), ("wikitext", "token_perplexity"),
                                    ("longbench", "score")]
    assert headline.loc[("cmmlu", "acc"), "stderr"] == run.stderr("cmmlu", "acc")
    assert headline.loc[("cmmlu", "acc"), "n"] == 200
    assert len(df[(df.task == "cmmlu") & (df.level == "group")]) == 3
    assert len(df[(df.task == "cmmlu") & (df.level == "subtask")]) == 3
    assert not df.metric.str.endswith("_stderr").any()


def test_save_round_trip(run: RunResult, tmp_path: Path) -> None:
    target = run.save(tmp_path / "copy")
    again = RunResult.load(target)
    assert again.tasks == run.tasks and again.manifest == run.manifest and again.model == run.model
    assert again.samples("cmmlu") == run.samples("cmmlu")
    assert again.record == run.record  # the schema-1 fixture is saved as the current schema and reads back equal
    saved = json.loads((target / "results.json").read_text())
    assert saved["schema_version"] == "2" and saved["tasks"]["cmmlu"]["kind"] == "multiple_choice"
    original = json.loads((RUNS / "base" / "results.json").read_text())
    assert saved["tasks"]["cmmlu"]["metrics"] == original["tasks"]["cmmlu"]["metrics"]


def test_in_memory_result_saves_and_has_no_samples(tmp_path: Path) -> None:
    result = RunResult.from_dict({"run_id": "mem", "tasks": {"ceval": {"metrics": {"acc": 0.5, "acc_stderr": 0.1},
                                                                       "n": 25}}})
    with pytest.raises(DataError, match="built in memory"):
        result.samples("ceval")
    loaded = RunResult.load(result.save(tmp_path / "mem"))
    assert loaded.score("ceval", "acc") == 0.5 and loaded.tasks["ceval"].n == 25


def test_result_is_immutable(run: RunResult) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.run_id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        run.tasks["cmmlu"].metrics["acc"] = 1.0  # type: ignore[index]


def test_bad_files_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such results file"):
        RunResult.load(tmp_path)
    (tmp_path / "results.json").write_text('{"tasks": {}}')
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(DataError, match="manifest.json: not valid JSON"):
        RunResult.load(tmp_path)
    with pytest.raises(DataError, match="no 'tasks'"):
        RunResult.from_dict({"run_id": "x"})
