"""Task kinds and task definitions: the API for running a benchmark and for adding a kind of your own.

A task kind is a typed spec model (a `TaskSpecBase` subclass: the fields its YAML may hold) plus a function
`run(spec, backend, ctx, sink) -> TaskOutcome`; `register_task_kind` adds one, `task_kind(name)` returns it.
Names load on first use, so importing this package (as the CLI does) stays cheap.

Examples:
    >>> from evalkit.tasks import task_kind, task_kinds
    >>> "multiple_choice" in task_kinds()
    True
    >>> task_kind("perplexity").spec_model.__name__
    'PerplexitySpec'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalkit._lazy import lazy_getattr

if TYPE_CHECKING:
    from evalkit.tasks._kind import RunContext, SampleSink, TaskKind, TaskOutcome
    from evalkit.tasks._mtbench_data import (
        CATEGORY_TEMPERATURE,
        Question,
        answer_questions,
        load_model_answers,
        load_questions,
        load_references,
        write_model_answers,
    )
    from evalkit.tasks._registry import TaskSelection, find_task_files, load_task, parse_task_list
    from evalkit.tasks._spec import (
        RegisteredTaskKind,
        TaskSpecBase,
        load_spec_file,
        register_task_kind,
        task_kind,
        task_kinds,
        validate_spec,
    )

_HOMES = {
    "evalkit.tasks._kind": ("RunContext", "SampleSink", "TaskKind", "TaskOutcome"),
    "evalkit.tasks._mtbench_data": ("CATEGORY_TEMPERATURE", "Question", "answer_questions", "load_model_answers",
                                    "load_questions", "load_references", "write_model_answers"),
    "evalkit.tasks._registry": ("TaskSelection", "find_task_files", "load_task", "parse_task_list"),
    "evalkit.tasks._spec": ("RegisteredTaskKind", "TaskSpecBase", "load_spec_file", "register_task_kind",
                            "task_kind", "task_kinds", "validate_spec"),
}

__all__ = [
    "CATEGORY_TEMPERATURE",
    "Question",
    "RegisteredTaskKind",
    "RunContext",
    "SampleSink",
    "TaskKind",
    "TaskOutcome",
    "TaskSelection",
    "TaskSpecBase",
    "answer_questions",
    "find_task_files",
    "load_model_answers",
    "load_questions",
    "load_references",
    "load_spec_file",
    "load_task",
    "parse_task_list",
    "register_task_kind",
    "task_kind",
    "task_kinds",
    "validate_spec",
    "write_model_answers",
]

__getattr__ = lazy_getattr("evalkit.tasks", {name: module for module, names in _HOMES.items() for name in names},
                           globals())
