"""Do a server's echoed prompt logprobs mean what they say? A pure comparison, no I/O.

The server first GENERATES a few tokens greedily, one request per token (`max_tokens: 1`, `logprobs`): for
each it reports the token's logprob and the top alternatives of that position's distribution, and (usage) how
many tokens the prompt had. Then it ECHOES the seed plus those tokens (`echo: true`, what loglikelihood scoring
reads). A correct server reports each echoed token with the logprob it reported when generating it.
Positions are compared only where the echo tokenised the text as the generation requests did (the token
starts at the same character, has the same text, and has the same number of tokens before it, up to a
constant such as a BOS token). Hypotheses compared, each on every position where both are known:

- aligned: echoed[j] == generated[j];
- shifted by k = +1 / -1: echoed[j] == generated[j + k] (with +1 each token carries the NEXT token's logprob,
  i.e. the next position's value; a constant shift can be undone, see `realign`);
- next-distribution: echoed[j] == the logprob of token j under position j+1's distribution (the logits were
  read one position late); the true values are not in the reply, so this cannot be undone.

Examples:
    >>> gen = [Generated("a", 3, -1.0, {"a": -1.0}, 1), Generated("b", 4, -2.5, {"b": -2.5}, 2),
    ...        Generated("c", 5, -0.3, {"c": -0.3}, 3), Generated("d", 6, -4.0, {"d": -4.0}, 4)]
    >>> echo = {"logprobs": {"tokens": ["xyz", "a", "b", "c", "d"], "text_offset": [0, 3, 4, 5, 6],
    ...                      "token_logprobs": [None, -1.0, -2.5, -0.3, -4.0]}}
    >>> judge_alignment(gen, echo).verdict
    'aligned'
    >>> echo["logprobs"]["token_logprobs"] = [-1.0, -2.5, -0.3, -4.0, None]  # each token got the next's value
    >>> found = judge_alignment(gen, echo)
    >>> found.verdict, found.shift
    ('shifted', 1)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Alignment", "Generated", "echo_arrays", "generated_step", "judge_alignment", "offsets_problem"]

MIN_POSITIONS = 3  # fewer compared positions than this proves nothing
VERDICTS = ("aligned", "shifted", "next-distribution", "misaligned", "inconclusive", "no-echo", "unverifiable")


@dataclass(frozen=True)
class Generated:
    """One generated token: its text, character offset (the length of its prompt), logprob, alternatives, and
    the server's count of prompt tokens (None when it reports no usage)."""

    text: str
    offset: int
    logprob: float
    top: dict[str, float]
    prompt_tokens: int | None = None


@dataclass(frozen=True)
class Alignment:
    """The verdict on a server's echoed prompt logprobs.

    `verdict` is one of "aligned", "shifted" (by `shift` positions, exactly and consistently: correctable),
    "next-distribution", "misaligned", "inconclusive", "no-echo" (the server echoes no prompt logprobs) or
    "unverifiable" (its generated tokens carry no logprobs to compare with). `positions` counts the compared
    positions, `max_error` the largest |echoed - generated| under the aligned hypothesis.
    """

    verdict: str
    shift: int = 0
    positions: int = 0
    max_error: float | None = None
    detail: str = ""

    @property
    def trusted(self) -> bool:
        """Whether loglikelihood scores read from this server's echo can be used (after re-alignment)."""
        return self.verdict in ("aligned", "shifted")

    def direction(self) -> str:
        """The shift in words, for messages."""
        if self.shift > 0:
            return f"shifted by +{self.shift}: each token carries the logprob of the token {self.shift} later"
        if self.shift < 0:
            return f"shifted by {self.shift}: each token carries the logprob of the token {-self.shift} earlier"
        return "aligned"

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON (the verdict cache)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alignment:
        """Inverse of `as_dict`; raises ValueError on an unknown verdict."""
        if data.get("verdict") not in VERDICTS:
            raise ValueError(f"unknown verdict {data.get('verdict')!r}")
        return cls(str(data["verdict"]), int(data.get("shift") or 0), int(data.get("positions") or 0),
                   None if data.get("max_error") is None else float(data["max_error"]), str(data.get("detail", "")))


def generated_step(data: dict[str, Any], prompt_len: int) -> Generated | None:
    """The first generated token of a completions reply (echo off), or None when it has no logprob or is not
    plain text (a byte piece of a character, an end-of-text token).

    Examples:
        >>> reply = {"choices": [{"text": " Paris", "logprobs": {"tokens": [" Paris"], "token_logprobs": [-0.1],
        ...          "top_logprobs": [{" Paris": -0.1, " Lyon": -3.2}]}}], "usage": {"prompt_tokens": 5}}
        >>> generated_step(reply, 20)
        Generated(text=' Paris', offset=20, logprob=-0.1, top={' Paris': -0.1, ' Lyon': -3.2}, prompt_tokens=5)
    """
    choice = min(data["choices"], key=lambda c: int(c.get("index", 0)))
    lp = choice.get("logprobs")
    if not isinstance(lp, dict) or not lp.get("tokens") or not lp.get("token_logprobs"):
        return None
    token, logprob = str(lp["tokens"][0]), lp["token_logprobs"][0]
    if logprob is None or not token or not str(choice.get("text") or "").startswith(token):
        return None
    tops = lp.get("top_logprobs") or [None]
    top = tops[0] if isinstance(tops[0], dict) else {}
    usage = data.get("usage")
    count = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return Generated(token, prompt_len, float(logprob), {str(k): float(v) for k, v in top.items()},
                     int(count) if isinstance(count, int) and count > 0 else None)


def echo_arrays(choice: dict[str, Any]) -> tuple[list[str], list[float | None], list[int], list[Any]] | None:
    """Tokens, logprobs, offsets and top alternatives of an echoed reply; None when it has no logprobs."""
    lp = choice.get("logprobs")
    if not isinstance(lp, dict) or not lp.get("tokens") or not isinstance(lp.get("token_logprobs"), list):
        return None
    tokens = [str(t) for t in lp["tokens"]]
    values = [None if v is None else float(v) for v in lp["token_logprobs"]]
    offsets = lp.get("text_offset")
    if not isinstance(offsets, list) or len(offsets) != len(tokens):
        offsets, pos = [], 0
        for token in tokens:
            offsets.append(pos)
            pos += len(token)
    tops = lp.get("top_logprobs")
    tops = tops if isinstance(tops, list) and len(tops) == len(tokens) else [None] * len(tokens)
    return tokens, values[:len(tokens)] + [None] * (len(tokens) - len(values)), [int(o) for o in offsets], tops


@dataclass
class _Tally:
    checks: int = 0
    mismatches: int = 0
    max_error: float = 0.0

    def add(self, got: float, want: float, tolerance: Callable[[float], float]) -> None:
        error = abs(got - want)
        self.checks += 1
        self.max_error = max(self.max_error, error)
        if error > tolerance(want):
            self.mismatches += 1

    def holds(self, minimum: int = MIN_POSITIONS) -> bool:
        return self.checks >= minimum and self.mismatches == 0


def judge_alignment(generated: Sequence[Generated], echo: dict[str, Any], *, tol_abs: float = 0.05,
                    tol_rel: float = 0.02) -> Alignment:
    """Compare an echoed reply of prompt + `generated` text with the generated tokens' logprobs.

    Args:
        generated: the tokens the server generated greedily, with offsets into the echoed text.
        echo: the echoed completions choice (`echo: true`, `logprobs` on).
        tol_abs, tol_rel: two logprobs agree when they differ by at most tol_abs + tol_rel * |value|
            (generation and prompt scoring run different kernels; bf16 servers differ in the 2nd decimal).
    """
    arrays = echo_arrays(echo)
    if arrays is None:
        return Alignment("no-echo", detail="the echoed reply carries no prompt logprobs")
    tokens, values, offsets, _ = arrays
    truth = _matched(generated, tokens, offsets)

    def tolerance(value: float) -> float:
        return tol_abs + tol_rel * abs(value)

    def shifted(k: int) -> _Tally:
        tally = _Tally()
        for j, value in enumerate(values):
            if value is not None and j + k in truth:
                tally.add(value, truth[j + k].logprob, tolerance)
        return tally

    def distinct(k: int) -> int:  # positions where the hypotheses k and 0 predict different values
        return sum(1 for j, g in truth.items() if j + k in truth
                   and abs(g.logprob - truth[j + k].logprob) > 2 * tolerance(g.logprob))

    aligned = shifted(0)
    facts: dict[str, Any] = {"positions": aligned.checks, "max_error": round(aligned.max_error, 6)}
    if aligned.checks < MIN_POSITIONS:
        return Alignment("inconclusive", **facts,
                         detail=f"only {aligned.checks} generated token(s) could be found among the echoed tokens")
    if aligned.holds():
        weak = not any(distinct(k) for k in (1, -1))
        return Alignment("aligned", **facts,
                         detail="values too uniform to rule out a shift" if weak else "")
    candidates = [k for k in (1, -1) if shifted(k).holds() and distinct(k) >= 2]
    if len(candidates) == 1:
        k = candidates[0]
        return Alignment("shifted", k, **facts,
                         detail=f"echoed logprobs match the generated ones {k:+d} position(s) away at "
                                f"{shifted(k).checks} of {shifted(k).checks} positions")
    late = _Tally()
    for j, value in enumerate(values):
        if value is not None and j + 1 in truth and tokens[j] in truth[j + 1].top:
            late.add(value, truth[j + 1].top[tokens[j]], tolerance)
    if late.holds(2):
        return Alignment("next-distribution", 1, **facts,
                         detail="each token's logprob is read from the next position's distribution")
    if aligned.mismatches <= aligned.checks // 5:  # an odd position (kernel noise, a re-tokenised boundary)
        return Alignment("aligned", **facts,
                         detail=f"{aligned.mismatches} of {aligned.checks} positions differ")
    return Alignment("misaligned", **facts,
                     detail=f"{aligned.mismatches} of {aligned.checks} echoed logprobs differ from the generated "
                            f"ones (max |difference| {aligned.max_error:.3g}) and no constant shift explains it")


def _matched(generated: Sequence[Generated], tokens: list[str], offsets: list[int]) -> dict[int, Generated]:
    """Echo position -> the generated token it repeats, where the echo tokenised the text the same way."""
    where = {(off, tok): j for j, (tok, off) in enumerate(zip(tokens, offsets))}
    pairs = [(where[(g.offset, g.text)], g) for g in generated if (g.offset, g.text) in where]
    gaps = Counter(j - g.prompt_tokens for j, g in pairs if g.prompt_tokens is not None)
    if not gaps:
        return dict(pairs)
    usual = gaps.most_common(1)[0][0]  # tokens before it in the echo minus in its own request (BOS, ...)
    return {j: g for j, g in pairs if g.prompt_tokens is None or j - g.prompt_tokens == usual}


def offsets_problem(echo: dict[str, Any], text: str) -> str | None:
    """None when the echoed tokens' `text_offset` cover `text` (each token at its offset, in order, from 0
    to the end); else what is wrong, in a few words."""
    lp = echo.get("logprobs")
    if not isinstance(lp, dict) or not lp.get("tokens"):
        return "no echoed tokens"
    offsets = lp.get("text_offset")
    tokens = [str(t) for t in lp["tokens"]]
    if not isinstance(offsets, list) or len(offsets) != len(tokens):
        return "text_offset is missing or has a different length than tokens"
    pos = 0
    for j, (token, offset) in enumerate(zip(tokens, offsets)):
        if int(offset) >= len(text):
            break  # tokens generated after the prompt
        if int(offset) != pos:
            return f"token {j} ({token!r}) is at offset {offset}, expected {pos}"
        if not text.startswith(token, pos) and token:
            return f"token {j} ({token!r}) does not match the text at offset {pos}"
        pos += len(token)
    return None if pos >= len(text) else f"the tokens cover {pos} of {len(text)} characters"
