"""The judge step of any generative task: LLM judges grade a task's answers after it has generated them.

A task YAML declares its judge with `judge: <definition>` or `judge: {definition, votes, reducer, mode}`
(`TaskJudge`); the run flags `--judge/--judge-model/--judge-votes/--reducer/--judge-mode` arrive as `ctx.judge`
(a `JudgeConfig`) and override those defaults. Judging runs when the run asks for it (`ctx.judge` is set) or
when the task's judge definition names a `default_model`; otherwise the task runs exactly as without a judge.

The judge sees the question, the model's answer (thinking stripped by the task, `evalkit.tasks._thinking`)
and the reference where the data has one. Judge calls go through the run's response cache, as MT-Bench's.
Results: `judge_score` (mean with a bootstrap CI), `judge_<aspect>` means for rubric judges and
`judge_valid_rate` join the task's metrics; the summary goes to `info["judge"]`; each sample gets a `judge`
entry with its score, aspects, raw responses and every vote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from evalkit.errors import ConfigError
from evalkit.tasks._kind import RunContext
from evalkit.tasks._spec import TaskSpecBase

__all__ = ["JudgeInput", "TaskJudging", "start_judging"]


@dataclass(frozen=True)
class JudgeInput:
    """What the judge reads of one answer: the sample id, its group, question, answer and reference."""

    sample_id: str
    category: str
    question: str
    answer: str
    reference: str | None = None


def _config(spec: TaskSpecBase, ctx: RunContext, fallback: str | None) -> Any:
    """The run's JudgeConfig with the task's `judge:` defaults filled in; None when nothing asks to judge."""
    from evalkit.judges import JudgeConfig, load_judge_definition

    declared = spec.judge
    config = ctx.judge
    if config is None:
        if declared is None or not load_judge_definition(declared.definition).default_model:
            return None
        config = JudgeConfig(cache=str(ctx.cache_path) if ctx.cache_path else None)
    updates: dict[str, Any] = {}
    if not config.definition:
        updates["definition"] = declared.definition if declared else fallback
        if not updates["definition"]:
            raise ConfigError(f"{spec.name}: names no judge; pass --judge <definition> (see `evalkit judges`)")
    if declared is not None:
        if declared.votes and config.votes == 1:
            updates["votes"] = declared.votes
        if declared.reducer and config.reducer == "mean":
            updates["reducer"] = declared.reducer
        if declared.mode and not config.mode:
            updates["mode"] = declared.mode
    return replace(config, **updates) if updates else config


class TaskJudging:
    """One task run's judge: judges batches of answers as they come, then summarises all of them."""

    def __init__(self, spec: TaskSpecBase, ctx: RunContext, config: Any, model: str) -> None:
        from evalkit.judges import build_scorer

        self.spec, self.ctx, self.config, self.model = spec, ctx, config, model
        self.definition = config.load_definition()
        if self.definition.type != "single":
            raise ConfigError(f"{spec.name}: judge '{self.definition.name}' is {self.definition.type}; a task's "
                              "answers are graded one by one, so use a single or rubric judge")
        self.judged: list[Any] = []
        self.calls = 0
        self.scorer = None if config.dry_run else build_scorer(config, self.definition, data_dir=ctx.data_dir,
                                                                 seed=ctx.seed)

    @property
    def counts_progress(self) -> bool:
        """Whether judged answers advance the progress bar (not in a dry run, which makes no judge calls)."""
        return self.scorer is not None

    def _items(self, inputs: Sequence[JudgeInput]) -> list[Any]:
        from evalkit.judges import JudgeItem

        return [JudgeItem(i.sample_id, i.category, 1, (i.question,), (self.model,), ((i.answer,),),
                          (i.reference,) if i.reference else ()) for i in inputs]

    def judge(self, inputs: Sequence[JudgeInput], samples: Sequence[dict[str, Any]]) -> None:
        """Grade `inputs` and add each one's `judge` entry to the matching sample (same order); each graded
        answer advances the progress bar once (callers count judged answers in `ctx.set_total`)."""
        from evalkit.judges import judge_items, sample_row
        from evalkit.judges._runner import plan_calls

        items = self._items(inputs)
        self.calls += plan_calls(self.config, self.definition, items)["calls"]
        if self.scorer is None:
            return
        for judged, sample in zip(judge_items(self.scorer, items), samples, strict=True):
            row = sample_row(judged)
            sample["judge"] = {k: row[k] for k in ("score", "valid", "valid_votes", "responses", "votes")
                               if k in row}
            if "aspects" in row:
                sample["judge"]["aspects"] = row["aspects"]
            self.judged.append(judged)
        self.ctx.advance(len(items))

    def outcome(self) -> tuple[dict[str, float], dict[str, Any]]:
        """(metrics to add to the task's, the `info["judge"]` summary)."""
        info: dict[str, Any] = {**self.config.as_dict(), "definition": self.definition.name,
                                "mode": self.definition.mode, "calls": self.calls}
        if self.scorer is None:
            self.ctx.warn(f"dry run: {self.calls} judge calls for {self.spec.name}")
            return {}, {**info, "dry_run": True}
        from evalkit.judges import summarize

        summary = summarize(self.judged, self.scorer.stats, {j.name: j.stats for j in self.scorer.judges},
                            reducer=self.config.reducer, kind="single", seed=self.ctx.seed,
                            definition=self.definition)
        rel, entry = summary["reliability"], summary["scores"].get(self.model, {})
        metrics: dict[str, float] = {}
        if entry.get("mean") is not None:
            metrics.update(judge_score=entry["mean"], judge_score_ci_low=entry["ci_low"],
                           judge_score_ci_high=entry["ci_high"])
        metrics.update({f"judge_{name}": a["mean"] for name, a in entry.get("aspects", {}).items()})
        if rel.get("valid_rate") is not None:
            metrics["judge_valid_rate"] = rel["valid_rate"]
        info.update(scores=entry, reliability=rel, bias=summary.get("bias", {}),
                    cost=self.scorer.stats.as_dict())
        return metrics, info


def start_judging(spec: TaskSpecBase, ctx: RunContext, model: str, *, fallback: str | None = None) -> TaskJudging | None:
    """The task's judge for this run, or None when the run does not judge (see the module docstring).

    Args:
        spec: the task spec (its `judge:` block gives the definition and defaults).
        ctx: the run context (`ctx.judge` holds the run flags).
        model: the judged model's name (the backend identity's model).
        fallback: the definition to use when neither the flags nor the YAML name one.
    """
    config = _config(spec, ctx, fallback)
    return None if config is None else TaskJudging(spec, ctx, config, model)
