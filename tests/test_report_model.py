"""Unit tests of the report data model: reading runs, merging, ranking, special sections, lm-eval import."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.errors import DataError
from evalkit.report import (
    build_leaderboard,
    discover_results,
    format_value,
    leaderboard_for,
    load_run,
    load_runs,
    merge_rows,
    run_from_results,
)
from evalkit.report._board import overview_columns
from evalkit.report._model import headline_metric, lower_is_better, task_result
from evalkit.report._samples import sample_record
from evalkit.store._lmeval_import import convert_lmeval_results, import_lmeval_results
from evalkit.store._rundir import read_jsonl

FIXTURES = Path(__file__).parent / "data" / "report"
LMEVAL = FIXTURES / "lmeval" / "results_2026-11-01T12-00-00.500000.json"


def _run(run_id: str, model: str, tasks: dict, created: str = "2026-01-01") -> object:
    return run_from_results({"run_id": run_id, "created": created, "model": {"backend": "hf", "model": model},
                             "tasks": tasks})


def test_format_and_direction() -> None:
    assert format_value("acc", 0.41234) == "41.2"
    assert format_value("acc_macro", 1.0) == "100.0"
    assert format_value("word_perplexity", 31.4159) == "31.42"
    assert format_value("bits_per_byte", 0.61234) == "0.612"
    assert format_value("score", 6.4) == "6.40"
    assert format_value("acc", None) == ""
    assert lower_is_better("word_perplexity") and lower_is_better("bits_per_byte")
    assert not lower_is_better("acc") and not lower_is_better("score")
    assert headline_metric({"acc_stderr": 0.1, "acc_norm": 0.3, "acc": 0.2, "n": 4}) == "acc"
    assert headline_metric({"n": 3, "token_perplexity": 9.0, "word_perplexity": 20.0}) == "word_perplexity"
    assert headline_metric({"custom": 1.5}) == "custom"
    assert headline_metric({"n": 5}) is None


def test_family_detection() -> None:
    assert task_result("x", {"metrics": {"acc": 0.5}}).family == "knowledge"
    assert task_result("wikitext", {"metrics": {"word_perplexity": 20.0}}).family == "perplexity"
    assert task_result("mt_bench", {"metrics": {"score": 6.0}}).family == "judged"
    assert task_result("longbench", {"metrics": {"score": 30.0}}).family == "longcontext"
    assert task_result("t", {"metrics": {"acc": 0.5}, "info": {"kind": "longcontext"}}).family == "longcontext"
    assert task_result("t", {"metrics": {"f1": 0.5}}).family == "other"


def test_merge_rows_keeps_newest_result_per_task() -> None:
    old = _run("r1", "m", {"a": {"metrics": {"acc": 0.1}}, "b": {"metrics": {"acc": 0.2}}}, "2026-01-01")
    new = _run("r2", "m", {"a": {"metrics": {"acc": 0.9}}}, "2026-02-01")
    other = _run("r3", "z", {"a": {"metrics": {"acc": 0.5}}})
    rows = merge_rows([new, other, old])
    assert [r.label for r in rows] == ["m", "z"]
    merged = rows[0]
    assert merged.results["a"][0].run_id == "r2" and merged.results["a"][1].metrics["acc"] == 0.9
    assert merged.results["b"][0].run_id == "r1"
    assert [r.run_id for r in merged.runs] == ["r1", "r2"]


def test_ranks_best_and_missing_cells() -> None:
    runs = [
        _run("r1", "alpha", {"mc": {"metrics": {"acc": 0.60, "acc_stderr": 0.02}},
                             "ppl": {"metrics": {"word_perplexity": 30.0}}}),
        _run("r2", "beta", {"mc": {"metrics": {"acc": 0.40}}, "ppl": {"metrics": {"word_perplexity": 10.0}}}),
        _run("r3", "gamma", {"mc": {"metrics": {"acc": 0.40}}}),
    ]
    board = leaderboard_for(runs)
    columns = {c.task: c for c in board.columns}
    rows = {r.label: r for r in board.rows}
    mc, ppl = columns["mc"].id, columns["ppl"].id
    # higher acc wins; ties share a rank; only rank 1 of a column with 2+ values is "best"
    assert rows["alpha"].cells[mc].rank == 1 and rows["alpha"].cells[mc].best
    assert rows["beta"].cells[mc].rank == 2 and rows["gamma"].cells[mc].rank == 2
    # lower perplexity wins
    assert rows["beta"].cells[ppl].best and rows["alpha"].cells[ppl].rank == 2
    # gamma never ran ppl: no cell (rendered empty), not a zero
    assert ppl not in rows["gamma"].cells
    # win rates: alpha beats both on mc (1.0) and loses ppl (0.0) -> 0.5; beta ties gamma and loses alpha on
    # mc (0.25), wins ppl (1.0) -> 0.625; gamma: mc only, ties beta (0.25)
    assert rows["alpha"].win_rate == pytest.approx(0.5)
    assert rows["beta"].win_rate == pytest.approx(0.625)
    assert rows["gamma"].win_rate == pytest.approx(0.25)
    assert [r.label for r in board.rows] == ["beta", "alpha", "gamma"]
    assert [r.rank for r in board.rows] == [1, 2, 3]
    value = rows["alpha"].cells[mc].value
    assert value.ci95 == pytest.approx((0.60 - 1.96 * 0.02, 0.60 + 1.96 * 0.02))


def test_single_model_has_no_best_highlight_and_no_rank() -> None:
    board = leaderboard_for([_run("r1", "solo", {"mc": {"metrics": {"acc": 0.5}}})])
    cell = next(iter(board.rows[0].cells.values()))
    assert cell.rank == 1 and not cell.best
    assert board.rows[0].win_rate is None and board.rows[0].rank is None


def test_group_columns_follow_the_task_headline() -> None:
    runs = [_run("r1", "a", {"ceval": {"metrics": {"acc": 0.3}, "groups": {"STEM": {"acc": 0.2, "acc_macro": 0.1},
                                                                        "hard": {"acc": 0.1}}}})]
    rows = merge_rows(runs)
    cols = overview_columns(rows)
    assert [(c.task, c.group, c.metric) for c in cols] == [("ceval", None, "acc"), ("ceval", "STEM", "acc"),
                                                          ("ceval", "hard", "acc")]
    assert [c.group for c in overview_columns(rows, groups=False)] == [None]
    board = build_leaderboard(rows, cols)
    assert board.rows[0].cells[cols[1].id].value.value == 0.2


def test_special_sections_when_keys_exist() -> None:
    task = task_result("mt_bench", {
        "metrics": {"score": 6.0, "turn_1": 6.5, "turn_2": 5.5},
        "groups": {"writing": {"score": 7.0}, "math": {"score": 3.0}, "0-4k": {"score": 1.0}},
        "info": {"reliability": {"valid_rate": 0.9, "cohen_kappa": 0.5}},
        "ranking": [{"model": "b", "rating": 900}, {"model": "a", "rating": 1100, "ci_low": 1050, "ci_high": 1150},
                    {"model": "broken"}]})
    assert task.reliability == {"valid_rate": 0.9, "cohen_kappa": 0.5}
    assert [r["model"] for r in task.ranking] == ["a", "b"]
    assert task.turns == {"turn 1": 6.5, "turn 2": 5.5}
    assert list(task.buckets) == ["0-4k"] and list(task.categories) == ["writing", "math"]
    plain = task_result("ceval", {"metrics": {"acc": 0.3}, "groups": {"STEM": {"acc": 0.2}}})
    assert plain.reliability == {} and plain.ranking == [] and plain.turns == {} and plain.buckets == {}
    explicit = task_result("longbench", {"metrics": {"score": 1.0}, "length_buckets": {"0-4k": {"score": 2.0}}})
    assert list(explicit.buckets) == ["0-4k"]


def test_fixture_runs_load_and_merge() -> None:
    paths = discover_results([FIXTURES / "fixture_runs"])
    assert len(paths) == 4
    runs = [load_run(p) for p in paths]
    board = leaderboard_for(runs)
    assert sorted(r.label for r in board.rows) == ["qwen2.5-0.5b", "smollm2", "vicuna-13b-v1.3"]
    smollm2 = next(r for r in board.rows if r.label == "smollm2")
    assert sorted(smollm2.results) == ["ceval", "cmmlu", "longbench", "wikitext"]
    first = runs[0]
    assert first.manifest["seed"] == 0 and first.sample_file("ceval") is not None
    assert first.sample_file("cmmlu") is None


def test_discover_rejects_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        discover_results([tmp_path / "nope"])


def test_lmeval_import_fixture() -> None:
    data = import_lmeval_results(LMEVAL)
    assert data["source"] == "lm-eval"
    assert data["model"]["model"] == "Qwen/Qwen2.5-0.5B" and data["model"]["backend"] == "lm-eval:hf"
    assert sorted(data["tasks"]) == ["ceval", "cmmlu", "wikitext"]
    ceval = data["tasks"]["ceval"]
    assert ceval["metrics"]["acc"] == 0.41 and ceval["metrics"]["acc_stderr"] == 0.03
    assert sorted(ceval["subtasks"]) == ["computer_network", "law"]
    assert ceval["n"] == 19 + 24 and ceval["subtasks"]["law"]["n"] == 24
    assert ceval["info"]["lm_eval_task"] == "ceval-valid"
    wikitext = data["tasks"]["wikitext"]
    assert wikitext["metrics"] == {"word_perplexity": 21.7, "byte_perplexity": 1.78, "bits_per_byte": 0.83}
    assert wikitext["n"] == 62
    assert data["created"].startswith("2025-11-01T12:26:40")
    assert data["timing"] == {"total": 812.3}
    run = run_from_results(data, source="lm-eval")
    assert run.tasks["wikitext"].family == "perplexity" and run.tasks["ceval"].family == "knowledge"


def test_lmeval_filters_and_nested_groups() -> None:
    data = convert_lmeval_results({
        "results": {"gsm8k": {"exact_match,strict-match": 0.3, "exact_match_stderr,strict-match": 0.01,
                              "exact_match,flexible-extract": 0.35, "alias": "gsm8k"},
                    "mmlu": {"acc,none": 0.5}, "mmlu_stem": {"acc,none": 0.4, "alias": " - stem"},
                    "mmlu_physics": {"acc,none": 0.3, "alias": "  - physics"}},
        "group_subtasks": {"mmlu": ["mmlu_stem"], "mmlu_stem": ["mmlu_physics"]},
        "n-samples": {"mmlu_physics": {"original": 10, "effective": 8}},
        "config": {"model": "vllm", "model_args": {"pretrained": "org/x", "revision": "v2"}}}, name="r")
    gsm = data["tasks"]["gsm8k"]["metrics"]
    assert gsm == {"exact_match_strict-match": 0.3, "exact_match_strict-match_stderr": 0.01,
                   "exact_match_flexible-extract": 0.35}
    mmlu = data["tasks"]["mmlu"]
    assert sorted(data["tasks"]) == ["gsm8k", "mmlu"]
    assert mmlu["groups"] == {"stem": {"acc": 0.4, "n": 8}}
    assert mmlu["subtasks"] == {"physics": {"acc": 0.3, "n": 8}} and mmlu["n"] == 8
    assert data["model"]["revision"] == "v2" and data["run_id"] == "lm-eval-x-r"


def test_lmeval_import_errors(tmp_path: Path) -> None:
    bad = tmp_path / "results_x.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="not valid JSON"):
        import_lmeval_results(bad)
    bad.write_text('{"tasks": {}}', encoding="utf-8")
    with pytest.raises(DataError, match="no 'results'"):
        import_lmeval_results(bad)
    with pytest.raises(DataError, match="no such"):
        import_lmeval_results(tmp_path / "missing.json")


def test_judged_answers_run_becomes_one_row_per_model() -> None:
    """`evalkit judge` output (real, made with scripted fake judges): scores per model, reliability, ranking."""
    (path,) = discover_results([FIXTURES / "judged"])
    parent, *models = load_runs(path)
    assert not parent.listed and parent.label == "judged answers of 3 models"
    assert [m.label for m in models] == ["alpaca-13b", "gpt-4", "vicuna-13b-v1.3"]
    gpt4 = models[1].tasks["mt_bench"]
    assert models[1].page_id == parent.run_id and models[1].parent == parent.run_id
    value = gpt4.value("score")
    assert value is not None and value.ci95 is not None and value.ci95[0] < value.value < value.ci95[1]
    assert gpt4.family == "judged" and set(gpt4.turns) == {"turn 1"}
    assert {"writing", "roleplay", "reasoning"} <= set(gpt4.categories)
    task = parent.tasks["mt_bench"]
    assert task.reliability["valid_rate"] == 1.0
    assert task.ranking[0]["model"] == "gpt-4" and all("rating" in r for r in task.ranking)
    board = leaderboard_for([parent, *models])
    assert sorted(r.label for r in board.rows) == ["alpaca-13b", "gpt-4", "vicuna-13b-v1.3"]
    cell = next(iter(board.rows[0].cells.values()))
    assert cell.run_id == parent.run_id


def test_judge_sample_rows_show_answer_and_judge_text() -> None:
    (path,) = discover_results([FIXTURES / "judged"])
    line = next(read_jsonl(path.parent / "samples" / "mt_bench.jsonl"))
    record = sample_record(line, 0)
    assert record["responses"] == [line["prediction"]]
    assert record["model"] == line["models"][0]
    assert record["votes"][0]["reasoning"] == line["responses"][0]
    assert record["votes"][0]["verdict"] == "8.0" and record["votes"][0]["judge"].endswith("#0")


def test_odd_results_do_not_break_the_site(tmp_path: Path) -> None:
    """Keys other helpers may add or leave out: strings, nulls, NaN-turned-null, empty tasks, nested junk."""
    from evalkit.report import build_site

    runs = [
        run_from_results({"run_id": "a", "model": "plain-string-model", "tasks": {}}),
        run_from_results({"run_id": "b", "model": {"model": "m"}, "tasks": {
            "t": {"metrics": {"acc": None, "note": "text", "bits_per_byte": None}, "groups": {"g": "oops"},
                  "subtasks": None, "n": "12", "info": {"kind": 3}},
            "u": "not a mapping",
            "v": {"metrics": {"custom_metric": 2.5, "custom_metric_stderr": "N/A"}, "ranking": "bad",
                  "reliability": [1, 2], "length_buckets": {"0-4k": 5}}}}),
    ]
    summary = build_site(runs, tmp_path)
    assert summary.models == 2 and (tmp_path / "tasks" / "v.html").is_file()
    board = leaderboard_for(runs)
    assert [c.metric for c in board.columns] == ["custom_metric"]
    task = runs[1].tasks["v"]
    assert task.ranking == [] and task.reliability == {} and task.buckets == {}
    # a count that is not a number reads as 0; a kind that is not a string is ignored (the metrics decide)
    assert runs[1].tasks["t"].n == 0 and runs[1].tasks["t"].family == "knowledge"
