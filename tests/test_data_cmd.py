"""`evalkit data check|pull|list`: a good tree, broken trees made here, and pull from a local stand-in for the hub."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.data import check_data_dir


@pytest.fixture()
def cmmlu_copy(tmp_path: Path, data_dir: Path) -> Path:
    """A private copy of the real CMMLU folder, to break."""
    root = tmp_path / "data"
    shutil.copytree(data_dir / "cmmlu", root / "cmmlu")
    return root


def _problems(root: Path) -> list[str]:
    [result] = check_data_dir(root, ["cmmlu"])
    return result.problems


def _rewrite(path: Path, edit: Callable[[list[list[str]]], None], encoding: str = "utf-8") -> None:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    edit(rows)
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def test_good_tree_passes_with_counts(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "check", str(data_dir)]) == 0
    out = capsys.readouterr().out
    # the row counts are those the datasets' SOURCE.md files state
    assert "val: 52/52 subject files, 1,346 rows" in out
    assert "test: 67/67 subject files, 11,582 rows" in out
    assert "question.jsonl: 80 questions" in out
    assert "longbench     partial" in out and "not present (optional)" in out


def test_clean_copy_has_no_problems(cmmlu_copy: Path) -> None:
    assert _problems(cmmlu_copy) == []


def test_bad_header_is_named_with_file_and_fix(cmmlu_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = cmmlu_copy / "cmmlu" / "test" / "anatomy.csv"
    _rewrite(path, lambda rows: rows[0].__setitem__(6, "Gold"))
    assert main(["data", "check", str(cmmlu_copy), "cmmlu"]) == 2
    captured = capsys.readouterr()
    assert f"problem: {path}:1: the header lacks column(s) 'Answer'" in captured.out
    assert captured.err.startswith("error: evalkit data check: 1 problem(s)")


def test_duplicate_header(cmmlu_copy: Path) -> None:
    path = cmmlu_copy / "cmmlu" / "dev" / "agronomy.csv"
    _rewrite(path, lambda rows: rows[0].__setitem__(3, "A"))
    problems = _problems(cmmlu_copy)
    assert any(p.startswith(f"{path}:1: duplicate column 'A'") for p in problems), problems


def test_gb18030_file_is_reported_with_iconv(cmmlu_copy: Path) -> None:
    path = cmmlu_copy / "cmmlu" / "test" / "agronomy.csv"
    _rewrite(path, lambda rows: None, encoding="gb18030")
    problems = _problems(cmmlu_copy)
    assert len(problems) == 1 and str(path) in problems[0] and "iconv -f GB18030 -t UTF-8" in problems[0]


def test_bad_answers_and_short_rows_name_the_line(cmmlu_copy: Path) -> None:
    path = cmmlu_copy / "cmmlu" / "test" / "anatomy.csv"

    def edit(rows: list[list[str]]) -> None:
        rows[3][6] = "E"        # data row 3 -> file line 4 (no multi-line fields in this file's first rows)
        rows[5] = rows[5][:5]   # file line 6 loses two fields

    _rewrite(path, edit)
    problems = _problems(cmmlu_copy)
    assert f"{path}:4: answer 'E' (column 'Answer') is not one of A/B/C/D" in problems
    assert f"{path}:6: 5 fields where the header has 7; quote fields that hold commas" in problems


def test_missing_subject_file_is_a_problem(cmmlu_copy: Path) -> None:
    path = cmmlu_copy / "cmmlu" / "dev" / "virology.csv"
    path.unlink()
    assert _problems(cmmlu_copy) == [f"{path}: missing (the cmmlu layout has it)"]


def test_named_task_absent_is_a_problem(tmp_path: Path) -> None:
    [result] = check_data_dir(tmp_path, ["ceval"])
    assert result.status == "problems" and "evalkit data pull ceval" in result.problems[0]
    [unnamed] = [r for r in check_data_dir(tmp_path) if r.task == "ceval"]
    assert unnamed.status == "absent" and not unnamed.problems


def test_broken_jsonl_line(tmp_path: Path) -> None:
    folder = tmp_path / "mt_bench"
    folder.mkdir()
    (folder / "question.jsonl").write_text('{"question_id": 81, "category": "writing", "turns": ["a", "b"]}\n'
                                           '{"question_id": 82, "category": "math"\n'
                                           '{"question_id": 83, "category": "math", "turns": "x"}\n', encoding="utf-8")
    [result] = check_data_dir(tmp_path, ["mt_bench"])
    assert len(result.problems) == 1 and result.problems[0].startswith(f"{folder / 'question.jsonl'}:2: not valid JSON")


def test_list_shows_sources_and_licences(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    ceval = next(line for line in out.splitlines() if line.startswith("ceval "))
    assert "ceval/ceval-exam" in ceval and "CC BY-NC-SA 4.0" in ceval and "tasks/demo/ceval" in ceval
    assert "haonan-li/cmmlu" in out and "CC BY-SA 3.0 and GFDL" in out


# ---- pull from a local stand-in for the hub ------------------------------------------------------------------

def _hub_repo(root: Path, configs: dict[str, dict[str, Path]], drop_id: bool = False) -> None:
    """A folder in the hub's parquet format: README.md `configs:` naming one parquet file per split."""
    import pandas as pd

    lines = ["---", "configs:"]
    for config, splits in configs.items():
        lines.append(f"- config_name: {config}")
        lines.append("  data_files:")
        for split, source in splits.items():
            frame = pd.read_csv(source, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            if drop_id:
                frame = frame.drop(columns=[frame.columns[0]])  # CMMLU on the hub has no index column
            elif "explanation" not in frame.columns:
                frame["explanation"] = ""  # C-Eval on the hub has the column in every split, empty outside dev
            target = root / config / f"{split}-00000.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(target, index=False)
            lines += [f"  - split: {split}", f"    path: {config}/{split}-00000.parquet"]
    (root / "README.md").write_text("\n".join([*lines, "---", ""]), encoding="utf-8")


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


def test_pull_from_a_local_hub_writes_the_documented_layout(tmp_path: Path, data_dir: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    hub = tmp_path / "hub"
    ceval = data_dir / "ceval"
    _hub_repo(hub / "ceval" / "ceval-exam", {"computer_network": {
        "dev": ceval / "dev" / "computer_network_dev.csv", "val": ceval / "val" / "computer_network_val.csv"}})
    cmmlu = data_dir / "cmmlu"
    _hub_repo(hub / "haonan-li" / "cmmlu", {"agronomy": {
        "dev": cmmlu / "dev" / "agronomy.csv", "test": cmmlu / "test" / "agronomy.csv"}}, drop_id=True)
    out = tmp_path / "pulled"
    rc = main(["data", "pull", "ceval:computer_network", "cmmlu:agronomy", "--to", str(out), "--source", str(hub)])
    assert rc == 0, capsys.readouterr()
    for rel, original in (("ceval/dev/computer_network_dev.csv", ceval / "dev" / "computer_network_dev.csv"),
                          ("ceval/val/computer_network_val.csv", ceval / "val" / "computer_network_val.csv"),
                          ("cmmlu/dev/agronomy.csv", cmmlu / "dev" / "agronomy.csv"),
                          ("cmmlu/test/agronomy.csv", cmmlu / "test" / "agronomy.csv")):
        assert _rows(out / rel) == _rows(original), rel
    [result] = check_data_dir(out, ["ceval"])
    assert all(p.endswith("missing (the ceval layout has it)") for p in result.problems)  # only 1 of 52 pulled
    assert "val: 1/52 subject files, 19 rows" in result.found  # C-Eval computer_network: 19 val questions


def test_pull_with_unreachable_hub_is_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE",
                                                            "EVALKIT_OFFLINE", "EVALKIT_DATA_SOURCE")}
    env["EVALKIT_HUB_PROBE"] = "127.0.0.1:9"  # discard port: nothing listens, the connect is refused at once
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "evalkit", "data", "pull", "cmmlu", "--to", str(tmp_path)],
                            capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: evalkit data pull: the Hugging Face hub (127.0.0.1:9) is not reachable")
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert time.monotonic() - started < 60
    assert not list(tmp_path.iterdir())


def test_a_users_task_with_a_subjects_file(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The FinEval example: subjects come from fineval/subject_mapping.json under the data dir."""
    monkeypatch.setenv("EVALKIT_TASKS_PATH", str(Path(__file__).resolve().parents[1] / "examples" / "tasks"))
    [result] = check_data_dir(data_dir, ["fineval"])
    assert result.status == "ok", result.problems
    assert result.found == ["dev: 34/34 subject files, 170 rows", "val: 34/34 subject files, 3,340 rows"]


def _jsonl_repo(root: Path, configs: dict[str | None, dict[str, list[dict[str, object]]]]) -> None:
    """A hub-format folder of JSON Lines files; config None is the dataset's only (default) config."""
    import json

    lines = ["---", "configs:"]
    for config, splits in configs.items():
        name = config or "default"
        lines += [f"- config_name: {name}", "  data_files:"]
        for split, records in splits.items():
            target = root / name / f"{split}.jsonl"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
            lines += [f"  - split: {split}", f"    path: {name}/{split}.jsonl"]
    (root / "README.md").write_text("\n".join([*lines, "---", ""]), encoding="utf-8")


def test_pull_jsonl_and_text_datasets(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    hub = tmp_path / "hub"
    questions = [json.loads(line) for line in (data_dir / "mt_bench" / "question.jsonl").read_text("utf-8").splitlines()]
    prompts = [{"prompt_id": q["question_id"], "category": q["category"], "prompt": q["turns"],
                "reference": q.get("reference", [])} for q in questions]  # the hub's field names
    _jsonl_repo(hub / "HuggingFaceH4" / "mt_bench_prompts", {None: {"train": prompts}})
    records = [json.loads(line) for line in
               (data_dir / "longbench" / "data" / "multifieldqa_zh.jsonl").read_text("utf-8").splitlines()[:20]]
    _jsonl_repo(hub / "THUDM" / "LongBench", {"multifieldqa_zh": {"test": records}})
    pages = [{"page": " = Valkyria Chronicles = \n Senjō no Valkyria 3 is a game .\n"}, {"page": " = Tower = \n Tall .\n"}]
    _jsonl_repo(hub / "EleutherAI" / "wikitext_document_level", {"wikitext-2-raw-v1": {"test": pages}})
    out = tmp_path / "pulled"
    rc = main(["data", "pull", "mt_bench", "longbench:multifieldqa_zh", "wikitext", "--to", str(out),
               "--source", str(hub)])
    assert rc == 0, capsys.readouterr()
    pulled = [json.loads(line) for line in (out / "mt_bench" / "question.jsonl").read_text("utf-8").splitlines()]
    assert pulled == questions  # FastChat's layout back
    assert (out / "longbench" / "data" / "multifieldqa_zh.jsonl").read_text("utf-8").count("\n") == 20
    assert (out / "wikitext2" / "wiki.test.raw").read_text("utf-8").startswith(" = Valkyria Chronicles = \n")
    results = {r.task: r for r in check_data_dir(out, ["mt_bench", "longbench", "wikitext"])}
    assert results["mt_bench"].found == ["question.jsonl: 80 questions"] and not results["mt_bench"].problems
    assert results["longbench"].status == "partial"  # 1 of 21 datasets pulled; the others are optional
    assert results["wikitext"].status == "ok"
