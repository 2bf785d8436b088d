"""Loglikelihood multiple choice through a chat template: the same requests as lm-eval's --apply_chat_template."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from evalkit.backends._fake import FakeBackend
from evalkit.errors import ConfigError
from evalkit.records import load_record
from evalkit.runner import RunOptions, execute
from evalkit.tasks._mc_chat import chat_turns, parse_chat_options, render_for_scoring
from evalkit.types import LoglikelihoodResult, Message


@dataclass
class _Recording(FakeBackend):
    """The fake backend that keeps every scoring request it got."""

    seen: list[tuple[str, str]] = field(default_factory=list)

    def loglikelihood(self, requests: Any, **kwargs: Any) -> list[LoglikelihoodResult]:
        self.seen += [(r.context, r.continuation) for r in requests]
        return super().loglikelihood(requests, **kwargs)


def _run(tmp: Path, backend: FakeBackend, task: str, data_dir: Path | None = None, **args: str) -> Path:
    return execute(RunOptions(model=backend, tasks=task, limit=3, output=tmp, task_args=args, quiet=True,
                              no_cache=True, data_dir=data_dir))


def test_multiturn_shots_system_description_and_no_delimiter(tmp_path: Path) -> None:
    backend = _Recording()
    record = load_record(_run(tmp_path, backend, "cmmlu:computer_science", apply_chat_template="true"))
    info = record.tasks["cmmlu"].info
    assert info["apply_chat_template"] is True and info["fewshot_as_multiturn"] is True  # lm-eval's default
    context = backend.seen[0][0]
    assert [c for _, c in backend.seen[:4]] == ["A", "B", "C", "D"]  # no target delimiter under a template
    assert context.startswith("<|system|>\n") and context.endswith("答案是：\n<|assistant|>\n")
    assert context.count("<|user|>") == context.count("<|assistant|>") == 6  # 5 shots + the question
    single = _Recording()
    _run(tmp_path / "single", single, "cmmlu:computer_science", apply_chat_template="true",
         fewshot_as_multiturn="false")
    assert single.seen[0][0].count("<|user|>") == 1 and single.seen[0][0].count("<|assistant|>") == 1


def test_chat_flags_are_checked() -> None:
    assert parse_chat_options({}).apply_chat_template is False
    with pytest.raises(ConfigError, match="fewshot_as_multiturn=true: needs apply_chat_template=true"):
        parse_chat_options({"fewshot_as_multiturn": "true"})
    with pytest.raises(ConfigError, match="apply_chat_template=maybe"):
        parse_chat_options({"apply_chat_template": "maybe"})


def test_generative_mode_rejects_apply_chat_template(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="apply_chat_template=true: only applies to mode=loglikelihood"):
        _run(tmp_path, FakeBackend(), "cmmlu:computer_science", apply_chat_template="true", mode="generate")


class _ThinkingTokenizer:
    """A tokenizer whose template opens a thought unless enable_thinking is false (as Qwen3's does)."""

    chat_template = "{% if enable_thinking is defined and not enable_thinking %}no-think{% endif %}"

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def apply_chat_template(self, messages: list[dict[str, str]], **kwargs: Any) -> str:
        self.calls.append(kwargs)
        think = "" if kwargs.get("enable_thinking") is False else "<think>\n"
        return "".join(m["content"] for m in messages) + "|assistant|" + think


def test_thinking_template_is_switched_off_for_scoring() -> None:
    tokenizer = _ThinkingTokenizer()
    backend = SimpleNamespace(inner=SimpleNamespace(tokenizer=tokenizer))  # found through a wrapper
    text = render_for_scoring(backend, (Message("user", "Q"),))
    assert text == "Q|assistant|" and tokenizer.calls[0]["enable_thinking"] is False
    assert tokenizer.calls[0]["add_generation_prompt"] is True
    deferred = SimpleNamespace(loaded=False, _inner=None, load=lambda: SimpleNamespace(tokenizer=tokenizer))
    assert render_for_scoring(deferred, (Message("user", "Q"),)) == "Q|assistant|"  # a model not loaded yet
    assert tokenizer.calls[1]["enable_thinking"] is False


def _smollm2_tokenizer() -> Any:
    from transformers import AutoTokenizer

    from evalkit.backends._hf_load import _gguf_to_cache

    return AutoTokenizer.from_pretrained(str(_gguf_to_cache("smollm2-gguf")[0]))


def _lmeval_requests(subject: str, data_dir: Path, work: Path, tokenizer: Any, multiturn: bool
                     ) -> list[tuple[str, str]]:
    """lm-eval's own (context, continuation) pairs for the first 3 questions, chat template applied."""
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager, get_task_dict

    from evalkit.lmeval._reference import write_mc_tasks

    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    work.mkdir(parents=True)
    names = write_mc_tasks("ceval", [subject], data_dir, work)
    task = get_task_dict(names, TaskManager(include_path=str(work), include_defaults=False))[names[0]]
    task.set_fewshot_seed(1234)
    chat = partial(HFLM.apply_chat_template, SimpleNamespace(tokenizer=tokenizer, chat_template_args={}))
    pairs = []
    for doc in list(task.eval_docs)[:3]:
        ctx = task.fewshot_context(doc, 5, apply_chat_template=True, fewshot_as_multiturn=multiturn,
                                   chat_template=chat)
        pairs += [tuple(i.arguments) for i in task.construct_requests(doc, ctx, apply_chat_template=True)]
    return pairs


@pytest.mark.integration  # lm-eval task loading and the SmolLM2 tokenizer
@pytest.mark.parametrize("multiturn", [True, False])
def test_requests_equal_lmeval_byte_for_byte(multiturn: bool, data_dir: Path, tmp_path: Path) -> None:
    tokenizer = _smollm2_tokenizer()
    theirs = _lmeval_requests("computer_network", data_dir, tmp_path / "lmeval", tokenizer, multiturn)
    backend = _Recording()
    backend.tokenizer = tokenizer  # type: ignore[attr-defined]  # the real template; scoring stays fake
    _run(tmp_path / "ours", backend, "ceval:computer_network", data_dir, prompt_style="lmeval",
         apply_chat_template="true", fewshot_as_multiturn=str(multiturn).lower())
    assert len(theirs) == len(backend.seen) == 12
    assert backend.seen == theirs  # every context and continuation, byte for byte
    assert theirs[0][0].startswith("<|im_start|>system\n以下是中国关于计算机网络的单项选择题")
    assert theirs[0][0].count("<|im_start|>assistant\n") == (6 if multiturn else 1)


def test_chat_turns_layouts() -> None:
    shots = [("Q1\n答案：", "A"), ("Q2\n答案：", "C")]
    multi = chat_turns("说明。\n\n", shots, "Q3\n答案：", multiturn=True)
    assert [(m.role, m.content) for m in multi] == [
        ("system", "说明。\n\n"), ("user", "Q1\n答案："), ("assistant", "A"), ("user", "Q2\n答案："),
        ("assistant", "C"), ("user", "Q3\n答案：")]
    single = chat_turns("", shots, "Q3\n答案：", multiturn=False)
    assert [(m.role, m.content) for m in single] == [("user", "Q1\n答案： A\n\nQ2\n答案： C\n\nQ3\n答案：")]


@pytest.mark.integration  # SmolLM2 scored by lm-eval and by evalkit
def test_loglikelihoods_equal_lmeval_on_smollm2(data_dir: Path, tmp_path: Path) -> None:
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from evalkit.backends._hf_load import _gguf_to_cache
    from evalkit.lmeval._reference import write_mc_tasks

    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    work = tmp_path / "lmeval"
    work.mkdir()
    names = write_mc_tasks("ceval", ["computer_network"], data_dir, work)
    lm = HFLM(pretrained=str(_gguf_to_cache("smollm2-gguf")[0]), dtype="float32", device="cpu", batch_size=4)
    out = lm_eval.simple_evaluate(model=lm, tasks=names, num_fewshot=5, limit=3, log_samples=True,
                                  apply_chat_template=True, fewshot_as_multiturn=True,
                                  task_manager=TaskManager(include_path=str(work)), bootstrap_iters=0)
    theirs = {int(s["doc_id"]): s for s in out["samples"][names[0]]}
    run_dir = execute(RunOptions(model="smollm2", tasks="ceval:computer_network", limit=3, data_dir=data_dir,
                                 task_args="prompt_style=lmeval,apply_chat_template=true", output=tmp_path / "runs",
                                 no_cache=True, quiet=True))
    ours = [orjson.loads(line) for line in (run_dir / "samples" / "ceval.jsonl").read_bytes().splitlines()]
    assert sorted(theirs) == [s["doc_index"] for s in ours] == [0, 1, 2]
    for sample in ours:
        reference = theirs[sample["doc_index"]]
        assert sample["prompt"] == reference["arguments"][0][0]
        lls = [float(r[0]) for r in reference["filtered_resps"]]
        mine = [sample["choice_logprobs"][k] for k in "ABCD"]
        assert max(abs(a - b) for a, b in zip(lls, mine)) <= 1e-4, (lls, mine)
