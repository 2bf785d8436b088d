"""How a multiple-choice subject is answered: by the loglikelihood of each option letter, or generated
(`mode=generate`: the answer directly; `mode=cot`: reasoning first) and read by the extraction cascade.

`mode` unset means loglikelihood where the backend can score text, else generate; results.json records the
mode that ran. `circular=true` asks every question under each cyclic rotation of its options in any mode
(OpenCompass's CircularEval); in loglikelihood mode the rotations share the subject's few-shot prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.backends._protocol import Backend, BackendBase
from evalkit.errors import ConfigError, EvalkitError, UnsupportedRequest
from evalkit.tasks._circular import acc_circular, check_letters, circular_variants
from evalkit.tasks._mc_chat import ChatScoring
from evalkit.tasks._mc_generative import McOptions, generative_info, generative_metrics, run_generative
from evalkit.tasks._mc_generative import MCQuestion as _Question
from evalkit.types import LoglikelihoodRequest, LoglikelihoodResult

__all__ = ["ModeState", "mode_info", "mode_metrics", "open_extractor", "score_subject"]


@dataclass
class ModeState:
    """The settled options of one task run (the automatic mode is settled by the first subject)."""

    options: McOptions
    extractor: BackendBase | None = None
    chat: ChatScoring = field(default_factory=ChatScoring)


def open_extractor(spec: str | None, cache_path: Path | None) -> BackendBase | None:
    """The extractor model's backend (stage 3 of the cascade), behind the run's response cache."""
    if not spec:
        return None
    from evalkit.backends import as_base_backend
    from evalkit.backends._registry import load_backend

    try:
        backend = as_base_backend(load_backend(spec))
    except EvalkitError as exc:
        raise ConfigError(f"--task-args extractor={spec}: {exc}; use a model from `evalkit models` or drop "
                          f"extractor") from None
    if cache_path is None:
        return backend
    from evalkit.store._cache import CachedBackend

    return CachedBackend(backend, cache_path)


def _loglikelihood_sample(letters: str, subject: str, q: _Question, prompt: str,
                          results: Sequence[LoglikelihoodResult]) -> dict[str, Any]:
    lls = [r.logprob for r in results]
    best = max(range(len(lls)), key=lambda i: (lls[i], -i))
    norm = [ll / len(letter) for ll, letter in zip(lls, letters)]
    best_norm = max(range(len(norm)), key=lambda i: (norm[i], -i))
    return {"id": f"{subject}/{q.doc_index}", "subset": subject, "doc_index": q.doc_index, "prompt": prompt,
            "target": q.answer, "prediction": letters[best], "correct": letters[best] == q.answer,
            "correct_norm": letters[best_norm] == q.answer, "choice_logprobs": dict(zip(letters, lls)),
            "choice_is_greedy": dict(zip(letters, (bool(r.is_greedy) for r in results)))}


def _loglikelihood(questions: Sequence[_Question], build: Callable[[Any], str], letters: str,
                   delimiter: str, subject: str, backend: Backend, circular: bool, task: str) -> list[dict[str, Any]]:
    asked = [circular_variants(q, letters, task) if circular else [q] for q in questions]
    flat = [(i, variant) for i, variants in enumerate(asked) for variant in variants]
    prompts = [build(variant) for _, variant in flat]
    requests = [LoglikelihoodRequest(p, delimiter + letter) for p in prompts for letter in letters]
    results = backend.loglikelihood(requests)
    n = len(letters)
    scored = [_loglikelihood_sample(letters, subject, v, p, results[j * n:(j + 1) * n])
              for j, ((_, v), p) in enumerate(zip(flat, prompts))]
    by_question: dict[int, list[dict[str, Any]]] = {}
    for (owner, _), scored_sample in zip(flat, scored):
        by_question.setdefault(owner, []).append(scored_sample)
    samples: list[dict[str, Any]] = []
    for i in range(len(questions)):
        mine = by_question[i]
        sample = mine[0]
        if circular:
            sample["circular"] = [{"rotation": r, "target": s["target"], "prediction": s["prediction"],
                                   "correct": s["correct"]} for r, s in enumerate(mine)]
            sample["correct_circular"] = all(s["correct"] for s in mine)
        samples.append(sample)
    return samples


def score_subject(questions: Sequence[_Question], build: Callable[[Any], str], *, letters: str,
                  delimiter: str, subject: str, header: str, shots: Sequence[_Question], backend: BackendBase,
                  state: ModeState, task: str) -> list[dict[str, Any]]:
    """One sample record per question, in the mode the run asked for (settling the automatic one)."""
    options = state.options
    if options.circular:
        check_letters(letters, task)
    if state.chat.apply_chat_template and options.mode in ("generate", "cot"):
        raise ConfigError(f"--task-args apply_chat_template=true: only applies to mode=loglikelihood (mode="
                          f"{options.mode} always uses the chat template); drop it or use mode=loglikelihood")
    if options.mode in (None, "loglikelihood"):
        try:
            return _loglikelihood(questions, build, letters, delimiter, subject, backend, options.circular, task)
        except UnsupportedRequest:
            if options.mode == "loglikelihood":
                raise ConfigError(f"--task-args mode=loglikelihood: {backend.identity.model} cannot score text; "
                                  f"use mode=generate or mode=cot") from None
            state.options = options = options.resolved("generate")
    try:
        return run_generative(questions, backend, options, subject=subject, letters=letters, header=header,
                              shots=shots, extractor=state.extractor,
                              tokenizer=backend if backend.can_tokenize else None, task=task)
    except UnsupportedRequest:
        raise ConfigError(f"--task-args mode={options.mode}: {backend.identity.model} cannot generate text; "
                          f"use mode=loglikelihood") from None


def mode_metrics(samples: Sequence[Mapping[str, Any]], state: ModeState) -> dict[str, float]:
    """The mode's metrics for one table (the task, a group or a subject): extraction and k-sample metrics in
    generative modes; calibration (ECE, Brier) and circular accuracy in loglikelihood mode."""
    if not samples:
        return {}
    if state.options.mode in ("generate", "cot"):
        return generative_metrics(samples)
    from evalkit.metrics import calibration_metrics

    metrics = dict(calibration_metrics([s["choice_logprobs"] for s in samples], [s["target"] for s in samples]))
    if all(s.get("circular") for s in samples):
        value, se = acc_circular([[t["correct"] for t in s["circular"]] for s in samples])
        metrics.update(acc_circular=value, acc_circular_stderr=se)
    return metrics


def mode_info(samples: Sequence[Mapping[str, Any]], state: ModeState) -> dict[str, Any]:
    """results.json facts about the mode that ran."""
    if state.options.mode in ("generate", "cot"):
        return generative_info(samples, state.options)
    info: dict[str, Any] = {"mode": "loglikelihood", "circular": state.options.circular}
    if state.chat.apply_chat_template:
        info.update(apply_chat_template=True, fewshot_as_multiturn=state.chat.fewshot_as_multiturn)
    return info
