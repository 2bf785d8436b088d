"""An lm-eval `LM` that serves lm-eval's requests with any evalkit backend.

lm-eval's three request types map one to one onto the backend contract:
`loglikelihood` → `Backend.loglikelihood`, `loglikelihood_rolling` → `Backend.loglikelihood_rolling` (disjoint
windows, summed), `generate_until` → `complete` (raw text, as lm-eval's own models continue a prompt) when the
backend has it, else `generate` with the prompt as one user message. Requests are handed over in one call
per type (grouped by generation settings), so a wrapping response cache and prefix sharing see whole lists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from evalkit.backends._adapt import as_base_backend
from evalkit.backends._protocol import Backend, BackendBase
from evalkit.errors import ConfigError, MissingDependency, UnsupportedRequest
from evalkit.types import GenConfig, LoglikelihoodRequest, Message

__all__ = ["backend_lm", "gen_config"]

_DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's HFLM default


def gen_config(kwargs: dict[str, Any], seed: int | None = None) -> GenConfig:
    """Turn lm-eval's `generate_until` kwargs (until, max_gen_toks, do_sample, temperature, ...) into a GenConfig.

    Examples:
        >>> gen_config({"until": ["\\n\\n", "Question:"], "max_gen_toks": 32, "do_sample": False})
        GenConfig(temperature=0.0, top_k=None, top_p=None, max_tokens=32, stop=('\\n\\n', 'Question:'), n=1, seed=None)
    """
    known = {"until", "max_gen_toks", "do_sample", "temperature", "top_p", "top_k"}
    unknown = set(kwargs) - known
    if unknown:
        raise ConfigError(f"lm-eval generation_kwargs {', '.join(sorted(unknown))}: not supported by the evalkit "
                          f"bridge; supported: {', '.join(sorted(known))}")
    until = kwargs.get("until") or ()
    stop = (until,) if isinstance(until, str) else tuple(str(s) for s in until)
    temperature = float(kwargs.get("temperature", 0.0) or 0.0)
    sampled = bool(kwargs["do_sample"]) if "do_sample" in kwargs else temperature > 0
    if sampled and temperature <= 0:
        temperature = 1.0  # do_sample without a temperature: the sampler's default
    top_k = kwargs.get("top_k")
    top_p = kwargs.get("top_p")
    return GenConfig(temperature=temperature if sampled else 0.0,
                     top_k=int(top_k) if top_k is not None else None,
                     top_p=float(top_p) if top_p is not None else None,
                     max_tokens=int(kwargs.get("max_gen_toks", _DEFAULT_MAX_GEN_TOKS)), stop=stop, seed=seed)


class _Served:
    """What the lm-eval `LM` does with each request type, kept apart from the lm-eval subclass (which can
    only be defined once lm-eval is imported)."""

    def __init__(self, backend: BackendBase, advance: Callable[[int], None], add_total: Callable[[int], None],
                 chat: bool) -> None:
        self.backend, self.advance, self.add_total, self.chat = backend, advance, add_total, chat

    def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
        self.add_total(len(requests))
        results = self.backend.loglikelihood([LoglikelihoodRequest(str(r.args[0]), str(r.args[1])) for r in requests])
        self.advance(len(requests))
        return [(float(r.logprob), bool(r.is_greedy)) for r in results]

    def loglikelihood_rolling(self, requests: list[Any]) -> list[float]:
        self.add_total(len(requests))
        results = self.backend.loglikelihood_rolling([str(r.args[0]) for r in requests])
        self.advance(len(requests))
        return [r.total for r in results]

    def generate_until(self, requests: list[Any]) -> list[str]:
        self.add_total(len(requests))
        groups: dict[GenConfig, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(gen_config(dict(r.args[1] or {})), []).append(i)
        out = [""] * len(requests)
        for config, indices in groups.items():
            prompts = [str(requests[i].args[0]) for i in indices]
            for i, completion in zip(indices, _continue(self.backend, prompts, config, self.chat)):
                out[i] = completion
            self.advance(len(indices))
        return out

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool) -> str:
        if not self.backend.can_render_chat:
            raise ConfigError(f"lm-eval apply_chat_template: backend {self.backend.identity.backend} cannot "
                              f"render a chat template; run without apply_chat_template")
        conversation = tuple(Message(m["role"], m["content"]) for m in chat_history)  # type: ignore[arg-type]
        return self.backend.render_chat(conversation, add_generation_prompt=add_generation_prompt)


def backend_lm(backend: Backend | BackendBase, *, advance: Callable[[int], None] = lambda n: None,
               add_total: Callable[[int], None] = lambda n: None, chat: bool = False) -> Any:
    """Build an `lm_eval.api.model.LM` around `backend`.

    Args:
        backend: any evalkit backend (usually the runner's cached one).
        advance: called with the number of requests finished after each call (progress bar).
        add_total: called with the number of requests of each call before it runs.
        chat: serve `generate_until` with `generate` (the prompt as one user message, through the backend's
            chat template or a chat API) even when the backend can continue raw text.

    Raises:
        MissingDependency: lm-eval is not installed.
    """
    try:
        from lm_eval.api.model import LM
    except ImportError:
        raise MissingDependency("the lm-eval bridge", "lmeval", "lm_eval") from None
    served = _Served(as_base_backend(backend), advance, add_total, chat)

    class EvalkitLM(LM):  # lm-eval is untyped
        """lm-eval's view of an evalkit backend."""

        def __init__(self) -> None:
            super().__init__()
            self.backend = served.backend

        def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
            return served.loglikelihood(requests)

        def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
            return served.loglikelihood_rolling(requests)

        def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
            return served.generate_until(requests)

        def apply_chat_template(self, chat_history: list[dict[str, str]],
                                add_generation_prompt: bool = True) -> str:
            return served.apply_chat_template(chat_history, add_generation_prompt)

        @property
        def tokenizer_name(self) -> str:
            return served.backend.identity.model.replace("/", "__")

        def chat_template(self, chat_template: bool | str = False) -> str:
            return served.backend.identity.cache_key() if chat_template else ""

    return EvalkitLM()


def _continue(backend: BackendBase, prompts: Sequence[str], config: GenConfig, chat: bool) -> list[str]:
    if backend.can_complete and not chat:
        try:
            return [c.text for c in backend.complete(prompts, config)]
        except UnsupportedRequest:
            pass  # a chat API that refuses raw completion after all: fall through to generate
    return [c.text for c in backend.generate([(Message("user", p),) for p in prompts], config)]
