"""The judge step of a multiple-choice task answered by generation (C-Eval/CMMLU with `mode=cot` or `generate`).

Accuracy still comes from the extracted letter; the judge grades the answer itself (the reasoning, in CoT
mode). It runs when the run asks for judging (`--judge-model M`, or a `judge:` block whose definition names a
default model, see `evalkit.tasks._task_judge`) and the mode that ran is generate or cot; in loglikelihood
mode there is no text to grade and `info["judge"]` says so. The judge reads, per question, the question with
its lettered options, the model's answer with its thinking stripped (the sample's `answer`), and as reference
the correct option's letter and text followed by the row's `explanation` when it has one (C-Eval's dev split,
CMB's val split). One answer per question is judged: the first sample, in the original option order. The
judge's metrics (`judge_score`, `judge_<aspect>`, `judge_valid_rate`) join `acc`; the default judge is
`rubric-qa`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from evalkit.tasks._kind import RunContext, TaskOutcome
from evalkit.tasks._mc_generative import MCQuestion
from evalkit.tasks._mc_prompts import format_question
from evalkit.tasks._spec import TaskSpecBase
from evalkit.tasks._task_judge import JudgeInput, TaskJudging, start_judging

__all__ = ["DEFAULT_JUDGE", "McJudging", "mc_judge_inputs"]

DEFAULT_JUDGE = "rubric-qa"  # the judge when neither --judge nor the YAML names one


def mc_judge_inputs(questions: Sequence[MCQuestion], samples: Sequence[dict[str, Any]], letters: Sequence[str],
                    explanation_column: str = "explanation") -> list[JudgeInput]:
    """The judge's view of each generated answer (same order as `questions` and `samples`)."""
    inputs = []
    for q, s in zip(questions, samples, strict=True):
        correct = dict(zip(letters, q.options)).get(q.answer, "")
        reference = f"{q.answer}. {correct}".strip()
        explanation = str(q.raw.get(explanation_column) or "").strip()
        if explanation:
            reference += f"\n{explanation}"
        inputs.append(JudgeInput(s["id"], s["subset"] or "", format_question(q.question, q.options, letters),
                                 s.get("answer") or "", reference))
    return inputs


class McJudging:
    """A multiple-choice run's judge, started by its first subject once the mode that runs is known."""

    def __init__(self, spec: TaskSpecBase, ctx: RunContext, model: str, total: int) -> None:
        self.spec, self.ctx, self.model, self.total = spec, ctx, model, total
        self.judging: TaskJudging | None = None
        self.note: str | None = None
        self.started = False

    def subject(self, mode: str | None, questions: Sequence[MCQuestion], samples: Sequence[dict[str, Any]],
                letters: Sequence[str]) -> None:
        """Judge one subject's answers (adding each sample's `judge` entry) when the run judges."""
        if not self.started:
            self.started = True
            if mode not in ("generate", "cot"):
                if self.ctx.judge is not None or self.spec.judge is not None:
                    self.note = (f"not run: mode={mode or 'loglikelihood'} has no answer text to grade; pass "
                                 f"--task-args mode=cot to judge the reasoning")
                return
            self.judging = start_judging(self.spec, self.ctx, self.model, fallback=DEFAULT_JUDGE)
            if self.judging is not None and self.judging.counts_progress:
                self.ctx.set_total(2 * self.total)
        if self.judging is not None:
            self.judging.judge(mc_judge_inputs(questions, samples, letters), samples)

    def finish(self, outcome: TaskOutcome) -> TaskOutcome:
        """The outcome with the judge's metrics beside `acc` and its summary in `info["judge"]`."""
        if self.judging is None:
            if self.note:
                outcome.info["judge"] = self.note
            return outcome
        metrics, summary = self.judging.outcome()
        return replace(outcome, metrics={**outcome.metrics, **metrics}, info={**outcome.info, "judge": summary})
