"""Perplexity tasks: corpus-level token, word, character and byte perplexity and bits per byte.

All are ratios over the whole corpus, exp(-Σ log p / Σ units), as lm-eval aggregates them. Windows have the
model's max length; `stride` (task arg or YAML) below the max length gives each window left context.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from evalkit.backends._protocol import Backend
from evalkit.errors import ConfigError, DataError
from evalkit.metrics import corpus_perplexity
from evalkit.tasks._data import DataSource, read_text_source
from evalkit.tasks._kind import RunContext, SampleSink, TaskOutcome
from evalkit.tasks._spec import TaskSpecBase

__all__ = ["PerplexitySpec", "count_words", "run", "split_documents", "wikitext_detokenize"]

_TASK_ARGS = {"path", "stride", "documents"}
Splitter = Literal["wikitext_articles", "lines", "paragraphs", "file"]


class PerplexitySpec(TaskSpecBase):
    """A text corpus scored with rolling loglikelihood windows."""

    kind: Literal["perplexity"]
    data: DataSource
    documents: Splitter = "file"
    detokenizer: Literal["none", "wikitext"] = "none"
    count_units_on: Literal["raw", "scored"] = "scored"
    language: Literal["en", "zh"] = "en"
    stride: int | None = Field(default=None, ge=1)


def wikitext_detokenize(text: str) -> str:
    """Undo WikiText's tokenisation (" @-@ ", spaced punctuation, "= =" headings), as lm-eval's wikitext task."""
    s = text.replace("s '", "s'")
    s = re.sub(r"/' [0-9]/", r"/'[0-9]/", s)
    for spaced, joined in ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), (" : ", ": "), (" ; ", "; "),
                           (" . ", ". "), (" ! ", "! "), (" ? ", "? "), (" , ", ", ")):
        s = s.replace(spaced, joined)
    s = re.sub(r"\(\s*([^\)]*?)\s*\)", r"(\1)", s)
    s = re.sub(r"\[\s*([^\]]*?)\s*\]", r"[\1]", s)
    s = re.sub(r"{\s*([^}]*?)\s*}", r"{\1}", s)
    s = re.sub(r"\"\s*([^\"]*?)\s*\"", r'"\1"', s)
    s = re.sub(r"'\s*([^']*?)\s*'", r"'\1'", s)
    for spaced, joined in (("= = = =", "===="), ("= = =", "==="), ("= =", "=="), (" \u00b0 ", "\u00b0"),
                           (" \n", "\n"), ("\n ", "\n"), (" N ", " 1 "), (" 's", "'s")):
        s = s.replace(spaced, joined)
    return s


_ARTICLE = re.compile(r"^ = [^=].* = $")


def split_documents(text: str, how: Splitter) -> list[str]:
    """Split a corpus into documents: WikiText articles (top-level " = Title = " lines), lines, blank-line
    paragraphs, or the whole file."""
    text = text.replace("\r\n", "\n")
    if how == "file":
        return [text] if text.strip() else []
    if how == "lines":
        return [line for line in text.split("\n") if line.strip()]
    if how == "paragraphs":
        return [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    docs: list[list[str]] = []
    for line in text.split("\n"):
        if _ARTICLE.match(line) or not docs:
            docs.append([])
        if line.strip():
            docs[-1].append(line)
    return ["\n".join(lines) for lines in docs if lines]


def count_words(text: str) -> int:
    """Words as lm-eval counts them: len(re.split(r"\\s+", text)) (a leading space adds one empty word)."""
    return len(re.split(r"\s+", text))


def _chars(text: str) -> int:
    return sum(1 for c in text if not c.isspace())


def _load_corpus(spec: PerplexitySpec, ctx: RunContext) -> tuple[list[tuple[str, str]], str, str]:
    """(subset name, text) pairs, origin, location. `data.local` may be a glob over several files."""
    path_arg = ctx.task_args.get("path")
    source = spec.data
    local = source.local
    if not path_arg and local and any(ch in local for ch in "*?["):
        if ctx.data_dir is not None:
            files = sorted(ctx.data_dir.glob(local))
            if files:
                return [(f.stem, f.read_text(encoding="utf-8-sig")) for f in files], "local", str(ctx.data_dir / local)
        source = source.model_copy(update={"local": None})
    text, origin, location = read_text_source(source, ctx.data_dir, path_arg)
    return [(Path(location).stem, text)], origin, location


def run(spec: PerplexitySpec, backend: Backend, ctx: RunContext, sink: SampleSink) -> TaskOutcome:
    """Score each document with rolling windows and report corpus-level ratios."""
    unknown = set(ctx.task_args) - _TASK_ARGS
    if unknown:
        raise ConfigError(f"--task-args {', '.join(sorted(unknown))}: not an option of {spec.name}; "
                          f"known: {', '.join(sorted(_TASK_ARGS))}")
    how = ctx.task_args.get("documents", spec.documents)
    if how not in ("wikitext_articles", "lines", "paragraphs", "file"):
        raise ConfigError(f"--task-args documents={how}: use wikitext_articles, lines, paragraphs or file")
    stride = int(ctx.task_args["stride"]) if "stride" in ctx.task_args else spec.stride
    corpus, origin, location = _load_corpus(spec, ctx)
    docs: list[tuple[str, int, str]] = []
    for subset, text in corpus:
        for index, doc in enumerate(split_documents(text, how)):  # type: ignore[arg-type]
            docs.append((subset, index, doc))
    if ctx.limit is not None:
        docs = docs[:ctx.limit]
    if not docs:
        raise DataError(f"{location}: no text to score (empty file?)")
    if origin == "demo":
        ctx.warn(f"{spec.name}: using evalkit's DEMO text (original, not the real corpus); pass --data-dir")
    ctx.set_total(len(docs))
    scored_texts = [wikitext_detokenize(d) if spec.detokenizer == "wikitext" else d for _, _, d in docs]
    totals = {"logprob": 0.0, "tokens": 0, "words": 0, "chars": 0, "bytes": 0, "windows": 0}
    batch = 8
    for start in range(0, len(docs), batch):
        chunk = scored_texts[start:start + batch]
        results = backend.loglikelihood_rolling(chunk, stride=stride)
        samples = []
        for offset, (res, scored) in enumerate(zip(results, chunk)):
            subset, index, raw = docs[start + offset]
            counted = raw if spec.count_units_on == "raw" else scored
            units = {"words": count_words(counted), "chars": _chars(counted), "bytes": len(counted.encode("utf-8"))}
            totals["logprob"] += res.total
            totals["tokens"] += res.num_tokens
            totals["windows"] += res.windows
            for key, value in units.items():
                totals[key] += value
            samples.append({"id": f"{subset}/{index}", "subset": subset, "doc_index": index,
                            "prompt": scored[:300], "target": None, "logprob": res.total, "tokens": res.num_tokens,
                            "windows": res.windows, **units,
                            "token_perplexity": corpus_perplexity(res.total, res.num_tokens)})
        sink.write(samples)
        ctx.advance(len(samples))
    return _outcome(spec, totals, len(docs), origin, location, stride, how)


def _outcome(spec: PerplexitySpec, totals: dict[str, Any], n: int, origin: str, location: str,
             stride: int | None, how: str) -> TaskOutcome:
    ll = totals["logprob"]
    metrics = {"token_perplexity": corpus_perplexity(ll, totals["tokens"]),
               "byte_perplexity": corpus_perplexity(ll, totals["bytes"]),
               "bits_per_byte": -ll / totals["bytes"] / math.log(2) if totals["bytes"] else math.nan}
    if spec.language == "zh":
        metrics["char_perplexity"] = corpus_perplexity(ll, totals["chars"])
    else:
        metrics["word_perplexity"] = corpus_perplexity(ll, totals["words"])
    info = {"data_origin": origin, "data_location": location, "stride": stride, "higher_is_better": False, "documents": how, **{f"total_{k}": v for k, v in totals.items()}}
    return TaskOutcome(metrics=metrics, n=n, info=info)
