"""Per-sample records for the sample browser: samples/<task>.jsonl lines reduced to what a person reads.

The browser loads them in chunks (`<script>` files calling `evkChunk`), so a page with 11,000 CMMLU
questions stays small until someone searches it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

__all__ = ["CHUNK_SIZE", "chunk_script", "iter_records", "sample_record"]

CHUNK_SIZE = 200
_KNOWN = frozenset({"id", "subset", "doc_index", "prompt", "target", "prediction", "correct", "score",
                    "choice_logprobs", "responses", "votes", "turns", "question", "messages"})
_MAX_EXTRA = 400


def _text(value: Any) -> str:
    """Readable text for a prompt/target/response that may be a string, a turn list or chat messages."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        if "content" in value:
            role = value.get("role")
            return f"[{role}] {_text(value['content'])}" if role else _text(value["content"])
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value) and len(value) > 1:
            return "\n\n".join(f"── turn {i} ──\n{v}" for i, v in enumerate(value, 1))
        return "\n\n".join(_text(v) for v in value)
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _vote(vote: Any) -> dict[str, Any]:
    if not isinstance(vote, Mapping):
        return {"judge": "", "verdict": _text(vote), "valid": True, "reasoning": ""}
    verdict = vote.get("score", vote.get("verdict", vote.get("rating")))
    valid = vote.get("valid")
    return {"judge": _text(vote.get("judge", vote.get("model", ""))),
            "verdict": "" if verdict is None else _text(verdict),
            "valid": bool(valid) if valid is not None else verdict is not None,
            "reasoning": _text(vote.get("reasoning") or vote.get("raw") or vote.get("explanation") or "")}


def _responses(sample: Mapping[str, Any]) -> list[str]:
    if "responses" in sample and isinstance(sample["responses"], list):
        return [_text(r) for r in sample["responses"]]
    if "prediction" in sample:
        return [_text(sample["prediction"])]
    return []


def sample_record(sample: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The compact, display-ready form of one sample line."""
    correct = sample.get("correct")
    score = _number(sample.get("score"))
    votes = [_vote(v) for v in sample["votes"]] if isinstance(sample.get("votes"), list) else []
    logprobs = sample.get("choice_logprobs")
    extra = {k: _text(v)[:_MAX_EXTRA] for k, v in sorted(sample.items())
             if k not in _KNOWN and isinstance(v, (str, int, float, bool))}
    prompt = sample.get("prompt", sample.get("turns", sample.get("question", sample.get("messages"))))
    return {
        "id": _text(sample.get("id", index)),
        "subset": _text(sample.get("subset")),
        "prompt": _text(prompt),
        "target": _text(sample.get("target")),
        "responses": _responses(sample),
        "correct": bool(correct) if isinstance(correct, bool) else None,
        "score": score,
        "wrong": correct is False or (correct is None and score == 0.0),
        "votes": votes,
        "invalid": any(not v["valid"] for v in votes) or sample.get("valid") is False,
        "logprobs": {str(k): _number(v) for k, v in sorted(logprobs.items())} if isinstance(logprobs, Mapping)
        else None,
        "extra": extra,
    }


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """Display records of a samples/<task>.jsonl, in file order."""
    from evalkit.store._rundir import read_jsonl

    for index, sample in enumerate(read_jsonl(path)):
        yield sample_record(sample, index)


def chunk_script(index: int, records: list[dict[str, Any]]) -> bytes:
    """A JS file that hands one chunk of records to the page: `evkChunk(3, [...]);`.

    JSON is a valid JS expression; it is never parsed as HTML (the file is loaded by `src`), and the page
    puts its strings into the DOM with textContent only.
    """
    payload = orjson.dumps(records, option=orjson.OPT_SORT_KEYS)
    # U+2028/2029 are valid in JSON and in modern JS strings; escape anyway for older engines.
    payload = payload.replace("\u2028".encode(), b"\\u2028").replace("\u2029".encode(), b"\\u2029")
    return b"window.evkChunk(" + str(index).encode() + b"," + payload + b");\n"
