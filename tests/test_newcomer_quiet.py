"""Other libraries' chatter goes to a log file (evalkit._quiet); --verbose / EVALKIT_VERBOSE brings it back."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

import pytest

from evalkit._quiet import quiet_libraries


def test_library_logging_goes_to_the_log_only(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "run" / "log.txt"
    stderr_handler = logging.StreamHandler(sys.stderr)
    library = logging.getLogger("transformers")
    library.addHandler(stderr_handler)
    try:
        with quiet_libraries(log, verbose=False):
            logging.getLogger("transformers.modeling_utils").warning("Loading weights")
        assert "Loading weights" not in capfd.readouterr().err
        assert "[transformers.modeling_utils] Loading weights" in log.read_text(encoding="utf-8")
        assert stderr_handler in library.handlers  # put back afterwards
        logging.getLogger("transformers.modeling_utils").warning("after the block")
        assert "after the block" in capfd.readouterr().err
    finally:
        library.removeHandler(stderr_handler)


def test_a_handler_a_library_installs_inside_is_held_back(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "log.txt"
    late = logging.StreamHandler(sys.stderr)  # what transformers does when it is first imported
    with quiet_libraries(log, verbose=False):
        logging.getLogger("datasets").addHandler(late)
        logging.getLogger("datasets.builder").warning("Generating val split")
    assert "Generating" not in capfd.readouterr().err
    assert "Generating val split" in log.read_text(encoding="utf-8")
    assert late in logging.getLogger("datasets").handlers
    logging.getLogger("datasets").removeHandler(late)


def test_foreign_warnings_go_to_the_log_and_evalkits_own_still_show(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    own_file = str(Path(__file__).resolve().parents[1] / "evalkit" / "store" / "_cache.py")
    with warnings.catch_warnings(record=True) as shown, quiet_libraries(log, verbose=False):
        warnings.warn_explicit("`past_key_values` will be removed", FutureWarning, "transformers/x.py", 1)
        warnings.warn_explicit("cache is locked; continuing without the cache", RuntimeWarning, own_file, 10)
    assert [str(w.message) for w in shown] == ["cache is locked; continuing without the cache"]
    assert "FutureWarning: `past_key_values` will be removed" in log.read_text(encoding="utf-8")


def test_fd_level_stderr_capture_and_nesting(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "log.txt"
    with quiet_libraries(log, verbose=False):
        with quiet_libraries(capture_stderr=True):  # an inner block (model loading) writes to the outer log
            os.write(2, b"Converting and de-quantizing GGUF tensors: 100%\n")
        os.write(2, b"evalkit's own progress\n")
    err = capfd.readouterr().err
    assert "de-quantizing" not in err and "evalkit's own progress" in err
    assert "de-quantizing GGUF tensors" in log.read_text(encoding="utf-8")


def test_verbose_shows_everything(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "log.txt"
    handler = logging.StreamHandler(sys.stderr)
    logging.getLogger("accelerate").addHandler(handler)
    try:
        with quiet_libraries(log, verbose=True):
            logging.getLogger("accelerate").warning("accelerate says hi")
        monkeypatch.setenv("EVALKIT_VERBOSE", "1")
        with quiet_libraries(capture_stderr=True):
            os.write(2, b"a progress bar\n")
    finally:
        logging.getLogger("accelerate").removeHandler(handler)
    err = capfd.readouterr().err
    assert "accelerate says hi" in err and "a progress bar" in err
    assert not log.exists()


@pytest.mark.integration
def test_model_loading_is_quiet_unless_verbose(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A real transformers load: its 'Loading weights' progress bar only shows with EVALKIT_VERBOSE=1."""
    from evalkit.backends._hf_load import load_model

    folder = tmp_path / "tiny"
    tiny = load_model("tiny-random-llama", {"layers": "1"})
    tiny.model.save_pretrained(folder)
    tiny.tokenizer.save_pretrained(folder)
    capfd.readouterr()
    monkeypatch.delenv("EVALKIT_VERBOSE", raising=False)
    load_model(str(folder), {})
    assert capfd.readouterr().err == ""
    monkeypatch.setenv("EVALKIT_VERBOSE", "1")
    load_model(str(folder), {})
    assert "Loading weights" in capfd.readouterr().err


def test_evalkits_own_line_reaches_the_terminal_inside_a_capture(tmp_path: Path,
                                                                 capfd: pytest.CaptureFixture[str]) -> None:
    from evalkit._quiet import tell_user

    log = tmp_path / "log.txt"
    with quiet_libraries(log, verbose=False), quiet_libraries(capture_stderr=True):
        os.write(2, b"library chatter\n")
        tell_user("note: the hub is not reachable; running offline")
    err = capfd.readouterr().err
    assert err == "note: the hub is not reachable; running offline\n"
    assert "library chatter" in log.read_text(encoding="utf-8")
