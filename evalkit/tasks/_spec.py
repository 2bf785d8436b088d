"""Task definitions: YAML files validated by typed pydantic models, with errors that name file:line and field.

Each task kind has its own spec model (a subclass of `TaskSpecBase`), registered in `SPEC_MODELS` by kind name
and imported lazily, so a YAML is validated against exactly the fields its kind understands.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from evalkit.errors import TaskSpecError

__all__ = ["KIND_RUNNERS", "SPEC_MODELS", "TaskSpecBase", "load_spec_file", "validate_spec"]

# kind -> "module:SpecModel" / "module:run"
SPEC_MODELS: dict[str, str] = {
    "multiple_choice": "evalkit.tasks.multiple_choice:MultipleChoiceSpec",
    "perplexity": "evalkit.tasks.perplexity:PerplexitySpec",
    "longcontext": "evalkit.tasks.longcontext:LongContextSpec",
    "multiturn_judge": "evalkit.tasks.multiturn_judge:MultiturnJudgeSpec",
    "lmeval": "evalkit.tasks.lmeval_bridge:LmevalBridgeSpec",
}
KIND_RUNNERS: dict[str, str] = {
    "multiple_choice": "evalkit.tasks.multiple_choice:run",
    "perplexity": "evalkit.tasks.perplexity:run",
    "longcontext": "evalkit.tasks.longcontext:run",
    "multiturn_judge": "evalkit.tasks.multiturn_judge:run",
    "lmeval": "evalkit.tasks.lmeval_bridge:run",
}


class TaskSpecBase(BaseModel):
    """Fields every task has. Kind-specific models add theirs and forbid unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: str
    description: str = ""
    version: int = 1
    family: str = ""  # for the report's filter: "knowledge", "perplexity", "judge", "longcontext"
    source_file: str = ""  # filled in by the loader

    def subset_names(self) -> list[str]:
        """The addressable subsets (`task:subset`), in definition order. Empty when the task has none."""
        return []


def import_target(target: str) -> Any:
    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)


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
    if kind not in SPEC_MODELS:
        known = ", ".join(sorted(SPEC_MODELS))
        line = _line_of(lines_doc, ("kind",)) if lines_doc is not None else None
        where = f"{source}:{line}" if line else source
        raise TaskSpecError(f"{where}: field 'kind' is {kind!r}; use one of: {known}")
    model: type[TaskSpecBase] = import_target(SPEC_MODELS[kind])
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
