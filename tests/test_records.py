"""The run record: one schema, shipped as JSON Schema, written by the runner and `evalkit judge`, read by all."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from evalkit.api import RunResult
from evalkit.backends._fake import FakeBackend
from evalkit.cli import main
from evalkit.errors import DataError
from evalkit.records import RunRecord, TaskRecord, load_record, parse_record, sample_type, schema_text
from evalkit.runner import RunOptions, execute

HERE = Path(__file__).parent
SHIPPED = HERE.parent / "evalkit" / "records" / "results.schema.json"
LEGACY = HERE / "data" / "gate" / "base" / "results.json"  # written by evalkit before schema_version existed


def _validate(path: Path) -> None:
    schema = json.loads(SHIPPED.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(json.loads(path.read_text(encoding="utf-8")))


def test_shipped_schema_is_the_generated_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert SHIPPED.read_text(encoding="utf-8") == schema_text(), "regenerate: evalkit schema -o " + str(SHIPPED)
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["properties"]["schema_version"]["default"] == "2"
    assert "TaskRecord" in printed["$defs"]


def test_todays_format_still_loads() -> None:
    """A committed results.json of schema 1: kinds inferred once, counts and metrics unchanged."""
    assert "schema_version" not in json.loads(LEGACY.read_text(encoding="utf-8"))
    record = load_record(LEGACY)
    assert record.schema_version == "2"
    cmmlu = record.tasks["cmmlu"]
    assert cmmlu.kind == "multiple_choice" and cmmlu.family == "knowledge"
    acc = cmmlu.metric("acc")
    assert acc is not None and acc.value == pytest.approx(0.6) and acc.n == 200 and acc.higher_is_better
    assert RunResult.load(LEGACY).score("cmmlu", "acc") == pytest.approx(0.6)


def test_rules_live_in_the_record() -> None:
    task = TaskRecord(kind="perplexity", metrics={"word_perplexity": 12.5, "bits_per_byte": 0.9, "n": 3}, n=3)
    assert task.family == "perplexity" and task.headline == "word_perplexity"
    ppl = task.metric("word_perplexity")
    assert ppl is not None and not ppl.higher_is_better and ppl.n == 3
    declared = TaskRecord(kind="other", metrics={"score": 2.0}, lower_is_better=["score"])
    assert not declared.is_higher_better("score") and declared.metric("score").higher_is_better is False  # type: ignore[union-attr]
    with pytest.raises(DataError, match="field 'tasks.t.metrics"):
        parse_record({"schema_version": "2", "run_id": "x", "tasks": {"t": {"metrics": {"acc": "high"}}}})


def test_extracted_is_always_a_letter() -> None:
    row = sample_type("multiple_choice").model_validate({"prediction": "C", "extracted": True})
    assert row.extracted == "C"
    assert sample_type("multiple_choice").model_validate({"prediction": "C", "extracted": False}).extracted is None


def test_a_run_writes_the_record_and_every_reader_agrees(tmp_path: Path) -> None:
    fake = FakeBackend()
    path = execute(RunOptions(model=fake, tasks="cmmlu:agronomy", limit=4, output=tmp_path, quiet=True))
    _validate(path / "results.json")
    record = load_record(path)
    assert record.status == "complete" and record.tasks["cmmlu"].kind == "multiple_choice"
    assert record.tasks["cmmlu"].demo_data  # no --data-dir: the shipped demo set
    result = RunResult.load(path)
    assert result.metric("cmmlu", "acc").value == result.score("cmmlu", "acc")
    lines = (path / "samples" / "cmmlu.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == record.tasks["cmmlu"].n == 4


def test_a_task_with_bad_data_stops_alone(tmp_path: Path) -> None:
    """Other tasks' results are kept; the run exits with the data error and is marked failed."""
    empty = tmp_path / "empty.csv"
    empty.write_text("question,A,B,C,D,answer\n", encoding="utf-8")  # header only
    spec = tmp_path / "mytask.yaml"
    spec.write_text(f"name: mytask\nkind: multiple_choice\ndata:\n  local: {empty}\n"
                    "prompt_styles:\n  default:\n    doc_to_text: '{{ question }}'\n", encoding="utf-8")
    options = RunOptions(model=FakeBackend(), tasks=f"cmmlu:agronomy,{spec}", limit=2, output=tmp_path / "runs",
                         quiet=True)
    with pytest.raises(DataError, match="empty.csv") as info:
        execute(options)
    assert any("results so far" in note for note in getattr(info.value, "__notes__", []))
    (run_dir,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    record: RunRecord = load_record(run_dir)
    assert record.status == "failed" and "empty.csv" in (record.error or "")
    assert "cmmlu" in record.tasks and "mytask" in record.failed_tasks
    _validate(run_dir / "results.json")


def test_a_failed_run_is_marked_and_left_out_of_the_report(tmp_path: Path) -> None:
    from evalkit.report import load_runs

    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError):
        execute(RunOptions(model=FakeBackend(), tasks="ppl", task_args={"path": str(empty)}, output=tmp_path / "runs",
                           quiet=True))
    (run_dir,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    record = load_record(run_dir)
    assert record.status == "failed" and not record.tasks and "empty.txt" in record.failed_tasks["ppl"]
    assert load_runs(run_dir) == []  # nothing to show: the report skips it
