"""The lm-eval bridge: lm-eval task definitions run through evalkit backends (`--tasks lmeval:<task>`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from evalkit.backends import ModelIdentity
from evalkit.errors import ConfigError
from evalkit.lmeval import gen_config, outcome_from_lmeval, sample_records
from evalkit.types import GenConfig


def _samples(run_dir: Path, task: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "samples" / f"{task}.jsonl").read_text().splitlines()]


# ---- pure conversions (no lm-eval run) ------------------------------------------------------------------

def test_generation_kwargs_map_onto_genconfig() -> None:
    assert gen_config({"until": "\n", "max_gen_toks": 7}) == GenConfig(max_tokens=7, stop=("\n",))
    sampled = gen_config({"until": ["</s>"], "do_sample": True, "temperature": 0.7, "top_p": 0.9})
    assert (sampled.temperature, sampled.top_p, sampled.stop, sampled.max_tokens) == (0.7, 0.9, ("</s>",), 256)
    assert gen_config({"do_sample": False, "temperature": 0.7}).greedy
    assert gen_config({"do_sample": True}).temperature == 1.0
    with pytest.raises(ConfigError, match="num_beams"):
        gen_config({"num_beams": 4})


def test_results_become_subtasks_groups_and_headline() -> None:
    out = {"results": {"grp": {"acc,none": 0.5, "acc_stderr,none": 0.1, "alias": "grp"},
                       "grp_a": {"acc,none": 1.0, "acc_stderr,none": 0.0, "alias": " - a"},
                       "grp_b": {"acc,none": 0.25, "exact_match,flexible": 0.5, "alias": " - b"}},
           "group_subtasks": {"grp": ["grp_a", "grp_b"]},
           "n-samples": {"grp_a": {"original": 10, "effective": 2}, "grp_b": {"original": 9, "effective": 4}}}
    one = outcome_from_lmeval(out, ["grp"])
    assert one.metrics == {"acc": 0.5, "acc_stderr": 0.1} and one.n == 6
    assert one.groups == {"grp": {"acc": 0.5, "acc_stderr": 0.1, "n": 6}}
    assert one.subtasks["grp_b"] == {"acc": 0.25, "exact_match_flexible": 0.5, "n": 4}
    two = outcome_from_lmeval(out, ["grp_a", "grp_b"])
    assert two.metrics == {} and two.n == 6 and set(two.subtasks) == {"grp_a", "grp_b"}


def test_sample_records_for_choices_and_generations() -> None:
    choice = {"doc_id": 7, "target": 2, "arguments": [("Q?\nAnswer:", " A"), ("Q?\nAnswer:", " B"),
                                                       ("Q?\nAnswer:", " C")],
              "filtered_resps": [(-3.0, False), (-1.0, True), (-2.0, False)], "metrics": ["acc"], "acc": 0.0}
    gen = {"doc_id": 0, "target": "Paris", "arguments": {"gen_args_0": {"arg_0": "Capital?", "arg_1": {}}},
           "filtered_resps": ["Paris"], "metrics": ["exact_match"], "exact_match": 1.0}
    [mc] = sample_records("t", [choice])
    assert (mc["id"], mc["subset"], mc["doc_index"], mc["prompt"]) == ("t/7", "t", 7, "Q?\nAnswer:")
    assert (mc["prediction"], mc["target"], mc["correct"]) == ("B", "C", False)
    assert mc["choice_logprobs"] == {"A": -3.0, "B": -1.0, "C": -2.0}
    [g] = sample_records("t", [gen])  # the JSON-file form of `arguments`
    assert (g["prompt"], g["prediction"], g["correct"]) == ("Capital?", "Paris", True)


def test_runresult_loads_an_lmeval_results_file(tmp_path: Path) -> None:
    from evalkit.api import RunResult

    data = {"results": {"arc_easy": {"acc,none": 0.6, "acc_stderr,none": 0.01, "alias": "arc_easy"}},
            "n-samples": {"arc_easy": {"original": 2376, "effective": 2376}},
            "config": {"model": "hf", "model_args": "pretrained=org/m"}, "date": 1.7e9}
    folder = tmp_path / "out" / "org__m"
    folder.mkdir(parents=True)
    (folder / "results_2026-01-01T00-00-00.json").write_text(json.dumps(data))
    for where in (folder / "results_2026-01-01T00-00-00.json", tmp_path / "out"):
        result = RunResult.load(where)
        assert result.score("arc_easy", "acc") == 0.6 and result.stderr("arc_easy", "acc") == 0.01
        assert result.tasks["arc_easy"].n == 2376 and result.record.source == "lm-eval"
        assert result.model["model"] == "org/m"


class _ChatOnly:
    """A chat API: `complete` is refused, `generate` answers with the user message reversed."""

    identity = ModelIdentity("stub", "chat-only")

    def complete(self, prompts: Any, config: GenConfig) -> Any:
        from evalkit.errors import UnsupportedRequest

        raise UnsupportedRequest("no /completions here")

    def generate(self, conversations: Any, config: GenConfig) -> Any:
        from evalkit.types import Completion

        return [Completion((c[-1].content[::-1][: config.max_tokens],)) for c in conversations]


class _Request:
    def __init__(self, *args: Any) -> None:
        self.args = args


def test_generation_falls_back_to_chat_and_groups_by_settings() -> None:
    from evalkit.lmeval import backend_lm

    done: list[int] = []
    lm = backend_lm(_ChatOnly(), advance=done.append)  # type: ignore[arg-type]
    answers = lm.generate_until([_Request("abc", {"max_gen_toks": 2}), _Request("xyz", {"max_gen_toks": 5}),
                                 _Request("hello", {"max_gen_toks": 2})])
    assert answers == ["cb", "zyx", "ol"] and sorted(done) == [1, 2]  # two settings → two calls, order kept


# ---- real lm-eval runs ------------------------------------------------------------------------------------

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from evalkit.runner import RunOptions, execute

_LOCAL = "include_defaults=false,include_path={}"


@pytest.fixture(scope="module")
def cmmlu_tasks(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A local copy of lm-eval's cmmlu_agronomy (its own YAML included, data read from the local CSVs)."""
    from evalkit.lmeval._reference import write_mc_tasks

    folder = tmp_path_factory.mktemp("lmeval_tasks")
    write_mc_tasks("cmmlu", ["agronomy"], data_dir, folder)
    return folder


def _run(tmp: Path, model: Any, tasks: str, task_args: str, **options: Any) -> Path:
    return execute(RunOptions(model=model, tasks=tasks, task_args=task_args, output=tmp, quiet=True, **options))


def _bridge_vs_native(model: Any, folder: Path, data_dir: Path, tmp: Path, shots: int
                      ) -> tuple[dict[str, Any], dict[str, Any], Path]:
    bridge = _run(tmp / "bridge", model, "lmeval:evalkitref_cmmlu_agronomy", _LOCAL.format(folder),
                  limit=3, num_fewshot=shots, no_cache=True)
    native = _run(tmp / "native", model, "cmmlu:agronomy", "prompt_style=lmeval", limit=3, num_fewshot=shots,
                  data_dir=data_dir, no_cache=True)
    ours = {s["doc_index"]: s for s in _samples(bridge, "lmeval")}
    theirs = {s["doc_index"]: s for s in _samples(native, "cmmlu")}
    return ours, theirs, bridge


@pytest.mark.integration  # runs lm-eval
def test_bridge_equals_native_cmmlu_on_the_fake_backend(cmmlu_tasks: Path, data_dir: Path, tmp_path: Path) -> None:
    ours, theirs, run_dir = _bridge_vs_native("fake:echo", cmmlu_tasks, data_dir, tmp_path, 2)
    assert sorted(ours) == sorted(theirs) == [0, 1, 2]
    for index, sample in ours.items():
        assert sample["id"] == f"evalkitref_cmmlu_agronomy/{index}"
        assert sample["prompt"] == theirs[index]["prompt"]  # lm-eval's prompt text == evalkit's lmeval style
        assert sample["choice_logprobs"] == theirs[index]["choice_logprobs"]
        assert (sample["target"], sample["prediction"], sample["correct"]) == (
            theirs[index]["target"], theirs[index]["prediction"], theirs[index]["correct"])
    results = json.loads((run_dir / "results.json").read_text())["tasks"]["lmeval"]
    acc = sum(s["correct"] for s in ours.values()) / 3
    assert results["metrics"]["acc"] == pytest.approx(acc) and "acc_stderr" in results["metrics"]
    assert results["subtasks"]["evalkitref_cmmlu_agronomy"]["n"] == 3 and results["n"] == 3
    assert results["info"]["n_shot"] == {"evalkitref_cmmlu_agronomy": 2}
    assert len(results["info"]["lm_eval_config_sha256"]["evalkitref_cmmlu_agronomy"]) == 64
    manifest = json.loads((run_dir / "manifest.json").read_text())["tasks"]["lmeval"]
    assert {Path(f).name for f in manifest["data_files"]} == {"cmmlu_agronomy_test.jsonl", "cmmlu_agronomy_dev.jsonl"}


@pytest.mark.integration  # runs lm-eval
def test_bridge_errors_are_one_line(cmmlu_tasks: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not know task.*no_such_task"):
        _run(tmp_path, "fake:echo", "lmeval:no_such_task", _LOCAL.format(cmmlu_tasks), no_cache=True)
    with pytest.raises(ConfigError, match="prompt_style.*not an option of the lm-eval bridge"):
        _run(tmp_path, "fake:echo", "lmeval:x", "prompt_style=lmeval", no_cache=True)
    with pytest.raises(ConfigError, match="name the lm-eval tasks"):
        _run(tmp_path, "fake:echo", "lmeval", "", no_cache=True)


def _write_gen_and_rolling_tasks(folder: Path) -> None:
    docs = [{"q": "Two plus two is", "a": "four"}, {"q": "The sky is", "a": "blue"}]
    (folder / "qa.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "tiny_gen.yaml").write_text("\n".join([
        "task: tiny_gen", "dataset_path: json", "dataset_kwargs:", f"  data_files: {{test: {folder / 'qa.jsonl'}}}",
        "test_split: test", "output_type: generate_until", "doc_to_text: '{{q}}'", "doc_to_target: ' {{a}}'",
        "generation_kwargs: {until: ['.'], max_gen_toks: 6, do_sample: false}",
        "metric_list: [{metric: exact_match, aggregation: mean, higher_is_better: true}]", ""]))
    (folder / "tiny_roll.yaml").write_text("\n".join([
        "task: tiny_roll", "dataset_path: json", "dataset_kwargs:", f"  data_files: {{test: {folder / 'qa.jsonl'}}}",
        "test_split: test", "output_type: loglikelihood_rolling", "doc_to_text: ''",
        "doc_to_target: '{{q}} {{a}}.'", "metric_list: [{metric: word_perplexity}, {metric: bits_per_byte}]", ""]))


@pytest.mark.integration  # runs lm-eval
def test_generation_and_rolling_through_a_tiny_llama(tmp_path: Path) -> None:
    from evalkit.backends import load_backend

    backend = load_backend("tiny-llama")  # it borrows the embedded model's tokenizer
    _write_gen_and_rolling_tasks(tmp_path)
    run_dir = _run(tmp_path / "runs", backend, "lmeval:tiny_gen,tiny_roll", _LOCAL.format(tmp_path),
                   no_cache=True)
    samples = {s["id"]: s for s in _samples(run_dir, "lmeval")}
    direct = backend.complete(["Two plus two is", "The sky is"], GenConfig(max_tokens=6, stop=(".",)))
    assert [samples[f"tiny_gen/{i}"]["prediction"] for i in (0, 1)] == [c.text for c in direct]
    rolling = backend.loglikelihood_rolling(["Two plus two is four.", "The sky is blue."])
    for i, expected in enumerate(rolling):
        ll, words = samples[f"tiny_roll/{i}"]["metrics"]["word_perplexity"]
        assert ll == pytest.approx(expected.total, abs=1e-9) and words == 5 - i
    results = json.loads((run_dir / "results.json").read_text())["tasks"]["lmeval"]
    assert results["metrics"] == {} and set(results["subtasks"]) == {"tiny_gen", "tiny_roll"}
    assert results["subtasks"]["tiny_roll"]["word_perplexity"] > 1 and results["n"] == 4


@pytest.mark.integration
def test_bridge_loglikelihoods_equal_native_lmeval_style_on_smollm2(cmmlu_tasks: Path, data_dir: Path,
                                                                     tmp_path: Path) -> None:
    from evalkit.backends import load_backend

    ours, theirs, _ = _bridge_vs_native(load_backend("smollm2"), cmmlu_tasks, data_dir, tmp_path, 1)
    assert sorted(ours) == sorted(theirs) == [0, 1, 2]
    for index, sample in ours.items():
        assert sample["prompt"] == theirs[index]["prompt"]
        for letter in "ABCD":
            assert abs(sample["choice_logprobs"][letter] - theirs[index]["choice_logprobs"][letter]) <= 1e-4
        assert sample["prediction"] == theirs[index]["prediction"]
