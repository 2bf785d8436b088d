"""Token texts and stop strings: what each token spells, and where generated text (or tokens) ends."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from evalkit.types import TokenChoice

__all__ = ["cut_at_stop", "cut_choices_at_stop", "token_pieces"]


def token_pieces(decode: Callable[[Sequence[int]], str], ids: Sequence[int]) -> list[str] | None:
    """The text each token adds: the growth of the decoded prefix. A byte-level token that ends inside a
    character gets "" and the token completing the character carries it. None when a prefix's decoding does
    not extend the previous one (the tokenizer rewrites earlier text).

    Examples:
        >>> token_pieces(lambda ids: "".join(chr(i) for i in ids), [104, 105])
        ['h', 'i']
    """
    pieces, emitted = [], ""
    for i in range(1, len(ids) + 1):
        text = decode(ids[:i]).rstrip("\ufffd")
        if not text.startswith(emitted):
            return None
        pieces.append(text[len(emitted):])
        emitted = text
    return pieces


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
