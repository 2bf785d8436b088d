"""Stop strings: where generated text (or a sequence of generated tokens) ends."""

from __future__ import annotations

from collections.abc import Sequence

from evalkit.types import TokenChoice

__all__ = ["cut_at_stop", "cut_choices_at_stop"]


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """The text before the earliest stop string, and whether one was found.

    Examples:
        >>> cut_at_stop("Good. Rating: [[7]]", ("[[",))
        ('Good. Rating: ', True)
    """
    cut = len(text)
    for stop in stops:
        if stop and stop in text:
            cut = min(cut, text.index(stop))
    return text[:cut], cut < len(text)


def cut_choices_at_stop(choices: tuple[TokenChoice, ...], stops: Sequence[str]) -> tuple[TokenChoice, ...]:
    """Drop the tokens from the first stop string on (a token the stop starts inside keeps its head).

    Examples:
        >>> toks = tuple(TokenChoice(t, -0.1) for t in ["Ok", " [", "[7", "]]"])
        >>> [c.text for c in cut_choices_at_stop(toks, ("[[",))]
        ['Ok', ' ']
    """
    text = "".join(c.text for c in choices)
    cut, stopped = cut_at_stop(text, stops)
    if not stopped:
        return choices
    kept, pos = [], 0
    for choice in choices:
        if pos >= len(cut):
            break
        if pos + len(choice.text) > len(cut):
            choice = TokenChoice(choice.text[:len(cut) - pos], choice.logprob, choice.top)
        kept.append(choice)
        pos += len(choice.text)
    return tuple(kept)
