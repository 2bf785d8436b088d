"""Task definitions: YAML files validated by typed pydantic models, with errors that name file:line and field,
and the registry of task kinds.

Each task kind has its own spec model (a subclass of `TaskSpecBase`) and a run function, registered together
with `register_task_kind`. The built-in kinds are registered as "module:attr" targets and imported on first
use, so `evalkit --help` never imports them; a YAML is validated against exactly the fields its kind understands.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evalkit.errors import ConfigError, TaskSpecError

if TYPE_CHECKING:
    from evalkit.tasks._kind import TaskKind

__all__ = ["RegisteredTaskKind", "TaskJudge", "TaskSpecBase", "load_spec_file",
           "register_task_kind", "task_kind", "task_kinds", "validate_spec"]


class TaskJudge(BaseModel):
    """A task's `judge:` block: the judge definition (judges/<name>.yaml) and defaults the run flags override."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    definition: str
    votes: int | None = Field(default=None, ge=1)
    reducer: str | None = None
    mode: str | None = None

    @field_validator("definition")
    @classmethod
    def _known(cls, name: str) -> str:
        from evalkit.judges._spec import list_judges

        known = list_judges()
        if name not in known and not name.endswith((".yaml", ".yml")):
            raise ValueError(f"unknown judge '{name}'; use one of: {', '.join(sorted(known))} or a path to a judge YAML")
        return name


class TaskSpecBase(BaseModel):
    """Fields every task has. Kind-specific models add theirs and forbid unknown keys.

    `judge` (a judge definition name, or `{definition, votes, reducer, mode}`) is the judge a generative task
    kind runs over its answers when the run asks for judging (see `evalkit.tasks._task_judge`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: str
    description: str = ""
    version: int = 1
    family: str = ""  # for the report's filter: "knowledge", "perplexity", "judge", "longcontext"
    source_file: str = ""  # filled in by the loader
    judge: TaskJudge | None = None

    @field_validator("judge", mode="before")
    @classmethod
    def _judge_name(cls, value: Any) -> Any:
        return {"definition": value} if isinstance(value, str) else value

    def subset_names(self) -> list[str]:
        """The addressable subsets (`task:subset`), in definition order. Empty when the task has none."""
        return []


def import_target(target: object) -> Any:
    """Resolve a "module:attr" string by importing the module; any other object is returned as it is."""
    if not isinstance(target, str):
        return target
    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)


@dataclass(frozen=True)
class RegisteredTaskKind:
    """A task kind: the pydantic model its YAML validates against and the function that runs it."""

    name: str
    spec_model: type[TaskSpecBase]
    run: TaskKind
    repeats: bool = False  # samples `--repeats K` answers per question (reads `RunContext.repeats`)


# kind -> (spec model or "module:Model", run function or "module:run"); resolved once, on first use
_TARGETS: dict[str, tuple[object, object]] = {}
_REPEATS: set[str] = set()  # kinds that sample --repeats K answers
_RESOLVED: dict[str, RegisteredTaskKind] = {}
_KIND_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def register_task_kind(name: str, *, spec_model: type[TaskSpecBase] | str, run: TaskKind | str,
                       repeats: bool = False, replace: bool = False) -> None:
    """Register a task kind: YAMLs with `kind: <name>` validate against `spec_model` and run with `run`.

    Either may be given as a "module:attr" string, imported when the kind is first used.

    Args:
        name: the `kind:` value of the task YAMLs of this kind (a Python identifier).
        spec_model: a `TaskSpecBase` subclass (or its "module:Class" path).
        run: `run(spec, backend, ctx, sink) -> TaskOutcome` (or its "module:function" path).
        repeats: the kind samples `--repeats K` answers per question (`RunContext.repeats`); a run with K > 1
            refuses the kinds that do not, rather than ignore the flag.
        replace: allow replacing an already registered kind (built-in ones included).

    Raises:
        ConfigError: the name is not an identifier, or the kind exists and `replace` is False.

    Examples:
        >>> register_task_kind("multiple_choice", spec_model=TaskSpecBase, run=print)
        Traceback (most recent call last):
        ...
        evalkit.errors.ConfigError: task kind 'multiple_choice' is already registered; pass replace=True to replace it
    """
    if not _KIND_NAME.match(name):
        raise ConfigError(f"task kind name {name!r} must be a Python identifier (letters, digits, underscores)")
    if name in _TARGETS and not replace:
        raise ConfigError(f"task kind '{name}' is already registered; pass replace=True to replace it")
    _TARGETS[name] = (spec_model, run)
    _REPEATS.discard(name)
    if repeats:
        _REPEATS.add(name)
    _RESOLVED.pop(name, None)


def task_kinds() -> list[str]:
    """The names of every registered task kind, sorted."""
    return sorted(_TARGETS)


def task_kind(name: str) -> RegisteredTaskKind:
    """The registered kind `name`, its spec model and run function imported on first use.

    Raises:
        TaskSpecError: no kind of that name is registered, or its targets are not a spec model and a function.
    """
    found = _RESOLVED.get(name)
    if found is not None:
        return found
    if name not in _TARGETS:
        raise TaskSpecError(f"unknown task kind {name!r}; use one of: {', '.join(task_kinds())} "
                            f"(or register yours with evalkit.tasks.register_task_kind)")
    model_target, run_target = _TARGETS[name]
    model, run = import_target(model_target), import_target(run_target)
    if not (isinstance(model, type) and issubclass(model, TaskSpecBase)) or not callable(run):
        raise TaskSpecError(f"task kind '{name}': spec_model must be a TaskSpecBase subclass and run a function "
                            f"(got {model_target!r}, {run_target!r}); fix its register_task_kind call")
    found = _RESOLVED[name] = RegisteredTaskKind(name, model, run, repeats=name in _REPEATS)
    return found


def kind_samples_repeats(name: str) -> bool:
    """Whether the registered kind `name` samples `--repeats K` answers (without importing it)."""
    return name in _REPEATS


# (kind, "module:SpecModel", samples --repeats); perplexity and the lm-eval bridge have nothing to sample
for _name, _module, _repeats in (("multiple_choice", "multiple_choice:MultipleChoiceSpec", True),
                                 ("perplexity", "perplexity:PerplexitySpec", False),
                                 ("longcontext", "longcontext:LongContextSpec", True),
                                 ("multiturn_judge", "multiturn_judge:MultiturnJudgeSpec", True),
                                 ("lmeval", "lmeval_bridge:LmevalBridgeSpec", False),
                                 ("cmb_exam", "cmb:CmbExamSpec", True),
                                 ("cmb_clin", "_cmb_clin:CmbClinSpec", True),
                                 ("open_qa", "open_qa:OpenQaSpec", True),
                                 ("classification", "classification:ClassificationSpec", True)):
    register_task_kind(_name, spec_model=f"evalkit.tasks.{_module}",
                       run=f"evalkit.tasks.{_module.split(':')[0]}:run", repeats=_repeats)


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that remembers the line of every mapping key and sequence item."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    mapping["__lines__"] = lines
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _strip_lines(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_lines(v) for k, v in obj.items() if k != "__lines__"}
    if isinstance(obj, list):
        return [_strip_lines(v) for v in obj]
    return obj


def _line_of(doc: Any, loc: tuple[Any, ...]) -> int | None:
    line: int | None = None
    node = doc
    for part in loc:
        if isinstance(node, dict):
            line = node.get("__lines__", {}).get(str(part), line)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            break
    return line


def validate_spec(raw: dict[str, Any], source: str = "<dict>", lines_doc: Any = None) -> TaskSpecBase:
    """Validate a parsed task definition against the model of its kind."""
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in _TARGETS:
        line = _line_of(lines_doc, ("kind",)) if lines_doc is not None else None
        where = f"{source}:{line}" if line else source
        raise TaskSpecError(f"{where}: field 'kind' is {kind!r}; use one of: {', '.join(task_kinds())} "
                            f"(or register the kind with evalkit.tasks.register_task_kind)")
    model = task_kind(kind).spec_model
    try:
        return model.model_validate({**raw, "source_file": source})
    except ValidationError as exc:
        # a misspelt key is the likeliest cause of a "missing field" next to it: report it first
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        err = errors[0]
        loc = tuple(err["loc"])
        field_name = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(lines_doc, loc) if lines_doc is not None else None
        if line is None and lines_doc is not None and loc:
            line = _line_of(lines_doc, loc[:1])
        where = f"{source}:{line}" if line else source
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise TaskSpecError(f"{where}: field '{field_name}': {err['msg']}{more}; "
                            f"see the {kind} task fields in the README") from None


def load_spec_file(path: Path) -> TaskSpecBase:
    """Load and validate one task YAML; every error names the file, line and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TaskSpecError(f"{path}: cannot read task file ({exc.strerror})") from None
    try:
        doc = yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else "?"
        raise TaskSpecError(f"{path}:{line}: not valid YAML ({exc.problem}); fix the syntax") from None
    if not isinstance(doc, dict):
        raise TaskSpecError(f"{path}:1: a task file must be a mapping with at least 'name' and 'kind'")
    return validate_spec(_strip_lines(doc), str(path), doc)
