"""`evalkit cache list|prune` over a model cache and a response cache made here."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.store._cache import ResponseStore

BASE = "hf|smollm2-gguf|gguf-sha256-b179c9523d0e6a0f|dtype=float32"
TUNED = "openai|gpt-4o-mini|2024-07-18|"


@pytest.fixture()
def caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    root = tmp_path / "evalkit-cache"
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(root))
    current = root / "models" / "smollm2-gguf-gguf-sha256-b179c9523d0e6a0f"
    current.mkdir(parents=True)
    (current / "model.safetensors").write_bytes(b"\0" * 300_000)
    (current / "config.json").write_text("{}", encoding="utf-8")
    legacy = root / "models" / "smollm2-gguf-gguf-98362432-1796194227"
    legacy.mkdir()
    os.link(current / "model.safetensors", legacy / "model.safetensors")  # what adopting an old copy leaves
    tokenizer = root / "tokenizers" / "smollm2"
    tokenizer.mkdir(parents=True)
    (tokenizer / "tokenizer.json").write_bytes(b"{}" * 1000)
    db = tmp_path / "runs" / ".cache.sqlite"
    store = ResponseStore(db)
    store.put_many([(f"b{i}", "loglikelihood", BASE, [-1.5, True]) for i in range(30)])
    store.put_many([(f"t{i}", "generate", TUNED, {"text": "ok"}) for i in range(12)])
    store.close()
    with sqlite3.connect(db) as conn:  # the API answers are 90 days old
        conn.execute("UPDATE responses SET created = ? WHERE model = ?", (time.time() - 90 * 86400, TUNED))
    return {"root": root, "current": current, "legacy": legacy, "tokenizer": tokenizer, "db": db,
            "runs": tmp_path / "runs"}


def _entries(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT model, COUNT(*) FROM responses GROUP BY model").fetchall())


def test_list_shows_sizes_and_counts(caches: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "list", "--runs", str(caches["runs"])]) == 0
    out = capsys.readouterr().out
    current = next(line for line in out.splitlines() if line.endswith(caches["current"].name))
    assert current.startswith("293.0 KB") and " model " in current
    legacy = next(line for line in out.splitlines() if line.endswith(caches["legacy"].name))
    assert "(old key)" in legacy
    db_line = next(line for line in out.splitlines() if line.endswith(str(caches["db"])))
    assert " 42 " in db_line and " 2 " in db_line  # entries, models
    db_bytes = sum(p.stat().st_size for p in caches["runs"].glob(".cache.sqlite*"))
    total = 300_002 + 2000 + db_bytes  # the hard-linked weights once
    assert f"total on disk: {total / 1024:.1f} KB" in out


def test_prune_without_yes_deletes_nothing(caches: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "prune", "--all", "--runs", str(caches["runs"])]) == 0
    out = capsys.readouterr().out
    assert "would delete" in out and "add --yes" in out
    assert caches["current"].is_dir() and _entries(caches["db"]) == {BASE: 30, TUNED: 12}


def test_prune_by_model(caches: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "prune", "--model", "smollm2", "--yes", "--runs", str(caches["runs"])]) == 0
    out = capsys.readouterr().out
    assert f"deleted {caches['current']}" in out and "deleted 30 cached responses" in out
    assert not caches["current"].exists() and not caches["legacy"].exists() and not caches["tokenizer"].exists()
    assert _entries(caches["db"]) == {TUNED: 12}


def test_prune_by_age(caches: dict[str, Path]) -> None:
    assert main(["cache", "prune", "--older-than", "30", "--yes", "--runs", str(caches["runs"])]) == 0
    assert _entries(caches["db"]) == {BASE: 30}
    assert caches["current"].is_dir()  # used today


def test_prune_all_and_nothing_named(caches: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "prune"]) == 2
    assert "say what to prune" in capsys.readouterr().err
    assert main(["cache", "prune", "--all", "--yes", "--cache", str(caches["db"])]) == 0
    assert _entries(caches["db"]) == {}
    assert not list((caches["root"] / "models").iterdir())
