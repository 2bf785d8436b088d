"""Aggregation (micro/macro with stderr) and perplexity formulas, driven by data where it helps."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from evalkit.backends._fake import FakeBackend
from evalkit.backends._hf import rolling_windows
from evalkit.metrics import aggregate_groups, corpus_perplexity, mean_stderr
from evalkit.tasks._kind import RunContext
from evalkit.tasks._spec import validate_spec
from evalkit.tasks.perplexity import count_words, split_documents, wikitext_detokenize
from evalkit.tasks.perplexity import run as run_ppl

CASES = json.loads((Path(__file__).parent / "data" / "core" / "aggregate_cases.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_group_aggregation(case: dict) -> None:
    got = aggregate_groups(case["per_subject"], case["groups"])
    assert set(got) == set(case["expected"])
    for group, expected in case["expected"].items():
        for key, value in expected.items():
            assert got[group][key] == pytest.approx(value, abs=1e-6), (group, key)


def test_stderr_matches_numpy_sample_std() -> None:
    import numpy as np

    values = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1]
    mean, se = mean_stderr(values)
    assert mean == pytest.approx(0.7)
    assert se == pytest.approx(np.std(values, ddof=1) / math.sqrt(len(values)))


def test_corpus_perplexity_is_a_ratio_of_sums_not_a_mean_of_ratios() -> None:
    docs = [(-10.0, 5), (-30.0, 5)]  # (logprob, units)
    corpus = corpus_perplexity(sum(d[0] for d in docs), sum(d[1] for d in docs))
    assert corpus == pytest.approx(math.exp(4.0))
    assert corpus != pytest.approx(sum(math.exp(-lp / n) for lp, n in docs) / 2)


def test_word_count_matches_lmeval_split_rule() -> None:
    assert count_words(" = Title = \n Text here") == len(re.split(r"\s+", " = Title = \n Text here")) == 6


def test_wikitext_detokenizer() -> None:
    raw = " = Valkyria = \n The game @-@ play 's 1 @,@ 000 units ( approx . ) ."
    assert wikitext_detokenize(raw) == " = Valkyria =\nThe game-play's 1,000 units (approx.) ."


def test_wikitext_detokenizer_equals_lmeval_on_real_articles(data_dir: Path) -> None:
    import importlib.util

    from evalkit.lmeval import lmeval_task_dir

    spec = importlib.util.spec_from_file_location("pw", lmeval_task_dir() / "wikitext" / "preprocess_wikitext.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    text = (data_dir / "wikitext2" / "wiki.test.raw").read_text(encoding="utf-8")
    for doc in split_documents(text, "wikitext_articles")[:20]:
        assert wikitext_detokenize(doc) == module.wikitext_detokenizer({"page": doc})


def test_wikitext_articles_split_on_top_level_headings_only() -> None:
    text = " = A = \r\n text a \r\n = = Sub = = \r\n more a \r\n = B = \r\n text b \r\n"
    docs = split_documents(text, "wikitext_articles")
    assert docs == [" = A = \n text a \n = = Sub = = \n more a ", " = B = \n text b "]


def _reference_windows(tokens: list[int], prefix: int, max_len: int) -> list[tuple[tuple[int, ...], int]]:
    """lm-eval's get_rolling_token_windows(context_len=1) + make_disjoint_window, expressed as model inputs."""
    from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

    out = []
    for ctx, cont in map(make_disjoint_window, get_rolling_token_windows(tokens, prefix, max_len, 1)):
        full = (list(ctx) + list(cont))[-(max_len + 1):]
        out.append((tuple(full[:-1]), len(cont)))
    return out


@pytest.mark.parametrize("n,max_len", [(1, 4), (4, 4), (5, 4), (9, 4), (23, 8), (64, 16)])
def test_disjoint_windows_equal_lmeval(n: int, max_len: int) -> None:
    tokens = list(range(100, 100 + n))
    assert rolling_windows(tokens, 1, max_len) == _reference_windows(tokens, 1, max_len)


@pytest.mark.parametrize("n,max_len,stride", [(10, 4, 2), (23, 8, 3), (5, 8, 2)])
def test_strided_windows_score_every_token_once_with_left_context(n: int, max_len: int, stride: int) -> None:
    tokens = list(range(100, 100 + n))
    seq = [1, *tokens]
    windows = rolling_windows(tokens, 1, max_len, stride)
    scored: list[int] = []
    for tokens_in, k in windows:
        assert len(tokens_in) <= max_len
        start = seq.index(tokens_in[0]) if tokens_in[0] != 1 else 0
        scored.extend(seq[start + len(tokens_in) - k + 1:start + len(tokens_in) + 1])
    assert scored == tokens
    assert all(len(w[0]) == max_len for w in windows[1:]) or n <= max_len


def test_perplexity_task_reports_corpus_ratios(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("first line of text\nsecond line here\n\n第三行中文\n", encoding="utf-8")
    spec = validate_spec({"name": "p", "kind": "perplexity", "data": {"demo": "none"}, "documents": "lines"})
    samples: list = []

    class Sink:
        def write(self, batch: list) -> None:
            samples.extend(batch)

    backend = FakeBackend()
    outcome = run_ppl(spec, backend, RunContext(task_args={"path": str(corpus)}), Sink())  # type: ignore[arg-type]
    total_ll = sum(s["logprob"] for s in samples)
    assert len(samples) == 3
    assert outcome.metrics["token_perplexity"] == pytest.approx(math.exp(-total_ll / sum(s["tokens"] for s in samples)))
    assert outcome.metrics["word_perplexity"] == pytest.approx(math.exp(-total_ll / (4 + 3 + 1)))
    nbytes = sum(len(line.encode()) for line in ["first line of text", "second line here", "第三行中文"])
    assert outcome.metrics["byte_perplexity"] == pytest.approx(math.exp(-total_ll / nbytes))
    assert outcome.metrics["bits_per_byte"] == pytest.approx(-total_ll / nbytes / math.log(2))


def test_chinese_corpus_reports_character_perplexity(data_dir: Path, tmp_path: Path) -> None:
    import json as _json

    from evalkit.runner import RunOptions, execute

    run_dir = execute(RunOptions(model="fake:echo", tasks="zh_ppl", limit=5, data_dir=data_dir, output=tmp_path,
                                 no_cache=True, quiet=True))
    task = _json.loads((run_dir / "results.json").read_text())["tasks"]["zh_ppl"]
    assert task["n"] == 5 and task["info"]["data_origin"] == "local"
    assert "char_perplexity" in task["metrics"] and "word_perplexity" not in task["metrics"]
    samples = [_json.loads(line) for line in (run_dir / "samples" / "zh_ppl.jsonl").read_text().splitlines()]
    total = sum(s["logprob"] for s in samples)
    assert task["metrics"]["char_perplexity"] == pytest.approx(math.exp(-total / sum(s["chars"] for s in samples)))
