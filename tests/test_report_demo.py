"""Demo-data results are badged everywhere they appear, the gate refuses them, and failed runs say why."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.backends._fake import FakeBackend
from evalkit.cli import main
from evalkit.report import build_site, load_runs
from evalkit.runner import RunOptions, execute


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    return execute(RunOptions(model=FakeBackend(), tasks="cmmlu:agronomy", limit=3, output=out, quiet=True))


def test_report_badges_demo_results(demo_run: Path, tmp_path: Path) -> None:
    runs = load_runs(demo_run)
    assert runs[0].demo_data
    build_site(runs, tmp_path / "site")
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    task = (tmp_path / "site" / "tasks" / "cmmlu.html").read_text(encoding="utf-8")
    (run_page,) = list((tmp_path / "site" / "runs").glob("*.html"))
    for page in (index, task, run_page.read_text(encoding="utf-8")):
        assert 'class="badge demo"' in page


def test_gate_refuses_demo_runs_unless_allowed(demo_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gate", str(demo_run), "--min", "cmmlu.acc=0.0"]) == 2
    err = capsys.readouterr().err
    assert "demo set" in err and "--allow-demo" in err and len(err.strip().splitlines()) == 1
    assert main(["gate", str(demo_run), "--min", "cmmlu.acc=0.0", "--allow-demo"]) == 0
    assert "DEMO set" in capsys.readouterr().err


def test_run_page_of_a_run_with_a_failed_task_says_why(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("question,A,B,C,D,answer\n", encoding="utf-8")
    spec = tmp_path / "mytask.yaml"
    spec.write_text(f"name: mytask\nkind: multiple_choice\ndata:\n  local: {bad}\n"
                    "prompt_styles:\n  default:\n    doc_to_text: '{{ question }}'\n", encoding="utf-8")
    assert main(["run", "--model", "fake:echo", "--tasks", f"cmmlu:agronomy,{spec}", "--limit", "2",
                 "--output", str(tmp_path / "runs")]) == 2
    runs = [r for p in (tmp_path / "runs").iterdir() if p.is_dir() for r in load_runs(p)]
    build_site(runs, tmp_path / "site")
    (page,) = list((tmp_path / "site" / "runs").glob("*.html"))
    text = page.read_text(encoding="utf-8")
    assert "This run stopped with an error" in text and "mytask" in text and "bad.csv" in text


def test_leaderboard_shows_the_typed_name_and_a_fine_tune_beside_its_base() -> None:
    from evalkit.report import run_from_results
    from evalkit.report._board import merge_rows

    task = {"kind": "multiple_choice", "metrics": {"acc": 0.5}, "n": 10}
    base = run_from_results({"run_id": "a", "model": {"backend": "hf", "model": "smollm2-gguf", "name": "smollm2"},
                             "tasks": {"cmmlu": task}})
    tuned = run_from_results({"run_id": "b", "model": {"backend": "hf", "model": "smollm2-gguf", "name": "smollm2",
                                                       "peft": "/adapters/med-lora", "peft_sha256": "ab12"},
                              "tasks": {"cmmlu": {**task, "metrics": {"acc": 0.6}}}})
    assert base.label == "smollm2" and tuned.label == "smollm2 + med-lora"
    assert sorted(r.label for r in merge_rows([base, tuned])) == ["smollm2", "smollm2 + med-lora"]


def test_task_page_shows_a_rubric_judges_aspects(tmp_path: Path) -> None:
    from evalkit.report import run_from_results

    metrics = {"judge_score": 3.7, "judge_score_ci_low": 3.6, "judge_score_ci_high": 3.8, "judge_valid_rate": 1.0,
               "judge_fluency": 3.9, "judge_relevance": 4.12, "judge_completeness": 3.26, "judge_proficiency": 3.5,
               "rouge_l": 0.03}
    run = run_from_results({"run_id": "clin", "model": {"backend": "hf", "model": "m", "name": "m"},
                            "tasks": {"cmb_clin": {"kind": "cmb_clin", "metrics": metrics, "n": 3}}})
    build_site([run], tmp_path / "site")
    page = (tmp_path / "site" / "tasks" / "cmb_clin.html").read_text(encoding="utf-8")
    table = page[page.index("<h2>Judge aspects"):].split("</table>")[0].split("</h2>")[1]
    for aspect in ("fluency", "relevance", "completeness", "proficiency"):
        assert f">{aspect}<" in table
    assert ">valid_rate<" not in table and ">score<" not in table and ">rouge_l<" not in table
