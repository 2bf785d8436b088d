"""`run_gate` on constructed run directories (tests/data/gate, made by make_runs.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalkit.api import RunResult
from evalkit.errors import GateError
from evalkit.gate import parse_max_drops, parse_threshold, run_gate

RUNS = Path(__file__).parent / "data" / "gate"


def _run(name: str) -> RunResult:
    return RunResult.load(RUNS / name)


def _copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(RUNS / name, tmp_path / name))


def test_parse_threshold_forms_and_errors() -> None:
    t = parse_threshold("cmmlu/STEM.acc=0.3")
    assert (t.task, t.metric, t.value, t.kind) == ("cmmlu/STEM", "acc", 0.3, "min")
    assert parse_threshold("wikitext.word_perplexity=40", "max").kind == "max"
    for bad in ("cmmlu.acc", "cmmlu=0.3", "cmmlu.acc=high", "cmmlu.acc=nan", ".acc=0.3x"):
        with pytest.raises(GateError, match="TASK.METRIC=NUMBER"):
            parse_threshold(bad)


def test_thresholds_on_task_group_and_subtask() -> None:
    run = _run("base")  # cmmlu acc 0.60
    report = run_gate(run, minimums=[parse_threshold("cmmlu.acc=0.55"), parse_threshold("cmmlu/STEM.acc=0.9"),
                                     parse_threshold("cmmlu/agronomy.acc=0.5")],
                      maximums=[parse_threshold("wikitext.word_perplexity=10", "max")])
    outcome = {c.name: c.passed for c in report.checks}
    assert outcome == {"cmmlu.acc >= 0.55": True, "cmmlu/STEM.acc >= 0.9": False,
                       "cmmlu/agronomy.acc >= 0.5": True, "wikitext.word_perplexity <= 10": False}
    assert not report.passed and len(report.failures) == 2
    stem = next(c for c in report.checks if c.target == "cmmlu/STEM.acc")
    assert stem.observed == pytest.approx(run.score("cmmlu/STEM", "acc"))


def test_threshold_is_inclusive() -> None:
    run = _run("base")
    value = run.score("cmmlu", "acc")
    assert run_gate(run, minimums=[parse_threshold(f"cmmlu.acc={value!r}")]).passed
    assert run_gate(run, maximums=[parse_threshold(f"cmmlu.acc={value!r}", "max")]).passed


@pytest.mark.parametrize("spec,needle", [("cmmlu.f1=0.3", "no metric 'f1'"), ("mmlu.acc=0.3", "no task 'mmlu'"),
                                         ("cmmlu/Law.acc=0.3", "no group or subtask 'Law'")])
def test_unknown_targets_are_gate_errors(spec: str, needle: str) -> None:
    with pytest.raises(GateError, match=needle):
        run_gate(_run("base"), minimums=[parse_threshold(spec)])


def test_noise_passes_and_real_drop_fails() -> None:
    base = _run("base")
    noise = run_gate(_run("noise"), baseline=base)
    drop = run_gate(_run("drop"), baseline=base)
    assert noise.passed, [c.message for c in noise.checks]
    assert {c.target for c in drop.failures} == {"cmmlu.acc", "wikitext.word_perplexity", "longbench.score"}
    cmmlu = next(c for c in drop.checks if c.target == "cmmlu.acc")
    assert cmmlu.comparison is not None and cmmlu.comparison.method == "mcnemar"
    assert cmmlu.comparison.diff == pytest.approx(-0.14) and cmmlu.comparison.p_value < 1e-5
    assert cmmlu.comparison.ci_high < 0 and "p=" in cmmlu.message and "CI" in cmmlu.message


def test_significant_drop_within_max_drop_passes() -> None:
    report = run_gate(_run("drop"), baseline=_run("base"), tasks=["cmmlu"], max_drop=0.15)
    assert report.passed
    assert "within max drop" in report.checks[0].message
    assert not run_gate(_run("drop"), baseline=_run("base"), tasks=["cmmlu"], max_drop=0.1).passed


def test_improvement_never_fails_and_direction_follows_lower_is_better() -> None:
    # baseline "drop" (worse accuracy, higher perplexity) -> new "base": both improve
    report = run_gate(_run("base"), baseline=_run("drop"))
    assert report.passed
    ppl = next(c for c in report.checks if c.target == "wikitext.word_perplexity")
    assert ppl.comparison is not None and ppl.comparison.diff < 0 and ppl.comparison.p_value < 0.05
    worse = next(c for c in run_gate(_run("drop"), baseline=_run("base")).checks
                 if c.target == "wikitext.word_perplexity")
    assert worse.comparison is not None and worse.comparison.diff > 0 and not worse.passed


def test_identical_runs_have_p_one() -> None:
    report = run_gate(_run("base"), baseline=_run("base"))
    assert report.passed
    assert all(c.comparison is not None and c.comparison.p_value == 1.0 for c in report.checks)


def test_prompt_hash_mismatch_is_an_error_naming_the_hash() -> None:
    with pytest.raises(GateError, match=r"task 'cmmlu': prompt hash differs between the runs \(prompt_sha256"):
        run_gate(_run("prompt_changed"), baseline=_run("base"))
    # comparing only the unaffected task is allowed
    assert run_gate(_run("prompt_changed"), baseline=_run("base"), tasks=["wikitext"]).passed


def test_data_hash_mismatch_names_the_file_and_machine_paths_are_ignored(tmp_path: Path) -> None:
    base, noise = _run("base"), _run("noise")
    # the fixtures' data files live under different absolute folders on the two "machines"
    assert set(base.manifest["tasks"]["cmmlu"]["data_files"]) != set(noise.manifest["tasks"]["cmmlu"]["data_files"])
    new = _copy("noise", tmp_path)
    manifest = json.loads((new / "manifest.json").read_text())
    manifest["tasks"]["cmmlu"]["path"] = "/another/machine/tasks/cmmlu.yaml"
    (new / "manifest.json").write_text(json.dumps(manifest))
    assert run_gate(RunResult.load(new), baseline=base).passed
    files = manifest["tasks"]["cmmlu"]["data_files"]
    key = next(k for k in files if k.endswith("test/agronomy.csv"))
    original, files[key] = files[key], "0" * 64
    (new / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(GateError, match=r"data hash differs between the runs \(data_files\['test/agronomy\.csv'\]"):
        run_gate(RunResult.load(new), baseline=base)
    files[key] = original
    manifest["tasks"]["cmmlu"]["version"] = 2
    (new / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(GateError, match=r"task version differs"):
        run_gate(RunResult.load(new), baseline=base)


def test_missing_manifest_is_a_note_not_an_error(tmp_path: Path) -> None:
    new = _copy("noise", tmp_path)
    (new / "manifest.json").unlink()
    report = run_gate(RunResult.load(new), baseline=_run("base"))
    assert report.passed
    assert any("not checked" in note for note in report.notes)


def test_samples_are_paired_by_id_and_unpaired_ones_reported(tmp_path: Path) -> None:
    new = _copy("drop", tmp_path)
    path = new / "samples" / "cmmlu.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(reversed(lines[20:])) + "\n")  # order must not matter; 20 samples gone
    report = run_gate(RunResult.load(new), baseline=_run("base"), tasks=["cmmlu"])
    check = report.checks[0]
    assert check.comparison is not None and check.comparison.n == 180 and check.unpaired == 20
    assert any("20 sample(s)" in note for note in report.notes)
    full = run_gate(_run("drop"), baseline=_run("base"), tasks=["cmmlu"]).checks[0].comparison
    assert full is not None and full.n == 200


def test_subset_comparison() -> None:
    report = run_gate(_run("drop"), baseline=_run("base"), tasks=["cmmlu/computer_science"], max_drop=1.0)
    cmp = report.checks[0].comparison
    assert cmp is not None and cmp.n == 60
    assert report.checks[0].target == "cmmlu/computer_science.acc"


def test_usage_errors(tmp_path: Path) -> None:
    base = _run("base")
    with pytest.raises(GateError, match="nothing to check"):
        run_gate(base)
    with pytest.raises(GateError, match="--max-drop needs --baseline"):
        run_gate(base, minimums=[parse_threshold("cmmlu.acc=0.1")], max_drop=0.02)
    with pytest.raises(GateError, match="alpha"):
        run_gate(base, baseline=base, alpha=0.0)
    partial = _copy("noise", tmp_path)
    (partial / "samples" / "wikitext.jsonl").unlink()
    with pytest.raises(GateError, match="per-sample records"):
        run_gate(RunResult.load(partial), baseline=base)
    results = json.loads((partial / "results.json").read_text())
    del results["tasks"]["wikitext"]
    (partial / "results.json").write_text(json.dumps(results))
    with pytest.raises(GateError, match="lacks baseline task"):
        run_gate(RunResult.load(partial), baseline=base)
    assert run_gate(RunResult.load(partial), baseline=base, tasks=["cmmlu"]).passed


def test_samples_without_outcome_are_rejected(tmp_path: Path) -> None:
    new = _copy("noise", tmp_path)
    path = new / "samples" / "cmmlu.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    del rows[3]["correct"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(GateError, match="neither a boolean 'correct', a numeric 'score' nor 'logprob'"):
        run_gate(RunResult.load(new), baseline=_run("base"))


def test_perplexity_is_compared_as_corpus_perplexity() -> None:
    base, drop = _run("base"), _run("drop")
    check = next(c for c in run_gate(drop, baseline=base, tasks=["wikitext"]).checks)
    assert check.comparison is not None
    assert check.comparison.mean_base == pytest.approx(base.score("wikitext", "word_perplexity"), rel=1e-4)
    assert check.comparison.mean_new == pytest.approx(drop.score("wikitext", "word_perplexity"), rel=1e-4)
    assert check.comparison.ci_low < check.comparison.diff < check.comparison.ci_high


def test_per_task_max_drop(tmp_path: Path) -> None:
    base, drop = _run("base"), _run("drop")
    report = run_gate(drop, baseline=base, max_drop={"*": 0.2, "wikitext": 5.0})
    assert report.passed and {c.allowed_drop for c in report.checks} == {0.2, 5.0}
    report = run_gate(drop, baseline=base, max_drop={"*": 0.2, "wikitext": 1.0})
    assert [c.target for c in report.failures] == ["wikitext.word_perplexity"]
    with pytest.raises(GateError, match="--max-drop for mmlu: not a compared task"):
        run_gate(drop, baseline=base, max_drop={"mmlu": 0.1})
    for bad in ("-0.1", "x", "=0.2", "wikitext=-1"):
        with pytest.raises(GateError, match="--max-drop"):
            parse_max_drops([bad])


def test_null_scores_are_left_out_with_a_note(tmp_path: Path) -> None:
    new = _copy("noise", tmp_path)
    path = new / "samples" / "longbench.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows[:5]:
        row["score"] = None  # e.g. a judgement that could not be parsed
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = run_gate(RunResult.load(new), baseline=_run("base"), tasks=["longbench"])
    check = report.checks[0]
    assert check.comparison is not None and check.comparison.n == 45 and check.unpaired == 5
    assert any("without a score" in note and "new run 5" in note for note in report.notes)


def test_record_kinds_must_match(tmp_path: Path) -> None:
    new = _copy("noise", tmp_path)
    rows = [json.loads(line) for line in (new / "samples" / "cmmlu.jsonl").read_text().splitlines()]
    for row in rows:
        row["score"] = float(row.pop("correct"))
    (new / "samples" / "cmmlu.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(GateError, match="baseline's samples are 'correct' records but the new run's are 'score'"):
        run_gate(RunResult.load(new), baseline=_run("base"), tasks=["cmmlu"])
