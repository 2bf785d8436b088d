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
                    "choice_logprobs", "responses", "votes", "turns", "question", "messages", "models", "answers",
                    "valid", "judge_prompt", "response", "thinking", "answer", "extraction_stage",
                    "extraction_pattern", "extracted"})
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


def _judge_outputs(vote: Mapping[str, Any], raw: list[Any]) -> str:
    """The judge's own text for a vote: its parts point into the sample's `responses` (evalkit judge)."""
    texts = []
    for part in vote.get("parts") or []:
        if not isinstance(part, Mapping):
            continue
        index = part.get("response")
        text = raw[index] if isinstance(index, int) and 0 <= index < len(raw) else part.get("raw")
        if text:
            head = f"[order {part['order']}] " if part.get("order") is not None and len(vote["parts"]) > 1 else ""
            texts.append(head + _text(text))
    return "\n\n".join(texts)


def _vote(vote: Any, raw: list[Any]) -> dict[str, Any]:
    if not isinstance(vote, Mapping):
        return {"judge": "", "verdict": _text(vote), "valid": True, "reasoning": ""}
    verdict = next((vote[k] for k in ("score", "verdict", "rating", "value") if vote.get(k) is not None), None)
    valid = vote.get("valid")
    reasoning = vote.get("reasoning") or vote.get("explanation") or _judge_outputs(vote, raw) or vote.get("raw")
    judge = _text(vote.get("judge", vote.get("model", "")))
    if vote.get("sample") is not None:
        judge += f" #{vote['sample']}"
    return {"judge": judge, "verdict": "" if verdict is None else _text(verdict),
            "valid": bool(valid) if valid is not None else verdict is not None, "reasoning": _text(reasoning or "")}


def _judge_layout(sample: Mapping[str, Any]) -> bool:
    """evalkit judge rows keep the judge's raw outputs in `responses` and the model answer in `prediction`."""
    votes = sample.get("votes")
    return isinstance(votes, list) and any(isinstance(v, Mapping) and "parts" in v for v in votes)


def _responses(sample: Mapping[str, Any]) -> list[str]:
    answers = sample.get("answers")
    if isinstance(answers, Mapping):
        return [f"[{model}]\n{_text(text)}" for model, text in answers.items()]
    if sample.get("prediction") is not None and (_judge_layout(sample) or "responses" not in sample):
        return [_text(sample["prediction"])]
    if isinstance(sample.get("responses"), list):
        return [_text(r) for r in sample["responses"]]
    return []


def _generated(sample: Mapping[str, Any]) -> dict[str, Any]:
    """A generated multiple-choice answer read by the extraction cascade: thought, answer and stage apart.

    `unextractable` marks an answer from which no stage read a letter (`prediction` null); samples of other
    kinds carry empty fields and are never unextractable.
    """
    if "extraction_stage" not in sample:
        return {"thinking": "", "answer": "", "raw_output": "", "prediction": "", "stage": "", "unextractable": False}
    answer = _text(sample.get("answer"))
    raw = _text(sample.get("response"))
    stage = _text(sample.get("extraction_stage"))
    if sample.get("extraction_pattern"):
        stage += f" ({_text(sample['extraction_pattern'])})"
    letter = sample.get("prediction")
    return {"thinking": _text(sample.get("thinking")), "answer": answer,
            "raw_output": raw if raw != answer else "", "prediction": "" if letter is None else _text(letter),
            "stage": stage, "unextractable": letter is None}


def sample_record(sample: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The compact, display-ready form of one sample line.

    Generated multiple-choice answers (they carry `extraction_stage`) keep the thought, the answer the cascade
    read, the raw output, the extracted letter and its stage as separate fields; their `responses` is empty.
    """
    correct = sample.get("correct")
    score = _number(sample.get("score"))
    raw = sample["responses"] if _judge_layout(sample) and isinstance(sample.get("responses"), list) else []
    votes = [_vote(v, raw) for v in sample["votes"]] if isinstance(sample.get("votes"), list) else []
    models = sample.get("models")
    logprobs = sample.get("choice_logprobs")
    extra = {k: _text(v)[:_MAX_EXTRA] for k, v in sorted(sample.items())
             if k not in _KNOWN and isinstance(v, (str, int, float, bool))}
    prompt = sample.get("prompt", sample.get("turns", sample.get("question", sample.get("messages"))))
    return {
        "id": _text(sample.get("id", index)),
        "subset": _text(sample.get("subset")),
        "model": ", ".join(str(m) for m in models) if isinstance(models, list) else "",
        "prompt": _text(prompt),
        "target": _text(sample.get("target")),
        "responses": [] if "extraction_stage" in sample else _responses(sample),
        "correct": bool(correct) if isinstance(correct, bool) else None,
        "score": score,
        "perplexity": _number(sample.get("token_perplexity", sample.get("perplexity"))),
        "wrong": correct is False or (correct is None and score == 0.0),
        "votes": votes,
        "invalid": any(not v["valid"] for v in votes) or sample.get("valid") is False,
        "judge_prompt": _text(sample.get("judge_prompt")),
        "logprobs": {str(k): _number(v) for k, v in sorted(logprobs.items())} if isinstance(logprobs, Mapping)
        else None,
        "extra": extra,
        **_generated(sample),
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
