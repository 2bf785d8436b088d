"""The converted safetensors copy of the embedded GGUF is keyed by the file's content, not by where it lies."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from evalkit.backends import _hf_load


@pytest.fixture()
def fake_gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """A stand-in GGUF file and a conversion that only writes the files a converted folder has (counted)."""
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "cache"))
    state: dict[str, object] = {"file": tmp_path / "site-a" / "model.gguf", "conversions": 0}
    Path(state["file"]).parent.mkdir()  # type: ignore[arg-type]
    Path(state["file"]).write_bytes(b"GGUF" + bytes(range(256)) * 64)  # type: ignore[arg-type]

    def convert(gguf: Path, target: Path) -> None:
        state["conversions"] = int(state["conversions"]) + 1  # type: ignore[call-overload]
        target.mkdir(parents=True)
        (target / "config.json").write_text("{}", encoding="utf-8")
        (target / "model.safetensors").write_bytes(gguf.read_bytes())

    monkeypatch.setattr(_hf_load, "_package_file", lambda package, filename: Path(state["file"]))  # type: ignore[arg-type]
    monkeypatch.setattr(_hf_load, "_convert_gguf", convert)
    monkeypatch.setattr(_hf_load.importlib.util, "find_spec", lambda name: object())
    return state


def test_a_fresh_install_of_the_same_file_reuses_the_conversion(fake_gguf: dict[str, object], tmp_path: Path) -> None:
    first, revision = _hf_load._gguf_to_cache("smollm2-gguf")
    digest = hashlib.sha256(Path(fake_gguf["file"]).read_bytes()).hexdigest()  # type: ignore[arg-type]
    assert revision == f"gguf-sha256-{digest[:16]}" and first.name == f"smollm2-gguf-{revision}"
    # a reinstall: same bytes, another folder, another mtime
    again = tmp_path / "site-b" / "model.gguf"
    again.parent.mkdir()
    again.write_bytes(Path(fake_gguf["file"]).read_bytes())  # type: ignore[arg-type]
    os.utime(again, (1_000_000, 1_000_000))
    fake_gguf["file"] = again
    second, revision_again = _hf_load._gguf_to_cache("smollm2-gguf")
    assert (second, revision_again) == (first, revision)
    assert fake_gguf["conversions"] == 1
    assert len(list((tmp_path / "cache" / "models").iterdir())) == 1


def test_other_content_converts_again(fake_gguf: dict[str, object]) -> None:
    first, _ = _hf_load._gguf_to_cache("smollm2-gguf")
    Path(fake_gguf["file"]).write_bytes(b"GGUF other weights")  # type: ignore[arg-type]
    second, _ = _hf_load._gguf_to_cache("smollm2-gguf")
    assert second != first and fake_gguf["conversions"] == 2


def test_the_hash_is_remembered_until_the_file_changes(fake_gguf: dict[str, object], tmp_path: Path) -> None:
    path = Path(fake_gguf["file"])  # type: ignore[arg-type]
    digest = _hf_load._file_sha256(path)
    sidecar = tmp_path / "cache" / "file-hashes.json"
    known = json.loads(sidecar.read_text(encoding="utf-8"))
    stat = path.stat()
    assert known[str(path.resolve())] == {"stamp": [stat.st_size, stat.st_mtime_ns, stat.st_ino], "sha256": digest}
    known[str(path.resolve())]["sha256"] = "f" * 64  # what is remembered is used: the file is not read again
    sidecar.write_text(json.dumps(known), encoding="utf-8")
    assert _hf_load._file_sha256(path) == "f" * 64
    os.utime(path, (2_000_000, 2_000_000))  # touched: hashed again
    assert _hf_load._file_sha256(path) == digest


def test_a_conversion_under_the_old_size_mtime_name_is_adopted_without_copying(fake_gguf: dict[str, object],
                                                                               tmp_path: Path) -> None:
    path = Path(fake_gguf["file"])  # type: ignore[arg-type]
    stat = path.stat()
    legacy = tmp_path / "cache" / "models" / f"smollm2-gguf-gguf-{stat.st_size}-{int(stat.st_mtime)}"
    legacy.mkdir(parents=True)
    (legacy / "config.json").write_text("{}", encoding="utf-8")
    (legacy / "model.safetensors").write_bytes(b"converted before")
    folder, _ = _hf_load._gguf_to_cache("smollm2-gguf")
    assert fake_gguf["conversions"] == 0
    assert (folder / "model.safetensors").read_bytes() == b"converted before"
    assert (folder / "model.safetensors").stat().st_ino == (legacy / "model.safetensors").stat().st_ino  # a hard link
    assert legacy.is_dir()  # left for a process that may still read it; `evalkit cache prune` removes it
