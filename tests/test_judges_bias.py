"""The judge-bias report with scripted judges whose biases are known: every expected figure is worked out by
hand in the comments, from the rule the scripted judge follows."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from evalkit.backends._fake import FakeBackend, from_script
from evalkit.judges import GenerativeJudge, JudgeConfig, JudgeItem, judge_items, load_judge_definition, vote
from evalkit.judges._bias import bias_report, judge_base_name
from evalkit.judges._command import JudgeRunOptions, run_judge
from evalkit.judges._listwise import ListwiseJudge
from evalkit.types import Completion, Conversation, GenConfig, Usage

PAIR = load_judge_definition("mt-bench-pair")
SINGLE = load_judge_definition("mt-bench-single")
LISTWISE = load_judge_definition("listwise-vote")
_SHOWN = re.compile(r"\[Assistant ([AB])'s Answer - start\]\n(.*?)\n\[Assistant \1's Answer - end\]", re.DOTALL)
_BLOCK = re.compile(r"\[Answer (\d+)\]\n(.*?)\n\[End of Answer \1\]", re.DOTALL)


def _pair(qid: str, a: str, b: str) -> JudgeItem:
    return JudgeItem(qid, "writing", 1, ("Q?",), ("x", "y"), ((a,), (b,)))


def _reply(text: str) -> Completion:
    return Completion((text,), Usage(1, len(text)), ("stop",))


class LongerWins(FakeBackend):
    """Pairwise: always prefers the longer answer shown (whatever the order); listwise: ranks by length."""

    def generate(self, conversations: Sequence[Conversation], config: GenConfig) -> list[Completion]:
        out = []
        for conv in conversations:
            text = conv[-1].content
            blocks = _BLOCK.findall(text)
            if blocks:
                ordered = sorted(blocks, key=lambda b: -len(b[1]))
                out.append(_reply("[[" + " > ".join(n for n, _ in ordered) + "]]"))
            else:
                shown = dict(_SHOWN.findall(text))
                out.append(_reply("[[A]]" if len(shown["A"]) > len(shown["B"]) else "[[B]]"))
        return out


def _judged(judge: GenerativeJudge, items: list[JudgeItem]) -> list:
    return judge_items(vote([judge]), items)


def test_position_biased_pairwise_judge() -> None:
    # The judge prefers the answer holding GOOD in both orders (item q1), and otherwise always says [[A]],
    # whichever answer is shown first (q2..q4).
    script = {"replies": [{"match": r"A's Answer - start\]\nGOOD", "texts": ["[[A]]"]},
                          {"match": r"B's Answer - start\]\nGOOD", "texts": ["[[B]]"]},
                          {"match": ".*", "texts": ["[[A]]"]}]}
    items = [_pair("q1", "GOOD", "bad answer"), _pair("q2", "a", "bb"), _pair("q3", "ccc", "d"),
             _pair("q4", "eeee", "ff")]
    report = bias_report(_judged(GenerativeJudge(PAIR, from_script(script), name="j"), items))
    pos, length = report["position"], report["length"]
    # 8 verdicts (4 items x 2 orders), none a tie. q2..q4: both orders pick the first shown (6 verdicts);
    # q1: the AB order picks GOOD shown first, the BA order picks GOOD shown second -> 7 of 8 follow position.
    assert pos["verdicts"] == 8 and pos["decisive"] == 8 and pos["tie_rate"] == 0
    assert pos["first_position_rate"] == pytest.approx(7 / 8, abs=1e-4)
    # q2..q4 change verdict when the order is swapped (their winner swaps too), q1 does not: 3 of 4 votes
    assert pos["flip_rate"] == pytest.approx(0.75) and pos["reversal_rate"] == pytest.approx(0.75)
    # length: q1 GOOD(4) < "bad answer"(10), GOOD wins both orders -> 0 of 2; q2..q4 one verdict per item picks
    # the longer answer -> 3 of 6. In all 3 of 8.
    assert length["comparisons"] == 8 and length["longer_preferred_rate"] == pytest.approx(3 / 8, abs=1e-4)
    assert "self_preference" not in report


def test_length_biased_pairwise_judge() -> None:
    items = [_pair("q1", "short", "a much longer answer"), _pair("q2", "longer than two", "two"),
             _pair("q3", "same", "size")]
    report = bias_report(_judged(GenerativeJudge(PAIR, LongerWins(), name="j"), items))
    # q1, q2: the longer answer wins in both orders (4 verdicts, all longer); q3 has equal lengths: the judge
    # says [[B]] in both orders (not longer), i.e. y in AB and x in BA -> left out of the length figure.
    assert report["length"] == {"unit": "characters", "comparisons": 4, "longer_preferred_rate": 1.0}
    # position: q1 AB picks B (second), BA picks the longer = first shown; q2 AB first, BA second;
    # q3 always B = second shown -> first shown chosen in 2 of 6 verdicts
    assert report["position"]["first_position_rate"] == pytest.approx(2 / 6, abs=1e-4)
    # q1, q2 keep their verdict under the swap; q3's verdict flips from y to x: 1 of 3 votes
    assert report["position"]["flip_rate"] == pytest.approx(1 / 3, abs=1e-4)


def test_single_grading_length_correlation() -> None:
    # ratings by answer: lengths 10, 20, 30, 40 get 2, 3, 5, 4 -> rank differences 0, 0, 1, 1:
    # rho = 1 - 6 * 2 / (4 * (16 - 1)) = 0.8
    ratings = {"a" * 10: 2, "b" * 20: 3, "c" * 30: 5, "d" * 40: 4}
    script = {"replies": [{"match": f"\n{answer}\n", "texts": [f"Rating: [[{r}]]"]} for answer, r in ratings.items()]}
    items = [JudgeItem(f"q{i}", "writing", 1, ("Q?",), ("m",), ((answer,),)) for i, answer in enumerate(ratings)]
    report = bias_report(_judged(GenerativeJudge(SINGLE, from_script(script), name="j"), items))
    assert report["length"]["ratings"] == 4 and report["length"]["spearman"] == pytest.approx(0.8)
    assert "position" not in report


def test_self_preference_of_a_judge_that_is_also_judged() -> None:
    # judge "openai:model-x" gives its own model 9 and the other 5; the neutral judge gives both 6
    own = from_script({"replies": [{"match": "\nMINE\n", "texts": ["[[9]]"]}, {"match": ".*", "texts": ["[[5]]"]}]})
    neutral = from_script({"replies": [{"match": ".*", "texts": ["[[6]]"]}]})
    items = [JudgeItem(f"q{i}", "writing", 1, ("Q?",), (model,), ((text,),))
             for i in range(2) for model, text in (("model-x", "MINE"), ("model-y", "THEIRS"))]
    panel = vote([GenerativeJudge(SINGLE, own, name="openai:model-x"), GenerativeJudge(SINGLE, neutral, name="n")])
    report = bias_report(judge_items(panel, items))
    assert report["self_preference"] == {"openai:model-x": {
        "model": "model-x", "measure": "mean rating", "own": 9.0, "n_own": 2, "others": 5.0, "delta": 4.0,
        "own_by_other_judges": 6.0}}
    assert judge_base_name("hf:/m/Model-X#2[probability]") == "model-x"


def test_position_biased_listwise_judge() -> None:
    # always ranks the answers in the order shown: the first shown is always on top
    items = [JudgeItem(f"q{i}", "writing", 1, ("Q?",), ("a", "b", "c"), (("x",), ("yy",), ("zzz",)), listwise=True)
             for i in range(5)]
    judge = ListwiseJudge(LISTWISE, from_script({"replies": [{"match": ".*", "texts": ["[[1 > 2 > 3]]"]}]}),
                          name="j", votes=2)
    judged = _judged(judge, items)
    pos = bias_report(judged)["position"]
    assert pos["verdicts"] == 10 and pos["first_position_rate"] == 1.0 and pos["earlier_preferred_rate"] == 1.0
    assert pos["chance"] == pytest.approx(1 / 3, abs=1e-4) and pos["compared_pairs"] == 30
    # the longer-answer figure follows the shuffles: recount it from the recorded orders
    longer = sum(int(o[i]) > int(o[j]) for j_ in judged for v in j_.votes for o in [v.parts[0].order.split(",")]
                 for i in range(3) for j in range(i + 1, 3))  # answer lengths grow with the model index
    assert bias_report(judged)["length"]["longer_preferred_rate"] == pytest.approx(longer / 30, abs=1e-4)


def test_length_biased_listwise_judge() -> None:
    items = [JudgeItem(f"q{i}", "writing", 1, ("Q?",), ("a", "b", "c", "d"),
                       (("x" * 5,), ("y" * 50,), ("z" * 20,), ("w" * 9,)), listwise=True) for i in range(4)]
    judged = _judged(ListwiseJudge(LISTWISE, LongerWins(), name="j"), items)
    report = bias_report(judged)
    assert report["length"]["longer_preferred_rate"] == 1.0 and report["length"]["comparisons"] == 24
    # the longest answer (model b, index 1) is on top: position follows only where b was shown first
    firsts = sum(j.votes[0].parts[0].order.split(",")[0] == "1" for j in judged)
    assert report["position"]["first_position_rate"] == pytest.approx(firsts / 4, abs=1e-4)


def test_evalkit_judge_writes_the_bias_report(data_dir: Path, tmp_path: Path) -> None:
    options = JudgeRunOptions(answers=data_dir / "mt_bench" / "model_answer", data_dir=data_dir, output=tmp_path,
                              judge=JudgeConfig("mt-bench-pair", models=("first-pick",)),
                              models=("gpt-4", "llama-13b"), limit=3, turns=(1,), hub=False, bootstrap_rounds=10,
                              echo=lambda msg: None)
    always_a = from_script({"replies": [{"match": ".*", "texts": ["[[A]]"]}]})
    run = run_judge(options, backend_factory=lambda spec, args: always_a)
    assert run is not None
    results = json.loads((run / "results.json").read_text())
    bias = results["reliability"]["bias"]
    assert results["tasks"]["mt_bench"]["info"]["bias"] == bias
    # 3 questions x 2 orders, the judge always picks the first shown answer
    assert bias["position"] == {"verdicts": 6, "decisive": 6, "first_position_rate": 1.0, "tie_rate": 0.0,
                                "swapped_votes": 3, "flip_rate": 1.0, "reversal_rate": 1.0}
    assert bias["length"]["longer_preferred_rate"] == 0.5


def test_report_task_page_shows_the_bias_section(data_dir: Path, tmp_path: Path) -> None:
    from evalkit.report import build_site, load_runs

    options = JudgeRunOptions(answers=data_dir / "mt_bench" / "model_answer", data_dir=data_dir,
                              output=tmp_path / "runs", judge=JudgeConfig("mt-bench-pair", models=("first-pick",)),
                              models=("gpt-4", "llama-13b"), limit=2, turns=(1,), hub=False, bootstrap_rounds=10,
                              echo=lambda msg: None)
    always_a = from_script({"replies": [{"match": ".*", "texts": ["[[A]]"]}]})
    run = run_judge(options, backend_factory=lambda spec, args: always_a)
    assert run is not None
    build_site(load_runs(run), tmp_path / "site")
    page = (tmp_path / "site" / "tasks" / "mt_bench.html").read_text()
    section = page.split("<h2>Judge bias", 1)[1].split("</section>", 1)[0]
    assert "position · first position rate</td><td class=\"num\">1.0</td>" in section
    assert "position · flip rate</td><td class=\"num\">1.0</td>" in section
    reliability = page.split("<h2>Judge reliability", 1)[1].split("</section>", 1)[0]
    assert "first_position" not in reliability and "first position" not in reliability  # shown once, in its section


def test_length_controlled_win_rate() -> None:
    from evalkit.judges._lc import lc_win_rate

    # length-neutral judge: the model wins 3 of 4 items whether its answer is longer or shorter -> the length
    # term is 0 and the length-controlled rate equals the raw 0.75 (up to the small prior)
    neutral = lc_win_rate([1, 1, 1, 0, 1, 1, 1, 0] * 5, [40, 80, 120, 60, -40, -80, -120, -60] * 5, rounds=50)
    assert neutral["win_rate"] == 0.75 and neutral["lc_win_rate"] == pytest.approx(0.75, abs=0.01)
    # length-biased judge: the model's answers are longer on 3 of 4 items and it wins 9 of 10 of those, but
    # only 1 of 10 where it is shorter: raw 0.7, and at equal length it is about even
    prefs = ([1.0] * 9 + [0.0]) * 3 + [1.0] + [0.0] * 9
    diffs = [100.0] * 30 + [-100.0] * 10
    biased = lc_win_rate(prefs, diffs, rounds=100)
    assert biased["win_rate"] == pytest.approx(0.7) and biased["n"] == 40
    assert biased["lc_win_rate"] == pytest.approx(0.5, abs=0.05) and biased["lc_win_rate"] < biased["win_rate"] - 0.15
    assert biased["lc_win_rate_ci_low"] <= biased["lc_win_rate"] <= biased["lc_win_rate_ci_high"]


def test_pairwise_against_a_baseline_reports_the_length_controlled_rate() -> None:
    items = [JudgeItem(f"q{i}", "writing", 1, ("Q?",), ("m", "base"), ((a,), (b,)))
             for i, (a, b) in enumerate([("aaaa", "a"), ("bbbb", "b"), ("c", "cccc"), ("d", "dddd")])]
    from evalkit.judges import summarize

    judge = GenerativeJudge(PAIR, LongerWins(), name="j")
    panel = vote([judge])
    scores = summarize(judge_items(panel, items), panel.stats, {"j": judge.stats}, reducer="mean", kind="pairwise",
                       anchor="base", bootstrap_rounds=20)["scores"]
    # m wins exactly where it is longer (2 of 4, by the same margin it loses by): raw 0.5, even at equal length
    assert scores["m"]["score_rate"] == 0.5 and scores["m"]["lc_win_rate"] == pytest.approx(0.5, abs=0.01)
    assert scores["m"]["lc_win_rate_ci_low"] <= 0.5 <= scores["m"]["lc_win_rate_ci_high"]


def test_mt_bench_in_a_run_carries_the_bias_report(tmp_path: Path, data_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.tasks._kind import RunContext
    from evalkit.tasks._spec import load_spec_file
    from evalkit.tasks.multiturn_judge import run as run_mt_bench

    monkeypatch.setenv("EVALKIT_OFFLINE", "1")
    spec = load_spec_file(Path(__file__).resolve().parents[1] / "tasks" / "mt_bench.yaml")

    class Sink:
        def write(self, samples: Sequence[dict]) -> None:
            pass

    first = tmp_path / "first-pick.yaml"
    first.write_text('replies:\n  - match: ".*"\n    texts: ["[[A]]"]\n', encoding="utf-8")
    pairwise = JudgeConfig.from_cli(definition="mt-bench-pair", models=[f"fake:{first}"])
    outcome = run_mt_bench(spec, from_script({}, name="answerer"), RunContext(
        data_dir=data_dir, judge=pairwise, subsets=("writing",), limit=2, task_args={"baseline": "llama-13b"}), Sink())
    # 2 questions x 2 turns = 4 votes, 8 verdicts, each for the answer shown first
    assert outcome.info["bias"]["position"] == {"verdicts": 8, "decisive": 8, "first_position_rate": 1.0,
                                                "tie_rate": 0.0, "swapped_votes": 4, "flip_rate": 1.0,
                                                "reversal_rate": 1.0}
    # the judge script is named after the judged model: its ratings of its own answers are self-preference
    own = tmp_path / "answerer.yaml"
    own.write_text('replies:\n  - match: ".*"\n    texts: ["Rating: [[8]]"]\n', encoding="utf-8")
    single = JudgeConfig.from_cli(models=[f"fake:{own}"])
    outcome = run_mt_bench(spec, from_script({}, name="answerer"),
                           RunContext(judge=single, subsets=("writing",), limit=1), Sink())
    assert outcome.info["bias"]["self_preference"] == {f"fake:{own}": {
        "model": "answerer", "measure": "mean rating", "own": 8.0, "n_own": 2}}
