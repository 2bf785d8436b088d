"""Per-sample records: one line of runs/<run_id>/samples/<task>.jsonl, typed per task kind.

Every kind shares `id`, `subset`, `doc_index` (the row in the source file), `prompt`, `target` and
`prediction`; each kind adds its own fields. Unknown fields are kept (a kind may add facts), but the shared ones
have one meaning everywhere: `extracted` is always the letter (or label) found in a generated answer, or null.

Examples:
    >>> row = sample_type("multiple_choice").model_validate({"id": "a/0", "prediction": "B", "extracted": True})
    >>> row.extracted
    'B'
    >>> sample_type("perplexity").__name__
    'PerplexitySample'
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["JudgedSample", "LongContextSample", "MultipleChoiceSample", "PerplexitySample", "SampleRecord",
           "register_sample_type", "sample_type"]


class SampleRecord(BaseModel):
    """Fields every sample line has."""

    model_config = ConfigDict(extra="allow")

    id: str | int | None = None
    subset: str | None = None
    doc_index: int | None = None
    prompt: Any = None
    target: Any = None
    prediction: Any = None


class MultipleChoiceSample(SampleRecord):
    """A multiple-choice question: the letter predicted, and how (loglikelihoods or an extracted answer)."""

    correct: bool | None = None
    choice_logprobs: dict[str, float] | None = None
    extracted: str | None = None  # the letter found in a generated answer; null when none was found
    extraction_stage: str | None = None  # strict / lenient / model / none
    raw_output: str | None = None
    thinking: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _extracted_is_a_letter(cls, data: Any) -> Any:
        # results written before schema 2 stored a bool here: the letter is the prediction when it was found
        if isinstance(data, dict) and isinstance(data.get("extracted"), bool):
            data = {**data, "extracted": data.get("prediction") if data["extracted"] else None}
        return data


class PerplexitySample(SampleRecord):
    """One scored document: its total log-probability and unit counts."""

    logprob: float | None = None
    tokens: int | None = None
    windows: int | None = None


class LongContextSample(SampleRecord):
    """One long-context answer and its score under the dataset's metric."""

    score: float | None = None
    extracted: str | None = None
    correct: bool | None = None


class JudgedSample(SampleRecord):
    """One judged answer: the responses, every judge vote and the reduced score."""

    responses: Any = None
    votes: Any = None
    score: float | None = None


_TYPES: dict[str, type[SampleRecord]] = {
    "multiple_choice": MultipleChoiceSample,
    "perplexity": PerplexitySample,
    "longcontext": LongContextSample,
    "multiturn_judge": JudgedSample,
    "judged_answers": JudgedSample,
}


def register_sample_type(kind: str, model: type[SampleRecord]) -> None:
    """Declare the sample record of a task kind (a kind without one uses `SampleRecord`)."""
    _TYPES[kind] = model


def sample_type(kind: str) -> type[SampleRecord]:
    """The sample record model of a task kind."""
    return _TYPES.get(kind, SampleRecord)
