"""The judge step in more task kinds: MT-Bench's YAML `judge:` block, C-Eval/CMMLU in CoT mode, and `open_qa`."""

from __future__ import annotations

from evalkit.judges import JudgeConfig
from evalkit.tasks import multiturn_judge
from evalkit.tasks._kind import RunContext
from evalkit.tasks._registry import load_task
from evalkit.tasks._spec import TaskJudge


def test_multiturn_judge_uses_the_yaml_judge_block_else_its_default() -> None:
    spec = load_task("mt_bench")
    assert isinstance(spec, multiturn_judge.MultiturnJudgeSpec)
    ctx = RunContext(judge=JudgeConfig(models=("fake:x",)))
    assert multiturn_judge._judge_config(spec, ctx).definition == spec.default_judge
    declared = spec.model_copy(update={"judge": TaskJudge(definition="fastchat-single")})
    assert multiturn_judge._judge_config(declared, ctx).definition == "fastchat-single"
    flagged = RunContext(judge=JudgeConfig(models=("fake:x",), definition="mt-bench-single-prob"))
    assert multiturn_judge._judge_config(declared, flagged).definition == "mt-bench-single-prob"
