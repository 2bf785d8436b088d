"""Judge definitions (top-level judges/*.yaml) and the judge configuration a run carries.

A definition holds data only: prompt text in FastChat's output formats, the scale, the reference policy, the
scoring mode. Prompts are either written in the YAML (`prompts:`) or loaded by name from FastChat's
`judge_prompts.jsonl` in the data dir (`fastchat_prompts:`), for exact MT-Bench comparability.

Prompt variants: `general` (turn 1), `math` (turn 1 with a reference answer), `general_multi_turn` and
`math_multi_turn` (the whole dialogue shown, the second answer graded). Templates use `str.format` fields:
`{question}`, `{answer}`, `{answer_a}`, `{answer_b}`, `{ref_answer_1}` for turn 1 and `{question_1}`,
`{question_2}`, `{answer_1}`, `{answer_2}`, `{answer_a_1}`, ..., `{ref_answer_2}` for the multi-turn variants.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evalkit.errors import ConfigError, DataError, TaskSpecError

__all__ = [
    "Aspect",
    "JudgeConfig",
    "JudgeDefinition",
    "ProbabilitySettings",
    "PromptPair",
    "judge_search_path",
    "list_judges",
    "load_judge_definition",
]

PROMPT_VARIANTS = ("general", "math", "general_multi_turn", "math_multi_turn")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PromptPair(_Frozen):
    """A system prompt and a user-message template (str.format fields)."""

    system: str = ""
    template: str


class ReferencePolicy(_Frozen):
    """Which categories get a reference answer and where it comes from.

    `source: file` reads `<data_dir>/mt_bench/reference_answer/<file>` (falling back to inline `reference`
    fields of question.jsonl); `source: model` generates it with `model` (a model spec) at temperature 0.
    """

    categories: tuple[str, ...] = ("math", "reasoning", "coding")
    source: Literal["file", "model", "none"] = "file"
    file: str = "gpt-4.jsonl"
    model: str | None = None


class ProbabilitySettings(_Frozen):
    """Probability mode (G-Eval style): read the verdict distribution instead of parsing text.

    `prefix` is forced after the chat prompt (after an optional rationale of up to `rationale_tokens`
    tokens); each option is scored as `option + suffix`; a judgment whose valid mass (the summed raw
    probability of all options) is below `low_confidence` is flagged.
    """

    prefix: str | None = None  # default: "Rating: [[" for single grading, "[[" for pairwise
    suffix: str = "]]"
    rationale_tokens: int = 0
    rationale_joiner: str = "\n"
    low_confidence: float = 0.5
    top_logprobs: int = Field(default=20, ge=1, le=20)  # API judges: alternatives asked for per position


class Aspect(_Frozen):
    """One aspect of a rubric judge: its name (the key of the verdict), its own scale, and its weight in the
    overall score (all 1: the overall is the plain mean of the aspects)."""

    name: str
    scale: tuple[float, float]
    weight: float = Field(default=1.0, gt=0)
    description: str = ""


class JudgeDefinition(_Frozen):
    """One judge definition file.

    `type` is `single` (grade one answer), `pairwise` (compare two, both orders) or `listwise` (rank 2..8
    answers in one call, shuffled per vote; see `evalkit.judges._listwise`). A single judge with `aspects`
    is a rubric judge: its verdict gives a rating per aspect, as a JSON object (`{"accuracy": 7, ...}`) or as
    `accuracy: [[7]]` lines (see `evalkit.judges._rubric`).
    """

    name: str
    description: str = ""
    type: Literal["single", "pairwise", "listwise"] = "single"
    aspects: tuple[Aspect, ...] = ()
    mode: Literal["generate", "probability"] = "generate"
    scale: tuple[int, int] = (1, 10)
    output_format: str = "[[rating]]"
    prompts: dict[str, PromptPair] = {}
    fastchat_prompts: dict[str, str] = {}
    reference: ReferencePolicy = ReferencePolicy()
    temperature: float = 0.0
    max_tokens: int = 1024
    reply_prefix: str | None = None  # forced start of the judge's reply (e.g. "[["), where the backend can continue a rendered chat prompt
    max_retries: int = 2
    retry_temperature: float = 0.7
    fallbacks: bool = False
    graded: bool = False
    probability: ProbabilitySettings = ProbabilitySettings()
    default_model: str | None = None
    source_file: str = ""

    def prompt(self, variant: str, data_dir: Path | None) -> PromptPair:
        """The prompt for a variant; FastChat's prompts are read from `<data_dir>/mt_bench/judge_prompts.jsonl`."""
        if variant in self.prompts:
            return self.prompts[variant]
        if variant in self.fastchat_prompts:
            return _fastchat_prompt(self.fastchat_prompts[variant], data_dir, self.source_file)
        raise TaskSpecError(f"{self.source_file or self.name}: judge has no prompt for '{variant}'; "
                            f"add prompts.{variant} or fastchat_prompts.{variant}")


def _fastchat_prompt(name: str, data_dir: Path | None, source: str) -> PromptPair:
    if data_dir is None:
        raise DataError(f"{source}: FastChat judge prompt '{name}' is read from <data_dir>/mt_bench/"
                        "judge_prompts.jsonl; pass --data-dir or set EVALKIT_DATA_DIR")
    path = data_dir / "mt_bench" / "judge_prompts.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: not found; copy FastChat's llm_judge/data/judge_prompts.jsonl there")
    for line in path.read_bytes().splitlines():
        if line.strip():
            row = orjson.loads(line)
            if row.get("name") == name:
                return PromptPair(system=row.get("system_prompt", ""), template=row["prompt_template"])
    raise DataError(f"{path}: no prompt named '{name}'")


def judge_search_path() -> list[Path]:
    """Folders holding judge YAMLs: EVALKIT_JUDGES_PATH entries, the bundled copy, the repository's judges/."""
    paths = [Path(p) for p in os.environ.get("EVALKIT_JUDGES_PATH", "").split(os.pathsep) if p]
    here = Path(__file__).resolve().parent.parent
    paths += [here / "_bundled" / "judges", here.parent / "judges"]
    return [p for p in paths if p.is_dir()]


def list_judges() -> dict[str, Path]:
    """Judge definition name (file stem) -> file, first folder of the search path wins."""
    found: dict[str, Path] = {}
    for folder in judge_search_path():
        for path in sorted(folder.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def _read_raw(path: Path, depth: int = 0) -> dict[str, Any]:
    """The YAML mapping of a judge file; `extends: <judge>` starts from another definition (one level of
    nested mappings such as `probability:` is merged key by key)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TaskSpecError(f"{path}: cannot read judge YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise TaskSpecError(f"{path}: a judge file must be a mapping with at least 'name' and 'type'")
    _check_aspects(path, raw)
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw
    if depth > 4:
        raise TaskSpecError(f"{path}: 'extends' chain is too deep (a cycle?)")
    known = list_judges()
    base_path = path.parent / f"{base_name}.yaml"
    if not base_path.is_file():
        if base_name not in known:
            raise TaskSpecError(f"{path}: extends unknown judge '{base_name}'")
        base_path = known[base_name]
    merged = _read_raw(base_path, depth + 1)
    for key, value in raw.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key not in ("prompts", "fastchat_prompts"):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _aspect_line(path: Path, index: int) -> int | None:
    """The 1-based line of `aspects[index]` in a judge YAML (None when it cannot be found)."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    for key, value in getattr(root, "value", []) if isinstance(root, yaml.MappingNode) else []:
        if key.value == "aspects" and isinstance(value, yaml.SequenceNode) and index < len(value.value):
            return int(value.value[index].start_mark.line) + 1
    return None


def _check_aspects(path: Path, raw: dict[str, Any]) -> None:
    """Every rubric aspect declares a name and a scale [low, high]; errors name the file and line."""
    aspects = raw.get("aspects")
    if aspects is None:
        return
    if not isinstance(aspects, list):
        raise TaskSpecError(f"{path}: 'aspects' must be a list of {{name, scale: [low, high]}}")
    for i, aspect in enumerate(aspects):
        where = f"{path}:{_aspect_line(path, i) or '?'}"
        if not isinstance(aspect, dict) or not aspect.get("name"):
            raise TaskSpecError(f"{where}: rubric aspect {i + 1} has no name; write - name: <aspect>")
        scale = aspect.get("scale")
        if (not isinstance(scale, list) or len(scale) != 2 or not all(isinstance(x, (int, float)) for x in scale)
                or scale[0] >= scale[1]):
            raise TaskSpecError(f"{where}: rubric aspect '{aspect['name']}' has no valid scale; "
                                "add scale: [low, high] (e.g. scale: [1, 5])")


def load_judge_definition(name_or_path: str) -> JudgeDefinition:
    """Load a judge by name (judges/<name>.yaml) or by path; errors name the file and field."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        known = list_judges()
        if name_or_path not in known:
            raise ConfigError(f"unknown judge '{name_or_path}': use one of {', '.join(sorted(known)) or '(none)'} "
                              "or a path to a judge YAML")
        path = known[name_or_path]
    raw = _read_raw(path)
    try:
        definition = JudgeDefinition.model_validate({**raw, "source_file": str(path)})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise TaskSpecError(f"{path}: field '{where}': {err['msg']}; "
                            "the fields are documented in evalkit/judges/_spec.py (JudgeDefinition)") from None
    if not definition.prompts and not definition.fastchat_prompts:
        raise TaskSpecError(f"{path}: define 'prompts' or 'fastchat_prompts'")
    if definition.aspects and definition.type != "single":
        raise TaskSpecError(f"{path}: rubric 'aspects' apply to type single, not {definition.type}")
    return definition


@dataclass(frozen=True)
class JudgeConfig:
    """What a judged run needs to know about its judges (`RunContext.judge`).

    Built by the runner from `--judge` (definition), `--judge-model` (repeatable: a panel), `--judge-args`
    (backend options for every judge model), `--judge-votes` (samples per judge).
    """

    definition: str = ""
    models: tuple[str, ...] = ()
    args: dict[str, str] = field(default_factory=dict)
    votes: int = 1
    reducer: str = "mean"
    mode: str | None = None
    dry_run: bool = False
    baseline: str | None = None
    labels: str | None = None
    cache: str | None = None  # response cache file for judge calls (None: judges are not cached)

    @classmethod
    def from_cli(cls, *, definition: str | None = None, models: tuple[str, ...] | list[str] = (),
                 args: dict[str, str] | None = None, votes: int = 1, reducer: str = "mean",
                 mode: str | None = None, dry_run: bool = False, baseline: str | None = None,
                 labels: str | None = None, cache: str | None = None) -> JudgeConfig:
        """Build from the run flags --judge, --judge-model (repeatable), --judge-args, --judge-votes.

        An empty `definition` means "the task's default judge" (mt_bench: mt-bench-single).
        """
        if votes < 1:
            raise ConfigError(f"--judge-votes must be at least 1 (got {votes})")
        return cls(definition=definition or "", models=tuple(models), args=dict(args or {}), votes=votes,
                   reducer=reducer, mode=mode, dry_run=dry_run, baseline=baseline, labels=labels,
                   cache=str(cache) if cache else None)

    @property
    def modes(self) -> tuple[str, ...]:
        """The --judge-mode list: "generate", "probability", or both ("generate,probability": every judge
        model votes in each mode, and the reliability report compares the modes)."""
        if not self.mode:
            return ()
        modes = tuple(dict.fromkeys(m.strip() for m in self.mode.split(",") if m.strip()))
        bad = [m for m in modes if m not in ("generate", "probability")]
        if bad or not modes:
            raise ConfigError(f"judge mode '{self.mode}': use generate, probability, or generate,probability")
        return modes

    def load_definition(self, default: str = "mt-bench-single") -> JudgeDefinition:
        """The judge definition (`default` when none was named), with `mode` overridden by the first
        --judge-mode (the others are added by the runner)."""
        definition = load_judge_definition(self.definition or default)
        if self.modes:
            definition = definition.model_copy(update={"mode": self.modes[0]})
        return definition

    def model_specs(self, definition: JudgeDefinition) -> tuple[str, ...]:
        """Judge model specs: the --judge-model flags, else the definition's default model."""
        if self.models:
            return self.models
        if definition.default_model:
            return (definition.default_model,)
        raise ConfigError(f"judge '{definition.name}' has no default model: pass --judge-model "
                          "(e.g. --judge-model openai:gpt-4o or --judge-model smollm2)")

    def as_dict(self) -> dict[str, Any]:
        """For results.json (judge args may hold URLs, never keys: keys come from the environment)."""
        return {"definition": self.definition, "models": list(self.models), "votes": self.votes,
                "reducer": self.reducer, "mode": self.mode, "baseline": self.baseline}
