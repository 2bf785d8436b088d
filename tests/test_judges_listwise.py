"""Listwise judging (LLMZoo's vote) with scripted judges: ranking verdicts, shuffled presentation with recorded
seeds, invalid rankings, aggregates on official MT-Bench answer files, and the CLI's bad input."""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from evalkit.backends._fake import FakeBackend, from_script
from evalkit.cli import main
from evalkit.judges import JudgeConfig, JudgeItem, judge_items, load_judge_definition, vote
from evalkit.judges._command import JudgeRunOptions, run_judge
from evalkit.judges._listwise import ListwiseJudge, parse_ranking, presented_order
from evalkit.types import Completion, Conversation, GenConfig, Usage

LISTWISE = load_judge_definition("listwise-vote")
MODELS = ("alpaca-13b", "gpt-4", "llama-13b", "vicuna-13b-v1.3")
_BLOCK = re.compile(r"\[Answer (\d+)\]\n(.*?)\n\[End of Answer \1\]", re.DOTALL)


@pytest.mark.parametrize(("text", "value", "error"), [
    ("Answer 2 is best. [[2 > 1 = 3]]", "2.5,1,2.5", ""),
    ("[[3, 1, 2]]", "2,3,1", ""),
    ("quoted [[2 > 1 > 3]] then mine [[1=2=3]]", "2,2,2", ""),  # the last verdict counts
    ("[[1 > 1 > 2]]", None, "answer 1 named twice"),
    ("[[1 > 3]]", None, "answer(s) 2 not ranked"),
    ("[[1 > 2 > 4]]", None, "answer 4 not among 1..3"),
    ("I prefer the first.", None, "no [[ranking]] verdict found (e.g. [[2 > 1 = 3]])"),
])
def test_parse_ranking(text: str, value: str | None, error: str) -> None:
    parsed = parse_ranking(text, 3)
    assert (parsed.value, parsed.error) == (value, error)


def _item(qid: str = "q1", answers: Sequence[str] = ("one", "BEST two", "three", "four")) -> JudgeItem:
    models = tuple("abcdefgh"[: len(answers)])
    return JudgeItem(qid, "writing", 1, ("Q?",), models, tuple((a,) for a in answers), listwise=True)


class BestFirst(FakeBackend):
    """Puts the answer holding BEST on top and ties all the others."""

    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        out = []
        for conv in conversations:
            self.calls["generate"] += 1
            blocks = _BLOCK.findall(conv[-1].content)
            best = next(n for n, text in blocks if "BEST" in text)
            rest = " = ".join(n for n, _ in blocks if n != best)
            out.append(Completion((f"Comparison done. [[{best} > {rest}]]",), Usage(1, 1), ("stop",)))
        return out


def test_orders_are_shuffled_per_vote_with_recorded_seeds_and_mapped_back() -> None:
    judge = ListwiseJudge(LISTWISE, BestFirst(), name="j", votes=4, seed=3)
    [votes] = judge.judge([_item()])
    orders = [v.parts[0].order for v in votes]
    assert len(set(orders)) > 1  # presentation differs between votes
    for sample, v in enumerate(votes):
        part = v.parts[0]
        assert (part.seed, part.order) == presented_order(_item(), 3, sample)
        order = [0, 1, 2, 3]
        random.Random(part.seed).shuffle(order)  # the recorded seed reproduces the order shown
        assert part.order == ",".join(map(str, order))
        assert v.value == "3,1,3,3"  # whatever the order shown: model b (BEST) first, the rest tied at 3
    again = ListwiseJudge(LISTWISE, BestFirst(), name="j", votes=4, seed=3).judge([_item()])[0]
    assert [v.parts[0].order for v in again] == orders  # a rerun presents the same orders
    assert judge.stats.calls == 4 and votes[0].parts[0].raw.startswith("Comparison done.")


def test_prompt_numbers_the_shuffled_answers() -> None:
    from evalkit.judges._listwise import listwise_conversation

    conv = listwise_conversation(LISTWISE, _item(), "2,0,3,1")
    text = conv[-1].content
    assert [b for _, b in _BLOCK.findall(text)] == ["three", "one", "four", "BEST two"]
    assert "rank all 4 answers" in text and conv[0].role == "system"


def test_invalid_ranking_is_retried_then_left_out() -> None:
    # texts[(seed) % 2]: try 1 (seed 0) names answer 1 twice, the retry (seed 1) is valid
    script = {"replies": [{"match": ".*", "texts": ["[[1 > 1 > 2]]", "[[3 > 1 > 2]]"]}]}
    item = _item(answers=("x", "y", "z"))
    [[v]] = ListwiseJudge(LISTWISE, from_script(script), name="j").judge([item])
    assert v.parts[0].tries == 2 and v.parts[0].earlier == ("[[1 > 1 > 2]]",) and v.valid
    always_bad = from_script({"replies": [{"match": ".*", "texts": ["[[1 > 1 > 2]]"]}]})
    judge = ListwiseJudge(LISTWISE, always_bad, name="bad", votes=2)
    [done] = judge_items(vote([judge]), [item])
    assert not done.reduced.valid and done.reduced.valid_votes == 0 and done.reduced.ranks is None
    assert all(v.parts[0].error == "answer 1 named twice" and v.parts[0].tries == 3 for v in done.votes)


def test_reduced_mean_ranks_over_votes() -> None:
    # vote 0 ranks the shown answers 1 > 2 > 3, vote 1 ranks them 3 > 2 > 1 (texts picked by seed)
    script = {"replies": [{"match": ".*", "texts": ["[[1 > 2 > 3]]", "[[3 > 2 > 1]]"]}]}
    item = _item(answers=("x", "y", "z"))
    [done] = judge_items(vote([ListwiseJudge(LISTWISE, from_script(script), name="j", votes=2)]), [item])
    expected = [0.0, 0.0, 0.0]
    for v in done.votes:  # recompute from the recorded orders: shown position k got rank k+1 (or 3-k)
        shown = [int(i) for i in v.parts[0].order.split(",")]
        for position, model in enumerate(shown):
            expected[model] += (position + 1 if v.sample == 0 else 3 - position) / 2
    assert done.reduced.ranks == pytest.approx(tuple(expected))


class LengthRanker(FakeBackend):
    """Ranks the shown answers by length, longest first; equal lengths tie."""

    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        out = []
        for conv in conversations:
            blocks = _BLOCK.findall(conv[-1].content)
            lengths = sorted({len(t) for _, t in blocks}, reverse=True)
            groups = [" = ".join(n for n, t in blocks if len(t) == length) for length in lengths]
            out.append(Completion(("[[" + " > ".join(groups) + "]]",), Usage(1, 1), ("stop",)))
        return out


def _expected_ranks(data_dir: Path, limit: int) -> dict[str, list[float]]:
    ids = [json.loads(line)["question_id"] for line in (data_dir / "mt_bench" / "question.jsonl").read_text().splitlines()][:limit]
    lengths: dict[int, dict[str, int]] = defaultdict(dict)
    for model in MODELS:
        for line in (data_dir / "mt_bench" / "model_answer" / f"{model}.jsonl").read_text().splitlines():
            row = json.loads(line)
            if row["question_id"] in ids:
                lengths[row["question_id"]][model] = len(row["choices"][0]["turns"][0])
    ranks: dict[str, list[float]] = defaultdict(list)
    for per_model in lengths.values():
        for model, n in per_model.items():
            longer = sum(other > n for other in per_model.values())
            same = sum(other == n for other in per_model.values())
            ranks[model].append(longer + (same + 1) / 2)
    return ranks


@pytest.fixture(scope="module")
def listwise_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    options = JudgeRunOptions(answers=data_dir / "mt_bench" / "model_answer", data_dir=data_dir,
                              output=tmp_path_factory.mktemp("runs"),
                              judge=JudgeConfig("listwise-vote", models=("length-ranker",), votes=2),
                              models=MODELS, limit=6, turns=(1,), hub=False, bootstrap_rounds=30, echo=lambda m: None)
    path = run_judge(options, backend_factory=lambda spec, args: LengthRanker(name=spec))
    assert path is not None
    yield path


def test_listwise_aggregates_on_official_answers(listwise_run: Path, data_dir: Path) -> None:
    results = json.loads((listwise_run / "results.json").read_text())
    expected = _expected_ranks(data_dir, 6)
    for model in MODELS:
        got = results["scores"][model]
        mine = expected[model]
        assert got["n"] == 12  # 6 questions x 2 votes
        assert got["mean_rank"] == pytest.approx(sum(mine) / len(mine), abs=1e-4)
        assert got["first_place"] == 2 * sum(r == 1 for r in mine)
        assert got["mean_rank_ci_low"] <= got["mean_rank"] <= got["mean_rank_ci_high"]
    ranking = [r["model"] for r in results["ranking"]]
    by_mean_rank = sorted(MODELS, key=lambda m: results["scores"][m]["mean_rank"])
    assert ranking[0] == by_mean_rank[0] and ranking[-1] == by_mean_rank[-1]
    assert all(r["battles"] == 12 * 3 for r in results["ranking"])  # each ranking implies 3 battles per model
    assert results["judge"]["type"] == "listwise" and results["judge"]["cost"]["calls"] == 12
    assert results["reliability"]["valid_rate"] == 1.0
    assert results["reliability"]["bias"]["length"]["longer_preferred_rate"] == 1.0
    rows = [json.loads(line) for line in (listwise_run / "samples" / "mt_bench.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(r["valid"] and set(r["ranks"]) == set(MODELS) for r in rows)
    assert all(p["seed"] is not None for r in rows for v in r["votes"] for p in v["parts"])


def test_listwise_judge_given_one_model_exits_2(data_dir: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["judge", "--answers", str(data_dir / "mt_bench" / "model_answer"), "--judge", "listwise-vote",
                 "--models", "gpt-4", "--judge-model", "fake:echo", "--data-dir", str(data_dir),
                 "-o", str(tmp_path / "runs"), "--no-cache"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "listwise judge 'listwise-vote' ranks the answers of 2 to 8 models; got 1 (gpt-4)" in err


@pytest.mark.integration
def test_smollm2_listwise_judge_through_serve(data_dir: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The embedded model ranks three official answer files behind a real `evalkit serve` (2 questions)."""
    from evalkit.backends import load_backend
    from evalkit.server import create_app, serve_in_thread

    judge = tmp_path / "short-listwise.yaml"  # a short verdict budget keeps the CPU run quick
    judge.write_text("name: short-listwise\nextends: listwise-vote\nmax_tokens: 32\nmax_retries: 0\n", encoding="utf-8")
    with serve_in_thread(create_app(load_backend("smollm2"), "smollm2-judge")) as url:
        code = main(["judge", "--answers", str(data_dir / "mt_bench" / "model_answer"), "--judge", str(judge),
                     "--models", "gpt-4,llama-13b,vicuna-13b-v1.3", "--judge-model", "openai:smollm2-judge",
                     "--judge-args", f"base_url={url}", "--data-dir", str(data_dir), "--limit", "2", "--turns", "1",
                     "-o", str(tmp_path / "runs"), "--no-cache"])
    assert code == 0
    run = Path(capsys.readouterr().out.strip().splitlines()[-1])
    results = json.loads((run / "results.json").read_text())
    cost = results["judge"]["cost"]
    assert cost["calls"] == 2 and cost["completion_tokens"] > 0
    rows = [json.loads(line) for line in (run / "samples" / "mt_bench.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    for row in rows:  # a ranking is either valid (every model ranked) or left out, never scored
        if row["valid"]:
            assert sorted(row["ranks"]) == ["gpt-4", "llama-13b", "vicuna-13b-v1.3"]
            assert min(row["ranks"].values()) >= 1
        else:
            assert row["ranks"] is None
    valid = sum(r["valid"] for r in rows)
    assert results["reliability"]["valid_rate"] == valid / 2
    assert sum(results["scores"].get(m, {}).get("n", 0) for m in ("gpt-4",)) == valid


def test_reply_prefix_forces_the_verdict_start_on_a_local_backend() -> None:
    # the fake backend renders chat as "<|role|>\ncontent\n" and continues raw text: the forced "[[" is the
    # last thing of the prompt it sees, and the parsed reply starts with it
    script = {"replies": [{"match": r"<\|assistant\|>\n\[\[$", "texts": ["3 > 1 > 2]]"]},
                          {"match": ".*", "texts": ["no verdict"]}]}
    forced = LISTWISE.model_copy(update={"reply_prefix": "[[", "max_retries": 0})
    [[v]] = ListwiseJudge(forced, from_script(script), name="j").judge([_item(answers=("x", "y", "z"))])
    part = v.parts[0]
    assert part.raw == "[[3 > 1 > 2]]" and v.valid
    shown = [int(i) for i in part.order.split(",")]
    assert v.value.split(",")[shown[2]] == "1"  # the third answer shown ranked first


def test_probability_mode_ranks_by_first_place_probability(data_dir: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    # the scripted judge puts P(best) 0.5 on answer 1, 0.3 on answer 2, 0.2 on answer 3 whatever they say:
    # a pure position bias, so each vote ranks the answers in the order shown
    script = tmp_path / "prob.yaml"
    script.write_text('loglikelihood: {"1": -0.6931471805599453, "2": -1.2039728043259361, '
                      '"3": -1.6094379124341003}\n', encoding="utf-8")
    code = main(["judge", "--answers", str(data_dir / "mt_bench" / "model_answer"), "--judge", "listwise-vote",
                 "--judge-mode", "probability", "--models", "gpt-4,llama-13b,alpaca-13b", "--judge-votes", "3",
                 "--judge-model", f"fake:{script}", "--data-dir", str(data_dir), "--limit", "2", "--turns", "1",
                 "--no-cache", "-o", str(tmp_path / "runs")])
    assert code == 0
    run = Path(capsys.readouterr().out.strip().splitlines()[-1])
    results = json.loads((run / "results.json").read_text())
    assert results["judge"]["cost"]["calls"] == 6 and results["judge"]["cost"]["loglikelihood_requests"] == 18
    rows = [json.loads(line) for line in (run / "samples" / "mt_bench.jsonl").read_text().splitlines()]
    for row in rows:
        for v in row["votes"]:
            part = v["parts"][0]
            shown = [row["models"][int(i)] for i in part["order"].split(",")]
            assert [part["distribution"][m] for m in shown] == pytest.approx([0.5, 0.3, 0.2])
            assert part["value"].split(",") == [str(shown.index(m) + 1) for m in row["models"]]
    assert results["reliability"]["bias"]["position"]["first_position_rate"] == 1.0
