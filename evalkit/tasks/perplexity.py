"""Perplexity tasks: corpus-level token, word, character and byte perplexity and bits per byte.

All are ratios over the whole corpus, exp(-Σ log p / Σ units), as lm-eval aggregates them. Windows have the
model's max length; `stride` (task arg or YAML) below the max length gives each window left context.

The headline unit follows the script: words for text with spaces, characters for Chinese/Japanese text
(where whitespace-split "words" are whole paragraphs and word perplexity overflows). `language: auto` (and
any file given with `--task-args path=`) picks it by the share of CJK characters. A metric that cannot be
computed (overflow, nothing to count) is null, with a note in info["metric_notes"]; it never fails the task.
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
from evalkit.tasks._data import DataSource, check_data_dir, read_text_file, read_text_source
from evalkit.tasks._kind import RunContext, SampleSink, TaskOutcome
from evalkit.tasks._spec import TaskSpecBase

__all__ = ["PerplexitySpec", "cjk_share", "count_words", "headline_unit", "run", "split_documents",
           "wikitext_detokenize"]

_TASK_ARGS = {"path", "stride", "documents"}
Splitter = Literal["wikitext_articles", "lines", "paragraphs", "file"]


class PerplexitySpec(TaskSpecBase):
    """A text corpus scored with rolling loglikelihood windows."""

    kind: Literal["perplexity"]
    data: DataSource
    documents: Splitter = "file"
    detokenizer: Literal["none", "wikitext"] = "none"
    count_units_on: Literal["raw", "scored"] = "scored"
    language: Literal["en", "zh", "auto"] = "auto"  # en: word perplexity; zh: character perplexity
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


_CJK_RANGES = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F),
               (0x3000, 0x303F), (0xFF00, 0xFFEF))  # kana, Han ideographs, CJK and full-width punctuation
CJK_SHARE_FOR_CHARS = 0.3


def cjk_share(text: str) -> float:
    """Share of CJK characters (Han, kana, CJK punctuation) among the non-space characters of text.

    Examples:
        >>> cjk_share("天下大势，分久必合"), cjk_share("plain English"), round(cjk_share("GPU 显卡"), 2)
        (1.0, 0.0, 0.4)
    """
    visible = [ord(c) for c in text if not c.isspace()]
    if not visible:
        return 0.0
    return sum(1 for o in visible if any(lo <= o <= hi for lo, hi in _CJK_RANGES)) / len(visible)


def headline_unit(language: str, texts: list[str]) -> tuple[str, float]:
    """("chars" or "words", CJK share): characters for CJK text, words otherwise (or as `language` says)."""
    sample = "".join(texts)[:200_000]
    share = cjk_share(sample)
    if language == "auto":
        return ("chars" if share >= CJK_SHARE_FOR_CHARS else "words"), share
    return ("chars" if language == "zh" else "words"), share


def _load_corpus(spec: PerplexitySpec, ctx: RunContext) -> tuple[list[tuple[str, str]], str, str]:
    """(subset name, text) pairs, origin, location. `data.local` may be a glob over several files."""
    path_arg = ctx.task_args.get("path")
    source = spec.data
    local = source.local
    if not path_arg and local and any(ch in local for ch in "*?["):
        if ctx.data_dir is not None:
            files = sorted(ctx.data_dir.glob(local))
            if files:
                texts = [(f.stem, read_text_file(f, encoding=source.encoding, warn=ctx.warn,
                                                 record_file=ctx.record_file)) for f in files]
                return texts, "local", str(ctx.data_dir / local)
        source = source.model_copy(update={"local": None})
    text, origin, location = read_text_source(source, ctx.data_dir, path_arg, task=spec.name, warn=ctx.warn,
                                              record_file=ctx.record_file)
    return [(Path(location).stem, text)], origin, location


def _documents(spec: PerplexitySpec, ctx: RunContext) -> tuple[list[tuple[str, int, str]], str, str, str]:
    """(subset, index, text) of every document to score, the origin, the location and the split rule."""
    unknown = set(ctx.task_args) - _TASK_ARGS
    if unknown:
        raise ConfigError(f"--task-args {', '.join(sorted(unknown))}: not an option of {spec.name}; "
                          f"known: {', '.join(sorted(_TASK_ARGS))}")
    how = ctx.task_args.get("documents", spec.documents)
    if how not in ("wikitext_articles", "lines", "paragraphs", "file"):
        raise ConfigError(f"--task-args documents={how}: use wikitext_articles, lines, paragraphs or file")
    if ctx.data_dir is not None:
        check_data_dir(ctx.data_dir)
    corpus, origin, location = _load_corpus(spec, ctx)
    docs: list[tuple[str, int, str]] = []
    for subset, text in corpus:
        for index, doc in enumerate(split_documents(text, how)):  # type: ignore[arg-type]
            docs.append((subset, index, doc))
    if not docs:
        raise DataError(f"{location}: no text to score (the file is empty or blank); give a file with text")
    return (docs[:ctx.limit] if ctx.limit is not None else docs), origin, location, how


def run(spec: PerplexitySpec, backend: Backend, ctx: RunContext, sink: SampleSink) -> TaskOutcome:
    """Score each document with rolling windows and report corpus-level ratios."""
    stride = int(ctx.task_args["stride"]) if "stride" in ctx.task_args else spec.stride
    docs, origin, location, how = _documents(spec, ctx)
    if origin == "demo":
        looked = f" (looked for {ctx.data_dir / spec.data.local})" if ctx.data_dir and spec.data.local else ""
        ctx.warn(f"{spec.name}: using evalkit's DEMO text (original, not the real corpus){looked}; pass --data-dir "
                 f"DIR holding {spec.data.local or 'the corpus'}")
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
    language = "auto" if origin == "file" else spec.language  # a user's own file: judge it by its script
    unit, share = headline_unit(language, scored_texts)
    outcome = _outcome(totals, len(docs), unit)
    outcome.info.update({"data_origin": origin, "data_location": location, "stride": stride, "documents": how,
                         "unit": unit, "cjk_share": round(share, 4)})
    return outcome


def _outcome(totals: dict[str, Any], n: int, unit: str) -> TaskOutcome:
    """Corpus metrics; one that cannot be computed is None (null in results.json) with a note saying why."""
    ll = totals["logprob"]
    units = {"token_perplexity": totals["tokens"], "byte_perplexity": totals["bytes"],
             "char_perplexity" if unit == "chars" else "word_perplexity": totals[unit]}
    metrics: dict[str, float | None] = {name: corpus_perplexity(ll, count) for name, count in units.items()}
    metrics["bits_per_byte"] = -ll / totals["bytes"] / math.log(2) if totals["bytes"] else None
    notes: dict[str, str] = {}  # metric -> why it is null (the run record's Metric.note)
    for name, value in metrics.items():
        if value is None:
            count = totals["bytes"] if name == "bits_per_byte" else units[name]
            why = "no units to count" if not count else "overflows a float (exp of a huge loss per unit)"
            notes[name] = f"{name} is null: {why}; total logprob {ll:.1f} over {count} units"
    info: dict[str, Any] = {"higher_is_better": False, **{f"total_{k}": v for k, v in totals.items()}}
    if notes:
        info["metric_notes"] = notes
    return TaskOutcome(metrics=metrics, n=n, info=info)
