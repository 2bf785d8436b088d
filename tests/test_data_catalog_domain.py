"""`evalkit data list|check|pull` for the domain and CLUE tasks: fineval, cmb, cmb_clin, clue_tnews, clue_afqmc."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from evalkit.cli import main
from evalkit.data import check_data_dir, dataset_info
from evalkit.tasks._registry import load_task

DEMO = Path(__file__).resolve().parents[1] / "tasks" / "demo"
DOMAIN = ("fineval", "cmb", "cmb_clin", "clue_tnews", "clue_afqmc")


# ---- list ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("task", "hub", "licence"), [
    ("fineval", "SUFE-AIFLM-Lab/FinEval", "Apache-2.0"),  # licences: the SOURCE.md of each shared data folder
    ("cmb", "FreedomIntelligence/CMB", "Apache-2.0"),
    ("cmb_clin", "FreedomIntelligence/CMB", "Apache-2.0"),
    ("clue_tnews", "clue", "see the dataset card"),
    ("clue_afqmc", "clue", "see the dataset card"),
])
def test_list_shows_the_domain_entries(task: str, hub: str, licence: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "list"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(f"{task} "))
    info = dataset_info(task)
    assert info is not None
    assert info.local in line and f" {hub} " in line and licence in line and f"tasks/{info.demo}" in line


def _expand(pattern: str, split: str) -> str:
    return pattern.replace("{dev,val}", split)


@pytest.mark.parametrize("task", DOMAIN)
def test_catalog_layout_is_what_the_loader_reads(task: str) -> None:
    """The catalog's layout names exactly the files the task YAML's data.local points at, and the same hub id."""
    spec: Any = load_task(task)
    info = dataset_info(task)
    assert info is not None and info.hub == spec.data.hub.path
    local = spec.data.local
    if isinstance(local, dict):  # CMB-Exam: one file per split, plus the test answers
        assert all(path in info.local for path in local.values()) and len(local) == 3
    elif task == "fineval":
        for split in ("dev", "val"):
            assert _expand(info.local, split) == local.format(split=split, subject="<subject>")
    else:
        assert info.local.split(" ")[0] == local.format(split=getattr(spec, "eval_split", "test"), subject=task)
    demo = spec.data.demo
    for path in demo.values() if isinstance(demo, dict) else [demo.format(split="dev", subject="finance")]:
        assert (DEMO.parent / path).is_file()
        assert path.startswith(info.demo.split("{")[0])


# ---- check on the real shared data -----------------------------------------------------------------------------

def test_real_fineval_and_cmb_clin_check_ok(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not (data_dir / "fineval").is_dir() or not (data_dir / "cmb" / "CMB-Clin-qa.json").is_file():
        pytest.skip("fineval or cmb/CMB-Clin-qa.json absent from the shared data folder")
    assert main(["data", "check", str(data_dir), "--tasks", "fineval,cmb_clin"]) == 0
    out = capsys.readouterr().out
    # the counts their SOURCE.md files state: FinEval dev 170 / val 3,340 rows; CMB-Clin 74 cases, 208 questions
    assert "dev: 34/34 subject files, 170 rows; val: 34/34 subject files, 3,340 rows" in out
    assert "CMB-Clin-qa.json: 74 cases, 208 questions" in out
    assert "problem" not in out


# ---- check on broken copies ------------------------------------------------------------------------------------

@pytest.fixture()
def fineval_copy(tmp_path: Path, data_dir: Path) -> Path:
    if not (data_dir / "fineval").is_dir():
        pytest.skip("fineval absent from the shared data folder")
    shutil.copytree(data_dir / "fineval", tmp_path / "fineval")
    return tmp_path


def test_fineval_missing_file_is_named(fineval_copy: Path) -> None:
    path = fineval_copy / "fineval" / "val" / "tax_law_val.csv"
    path.unlink()
    [result] = check_data_dir(fineval_copy, ["fineval"])
    assert result.problems == [f"{path}: missing (the fineval layout has it)"]


def test_fineval_missing_column_is_named(fineval_copy: Path) -> None:
    path = fineval_copy / "fineval" / "dev" / "finance_dev.csv"
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    with path.open("w", encoding="utf-8-sig", newline="") as fh:  # FinEval's dev files carry a BOM
        csv.writer(fh, lineterminator="\n").writerows([r[:6] + r[7:] for r in rows])  # drop 'answer'
    [result] = check_data_dir(fineval_copy, ["fineval"])
    assert len(result.problems) == 1 and result.problems[0].startswith(f"{path}:1: the header lacks column(s) 'answer'")


def test_absent_named_task_names_the_exact_path(tmp_path: Path) -> None:
    [result] = check_data_dir(tmp_path, ["cmb_clin"])
    assert result.status == "problems"
    assert f"expected {tmp_path / 'cmb' / 'CMB-Clin-qa.json'}" in result.problems[0]
    assert "evalkit data pull cmb_clin" in result.problems[0]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_cmb_clin_bad_case_names_the_record(tmp_path: Path) -> None:
    cases = json.loads((DEMO / "cmb" / "CMB-Clin-demo.json").read_text("utf-8"))
    cases[1]["QA_pairs"] = []
    path = _write(tmp_path / "cmb" / "CMB-Clin-qa.json", json.dumps(cases, ensure_ascii=False))
    [result] = check_data_dir(tmp_path, ["cmb_clin"])
    assert result.problems == [f"{path}:2: case has no questions (QA_pairs is missing or empty)"]


def test_cmb_exam_layout_checked_row_by_row(tmp_path: Path) -> None:
    spec: Any = load_task("cmb")
    test = json.loads((DEMO / "cmb" / "CMB-test.json").read_text("utf-8"))
    _write(tmp_path / spec.data.local["val"], (DEMO / "cmb" / "CMB-val.json").read_text("utf-8"))
    path = _write(tmp_path / spec.data.local["test"], json.dumps(test, ensure_ascii=False))
    [result] = check_data_dir(tmp_path, ["cmb"])
    assert result.status == "partial" and result.missing == [str(tmp_path / spec.data.local["test_answers"])]
    assert result.found == [f"test: {len(test)} questions", "val: 12 questions"]
    test[2]["answer"] = "Z"
    _write(path, json.dumps(test, ensure_ascii=False))
    [result] = check_data_dir(tmp_path, ["cmb"])
    assert result.problems == [f"{path}:3: answer 'Z' has 'Z', not a letter A-G"]


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def test_clue_file_checked_for_fields_and_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "clue" / "afqmc_public" / "dev.json"
    rows = [{"sentence1": "花呗怎么还", "sentence2": "怎么还花呗", "label": "1"},
            {"sentence1": "借呗额度", "sentence2": "花呗账单", "label": "0"}]
    _write(path, _jsonl(rows))
    [result] = check_data_dir(tmp_path, ["clue_afqmc"])
    assert result.status == "ok" and result.found == ["dev: 2 rows, 2 labels"]
    _write(path, _jsonl([{k: v for k, v in r.items() if k != "sentence2"} for r in rows]))
    assert main(["data", "check", str(tmp_path), "--tasks", "clue_afqmc"]) == 2
    assert f"problem: {path}: no row has the field(s) 'sentence2'" in capsys.readouterr().out
    _write(path, _jsonl([rows[0], {**rows[1], "label": "2"}]))
    [result] = check_data_dir(tmp_path, ["clue_afqmc"])
    assert result.problems == [f"{path}:2: label '2' is not one of 0, 1"]


# ---- pull from a local stand-in for the hub ----------------------------------------------------------------------

def _hub_repo(root: Path, configs: dict[str, dict[str, list[dict[str, Any]]]]) -> None:
    """A folder in the hub's format: README.md `configs:` naming one JSON Lines file per split."""
    lines = ["---", "configs:"]
    for config, splits in configs.items():
        lines += [f"- config_name: {config}", "  data_files:"]
        for split, records in splits.items():
            _write(root / config / f"{split}.jsonl", _jsonl(records))
            lines += [f"  - split: {split}", f"    path: {config}/{split}.jsonl"]
    _write(root / "README.md", "\n".join([*lines, "---", ""]))


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_pull_domain_sets_from_a_local_hub(tmp_path: Path, data_dir: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    if not (data_dir / "fineval").is_dir() or not (data_dir / "cmb" / "CMB-Clin-qa.json").is_file():
        pytest.skip("fineval or cmb/CMB-Clin-qa.json absent from the shared data folder")
    hub = tmp_path / "hub"
    fineval = {split: _csv_rows(data_dir / "fineval" / split / f"finance_{split}.csv") for split in ("dev", "val")}
    _hub_repo(hub / "SUFE-AIFLM-Lab" / "FinEval", {"finance": fineval})
    cases = json.loads((data_dir / "cmb" / "CMB-Clin-qa.json").read_text("utf-8"))
    exam = {s: json.loads((DEMO / "cmb" / f"CMB-{s}.json").read_text("utf-8")) for s in ("test", "val")}
    for row in exam["test"] + exam["val"]:  # one schema for every split, absent options empty (as on the hub)
        row.setdefault("explanation", "")
        row["option"] = {letter: row["option"].get(letter, "") for letter in "ABCDEF"}
    _hub_repo(hub / "FreedomIntelligence" / "CMB", {"clin": {"test": cases}, "exam": exam})
    tnews = [{"sentence": "DEMO 足球联赛今晚开赛", "label": 3, "idx": 0},  # ClassLabel 3 is "103" (体育)
             {"sentence": "DEMO 新款电动车发布", "label": 6, "idx": 1}]
    _hub_repo(hub / "clue", {"tnews": {"validation": tnews}})
    out = tmp_path / "pulled"
    rc = main(["data", "pull", "fineval:finance", "cmb", "cmb_clin", "clue_tnews", "--to", str(out),
               "--source", str(hub)])
    assert rc == 0, capsys.readouterr()
    for split in ("dev", "val"):
        assert _csv_rows(out / "fineval" / split / f"finance_{split}.csv") == fineval[split]
    assert json.loads((out / "cmb" / "CMB-Clin-qa.json").read_text("utf-8")) == cases
    pulled = [json.loads(line) for line in (out / "clue" / "tnews_public" / "dev.json").read_text("utf-8").splitlines()]
    assert [r["label"] for r in pulled] == ["103", "107"]  # CLUE's release format: label codes as text
    results = {r.task: r for r in check_data_dir(out, ["fineval", "cmb", "cmb_clin", "clue_tnews"])}
    assert f"val: 1/34 subject files, {len(fineval['val'])} rows" in results["fineval"].found  # one subject pulled
    assert results["cmb"].found == [f"test: {len(exam['test'])} questions", f"val: {len(exam['val'])} questions"]
    assert not results["cmb"].problems
    assert results["cmb_clin"].status == "ok" and results["clue_tnews"].status == "ok"


def test_pull_without_a_hub_dataset_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "pull", "zh_ppl", "--to", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: evalkit data pull: 'zh_ppl' has no dataset on the HF hub")
    assert "zh_classical_corpus/*.txt" in err[0]
    assert not (tmp_path / "out").exists()
