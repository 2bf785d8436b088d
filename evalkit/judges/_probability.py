"""Probability-mode judges (G-Eval style): read the verdict distribution instead of parsing free text.

For each judgment the judge's chat prompt is rendered with the backend's own chat template
(`render_chat`), optionally followed by a short generated rationale, then by the forced verdict
prefix of the output format (`Rating: [[` / `[[`). Every option is scored as its *full* continuation
(`"10]]"`, not just its first token) with `backend.loglikelihood`, so multi-token options are exact under the
backend's own tokenizer, and the closing suffix keeps `1` from absorbing the mass of `10`.

With p_i = exp(loglikelihood_i):
    valid mass  = Σ p_i                         (how much of the model's belief fell on valid verdicts)
    q_i         = p_i / Σ p_j                   (renormalised over the options)
    single      score = Σ q_i · value_i         (expected rating)
    pairwise    preference for A = q_A + q_C/2  (AlpacaEval-style continuous preference; both orders averaged)
A judgment whose valid mass is below `probability.low_confidence` is flagged low-confidence (still scored).

Without a rationale the distribution is deterministic, so one vote is made whatever `votes` says; with a
rationale (sampled when votes > 1) each vote has its own rationale.

API judges (`openai:` backends, `evalkit serve` included) cannot score arbitrary continuations of a rendered
prompt; they answer chat requests with per-token `top_logprobs`. Where the server continues a forced start
of the reply (`evalkit serve`, vLLM: `prefill`), the verdict prefix is forced and the alternatives at the next
position are read, ambiguous ones ("1" of "10") expanded with one more request each. Elsewhere (OpenAI
itself) the judge writes its reply freely and the alternatives right after the first "[[" it writes are read.
Options and masses then follow `evalkit.judges._verdict_tokens`; `visible_mass` records how much of the
distribution the returned alternatives covered.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from evalkit.backends._adapt import as_base_backend
from evalkit.backends._protocol import Backend
from evalkit.errors import BackendError, UnsupportedRequest
from evalkit.judges._judge import build_conversation, merge_orders, orders_of
from evalkit.judges._records import Attempt, JudgeItem, JudgeStats, Vote, verdict_of
from evalkit.judges._spec import JudgeDefinition
from evalkit.judges._verdict_tokens import VerdictMasses, option_masses
from evalkit.types import Conversation, GenConfig, LoglikelihoodRequest, TokenChoice

__all__ = ["ProbabilityJudge", "verdict_distribution"]


def verdict_distribution(logprobs: Sequence[float]) -> tuple[list[float], float]:
    """Renormalised probabilities of the options and the raw probability mass they held.

    Examples:
        >>> probs, mass = verdict_distribution([math.log(0.3), math.log(0.1)])
        >>> [round(p, 2) for p in probs], round(mass, 2)
        ([0.75, 0.25], 0.4)
    """
    top = max(logprobs)
    weights = [math.exp(lp - top) for lp in logprobs]
    total = sum(weights)
    return [w / total for w in weights], total * math.exp(top)


class ProbabilityJudge:
    """A judge that reads verdict probabilities through `render_chat` + `loglikelihood`.

    Args:
        definition: the judge definition (`probability:` settings, scale, prompts).
        backend: a backend with chat rendering and loglikelihood (transformers, fake, `evalkit serve`).
        name: label of this judge in votes and reports.
        votes: samples per item (only meaningful with a sampled rationale).
        seed: base seed of the rationale samples.
        data_dir: where FastChat's judge prompts are read from, if the definition uses them.
    """

    def __init__(self, definition: JudgeDefinition, backend: Backend, *, name: str | None = None,
                 votes: int = 1, seed: int = 0, data_dir: Any = None, vote_temperature: float = 0.7) -> None:
        base = as_base_backend(backend)
        if base.can_render_chat:
            self.route = "loglikelihood"
        elif base.can_chat_logprobs:
            self.route = "top_logprobs"
        else:
            raise UnsupportedRequest(
                f"judge '{definition.name}' in probability mode needs a backend that renders chat prompts and "
                f"scores loglikelihoods, or an API that returns top_logprobs; {backend.identity.backend}:"
                f"{backend.identity.model} can do neither — use the generative mode (--judge-mode generate, "
                "or mode: generate in the judge YAML)")
        self.definition = definition
        self.backend = base
        self.name = name or backend.identity.model
        self.settings = definition.probability
        sampled = self.settings.rationale_tokens > 0 or (self.route == "top_logprobs"
                                                         and not self._prefilled())
        self.votes = max(1, votes) if sampled else 1
        self.seed = seed
        self.data_dir = data_dir
        self.vote_temperature = vote_temperature
        self.stats = JudgeStats()


    def require_scoring_route(self, kind: str) -> None:
        """Judges that score every option themselves (rubric, listwise) need `render_chat` + `loglikelihood`."""
        if self.route != "loglikelihood":
            raise UnsupportedRequest(f"{kind} judge '{self.definition.name}' in probability mode needs a backend "
                                     "that renders chat prompts and scores loglikelihoods; use --judge-mode generate")

    def options(self, item: JudgeItem) -> list[tuple[str, float | str]]:
        """(option text, value): ratings low..high for single grading, A / B / C (tie) for pairwise."""
        if item.pairwise:
            return [("A", "A"), ("B", "B"), ("C", "tie")]
        low, high = self.definition.scale
        return [(str(k), float(k)) for k in range(int(low), int(high) + 1)]

    def prefix(self, item: JudgeItem) -> str:
        if self.settings.prefix is not None:
            return self.settings.prefix
        return "[[" if item.pairwise else "Rating: [["

    def planned_calls(self, items: Sequence[JudgeItem]) -> int:
        """Scoring passes (one per judgment and order; each scores every option)."""
        return sum(len(orders_of(item)) for item in items) * self.votes

    def _rationales(self, convs: list[Any], sample: int) -> list[str]:
        if self.settings.rationale_tokens <= 0:
            return ["" for _ in convs]
        temperature = self.definition.temperature
        if self.votes > 1 and temperature <= 0:
            temperature = self.vote_temperature
        stops = (self.prefix_stop(),)
        config = GenConfig(temperature=temperature, max_tokens=self.settings.rationale_tokens, seed=self.seed + sample,
                           stop=stops)
        completions = self.backend.generate(convs, config)
        for c in completions:
            self.stats.prompt_tokens += c.usage.prompt_tokens
            self.stats.completion_tokens += c.usage.completion_tokens
        return [c.text.rstrip() + self.settings.rationale_joiner for c in completions]

    def prefix_stop(self) -> str:
        # stop the rationale before the model writes a verdict of its own
        return "[["

    def _score(self, contexts: list[str], option_lists: list[list[tuple[str, float | str]]]) -> list[list[float]]:
        suffix = self.settings.suffix
        out = []
        # one call per judgment: its options share the whole long prompt, which a prefix-sharing backend then
        # encodes once (mixed in one call, judgments of different answers share only the instructions)
        for ctx, opts in zip(contexts, option_lists):
            requests = [LoglikelihoodRequest(ctx, text + suffix) for text, _ in opts]
            try:
                results = self.backend.loglikelihood(requests)
            except UnsupportedRequest as exc:
                raise UnsupportedRequest(f"judge '{self.definition.name}' in probability mode: {exc}; use the "
                                         "generative mode (--judge-mode generate) with this backend") from None
            self.stats.loglikelihood_requests += len(requests)
            out.append([r.logprob for r in results])
        return out

    def _attempt(self, item: JudgeItem, order: str, logprobs: list[float], rationale: str,
                 visible: float | None = None) -> Attempt:
        opts = self.options(item)
        if max(logprobs) == -math.inf:
            return Attempt(order, None, rationale, None, error=f"no valid verdict among the {self.settings.top_logprobs} "
                           f"likeliest tokens (visible mass {visible or 0:.3f})", visible_mass=visible)
        probs, mass = verdict_distribution(logprobs)
        dist = {text: round(p, 6) for (text, _), p in zip(opts, probs)}
        low = mass < self.settings.low_confidence
        if not item.pairwise:
            score = sum(p * float(v) for (_, v), p in zip(opts, probs))
            return Attempt(order, score, rationale, "probability", distribution=dist, valid_mass=mass,
                           low_confidence=low, visible_mass=visible)
        pref = probs[0] + 0.5 * probs[2]
        if order == "BA":
            pref = 1.0 - pref
        return Attempt(order, verdict_of(pref), rationale, "probability", preference=pref, distribution=dist,
                       valid_mass=mass, low_confidence=low, visible_mass=visible)

    def _from_masses(self, item: JudgeItem, order: str, found: VerdictMasses, rationale: str) -> Attempt:
        logprobs = [math.log(found.masses[text]) if found.masses[text] > 0 else -math.inf
                    for text, _ in self.options(item)]
        return self._attempt(item, order, logprobs, rationale, visible=found.visible)

    # --- API judges: top_logprobs -------------------------------------------------------------------------
    def _prefilled(self) -> bool:
        return self.backend.supports_prefill

    def _api_attempts(self, items: Sequence[JudgeItem], keys: list[tuple[int, str]], convs: list[Conversation],
                      sample: int) -> list[Attempt]:
        backend = self.backend
        top = self.settings.top_logprobs
        texts = {i: [text for text, _ in self.options(items[i])] for i, _ in keys}
        if self._prefilled():
            rationales = self._rationales(convs, sample)
            starts = [why + self.prefix(items[i]) for why, (i, _) in zip(rationales, keys)]
            one = GenConfig(temperature=0.0, max_tokens=1)
            firsts = backend.chat_logprobs(convs, one, top, starts)
            self.stats.calls += len(keys)
            out = []
            for (i, order), conv, start, first, why in zip(keys, convs, starts, firsts, rationales):
                def expand(emitted: str, conv: Conversation = conv, start: str = start) -> list[tuple[str, float]] | None:
                    self.stats.calls += 1
                    got = backend.chat_logprobs([conv], one, top, [start + emitted])[0]
                    return list(got[0].top) if got else None
                found = option_masses(texts[i], self.settings.suffix, first[0].top if first else (), expand)
                out.append(self._from_masses(items[i], order, found, why))
            return out
        temperature = self.definition.temperature
        if self.votes > 1 and temperature <= 0:
            temperature = self.vote_temperature
        config = GenConfig(temperature=temperature, max_tokens=self.definition.max_tokens, seed=self.seed + sample)
        replies = backend.chat_logprobs(convs, config, top)
        self.stats.calls += len(keys)
        return [self._read_reply(items[i], order, tokens, texts[i]) for (i, order), tokens in zip(keys, replies)]

    def _read_reply(self, item: JudgeItem, order: str, tokens: Sequence[TokenChoice], texts: list[str]) -> Attempt:
        """Alternatives right after the first verdict opener ("[[") the judge wrote itself."""
        opener, written = self.prefix_stop(), ""
        for j, token in enumerate(tokens):
            if written.endswith(opener):
                def expand(emitted: str, j: int = j) -> list[tuple[str, float]] | None:
                    spelled = ""
                    for k in range(j, len(tokens)):  # only along the path the judge actually took
                        spelled += tokens[k].text
                        if spelled == emitted:
                            return list(tokens[k + 1].top) if k + 1 < len(tokens) else None
                        if not emitted.startswith(spelled):
                            return None
                    return None
                found = option_masses(texts, self.settings.suffix, token.top, expand)
                return self._from_masses(item, order, found, written)
            written += token.text
        return Attempt(order, None, written, None, error=f"the judge wrote no '{opener}' verdict opener, so there "
                       "is no verdict position to read; raise max_tokens or use a server with prefill")

    def judge(self, items: Sequence[JudgeItem]) -> list[list[Vote]]:
        """Votes per item from the verdict distributions (pairwise: both orders, preferences averaged)."""
        start = time.perf_counter()
        keys = [(i, order) for i, item in enumerate(items) for order in orders_of(item)]
        convs = [build_conversation(self.definition, items[i], order, self.data_dir) for i, order in keys]
        rendered: list[str] = []
        if self.route == "loglikelihood":
            try:
                rendered = [self.backend.render_chat(conv) for conv in convs]
            except NotImplementedError as exc:
                raise BackendError(f"{self.name}: cannot render chat prompts ({exc}); use the generative "
                                   "mode") from None
        out: list[list[Vote]] = [[] for _ in items]
        for sample in range(self.votes):
            if self.route == "top_logprobs":
                attempts = dict(zip(keys, self._api_attempts(items, keys, convs, sample)))
            else:
                rationales = self._rationales(convs, sample)
                contexts = [r + why + self.prefix(items[i]) for r, why, (i, _) in zip(rendered, rationales, keys)]
                scores = self._score(contexts, [self.options(items[i]) for i, _ in keys])
                attempts = {key: self._attempt(items[key[0]], key[1], lps, why)
                            for key, lps, why in zip(keys, scores, rationales)}
                self.stats.calls += len(keys)
            valid = sum(1 for a in attempts.values() if a.value is not None)
            self.stats.judgments += len(keys)
            self.stats.first_try_parsed += valid
            self.stats.rules["probability"] = self.stats.rules.get("probability", 0) + valid
            for i, item in enumerate(items):
                parts = [attempts[(i, order)] for order in orders_of(item)]
                out[i].append(merge_orders(self.name, sample, item, parts))
        self.stats.seconds += time.perf_counter() - start
        return out
