"""Keep other libraries' chatter out of the user's terminal: into a log file, or nowhere.

transformers, datasets, huggingface_hub, accelerate and gguf print progress bars ("Loading weights",
"Converting and de-quantizing GGUF tensors"), INFO lines and FutureWarnings that say nothing about the
evaluation. Inside `quiet_libraries(...)`:

- their loggers' warnings and errors go to the log file only, INFO is dropped (a handler a library installs
  on first import, such as transformers' stderr handler, is held back until the block ends);
- their progress bars are off (huggingface_hub's switch, which transformers follows when first imported;
  `datasets` keeps its own: load datasets inside a `capture_stderr=True` block);
- `warnings` from other code go to the log; evalkit's own RuntimeWarning/UserWarning still show;
- with `capture_stderr=True`, everything written to file descriptor 2 (tqdm, C extensions) goes to the log:
  meant for a bounded step such as loading a model, never around evalkit's own progress display.

`verbose=True` changes nothing: everything shows, as without the block.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["LIBRARY_LOGGERS", "quiet_libraries", "tell_user"]

LIBRARY_LOGGERS = ("transformers", "datasets", "huggingface_hub", "accelerate", "httpx", "httpcore", "urllib3",
                   "filelock", "gguf", "torch", "fsspec", "peft")
# environment switches read by libraries when they are first imported
_QUIET_ENV = {"TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}
# (module, is-enabled, disable, enable, the environment switch a user sets to keep bars off)
_SWITCHES = (("transformers.utils.logging", "is_progress_bar_enabled", "disable_progress_bar", "enable_progress_bar",
              "HF_HUB_DISABLE_PROGRESS_BARS"),
             ("datasets.utils.logging", "is_progress_bar_enabled", "disable_progress_bar", "enable_progress_bar",
              "HF_DATASETS_DISABLE_PROGRESS_BARS"),
             ("huggingface_hub.utils", "are_progress_bars_disabled", "disable_progress_bars", "enable_progress_bars",
              "HF_HUB_DISABLE_PROGRESS_BARS"))
_EVALKIT_DIR = str(Path(__file__).resolve().parent)
_OWN_CATEGORIES = (RuntimeWarning, UserWarning)


@dataclass(frozen=True)
class _Block:
    stream: IO[str] | None  # None: verbose, nothing diverted
    verbose: bool


_ACTIVE: list[_Block] = []  # the quiet blocks open in this process, innermost last
_TERMINAL_FDS: list[int] = []  # copies of the real stderr, kept while fd 2 points at a log


def tell_user(line: str) -> None:
    """Print one line of evalkit's own on the real stderr, even inside a `capture_stderr=True` block."""
    sys.stderr.flush()
    if _TERMINAL_FDS:
        os.write(_TERMINAL_FDS[0], (line + "\n").encode("utf-8", "replace"))
    else:
        print(line, file=sys.stderr)


@contextmanager
def quiet_libraries(log_path: Path | None = None, verbose: bool | None = None, *,
                    capture_stderr: bool = False) -> Iterator[None]:
    """Send other libraries' logging, progress bars and warnings to `log_path` for the block.

    Blocks nest: an inner block without `log_path` writes to the enclosing block's log (a run's log.txt), and
    one without `verbose` takes the enclosing block's choice (outermost default: $EVALKIT_VERBOSE, else quiet).

    Args:
        log_path: file to append library output to (its folder is created); None: the enclosing block's log,
            else nowhere.
        verbose: show everything instead (the block then does nothing).
        capture_stderr: also send file descriptor 2 to the log (for a bounded loading step).

    Examples:
        >>> import logging
        >>> with quiet_libraries(None, verbose=False):
        ...     logging.getLogger("transformers.modeling_utils").warning("not shown")
    """
    outer = _ACTIVE[-1] if _ACTIVE else None
    if verbose is None:
        verbose = outer.verbose if outer else os.environ.get("EVALKIT_VERBOSE", "").lower() in ("1", "true", "yes")
    with ExitStack() as stack:
        if verbose:
            stream: IO[str] | None = None
        elif log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            stream = stack.enter_context(log_path.open("a", encoding="utf-8"))
        elif outer is not None and outer.stream is not None:
            stream = outer.stream
        else:
            stream = stack.enter_context(open(os.devnull, "w", encoding="utf-8"))
        _ACTIVE.append(_Block(stream, verbose))
        stack.callback(_ACTIVE.pop)
        if stream is not None:
            stack.enter_context(_environment(_QUIET_ENV))
            stack.enter_context(_library_switches())
            stack.enter_context(_diverted_loggers(stream))
            stack.enter_context(_diverted_warnings(stream))
            if capture_stderr:
                stack.enter_context(_stderr_to(stream))
        yield


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextmanager
def _library_switches() -> Iterator[None]:
    """Progress bars off in the libraries already imported; afterwards on again where they were on before, or
    where the library was first imported inside the block (it found the hub's switch off then)."""
    if "huggingface_hub.utils" not in sys.modules and importlib.util.find_spec("huggingface_hub") is not None:
        # cheap to import (~40 ms); transformers reads its switch when first imported, so its bars stay off too
        importlib.import_module("huggingface_hub.utils")
    before: dict[str, bool] = {}
    for module_name, is_on, off, _on, _env in _SWITCHES:
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, is_on):
            state = bool(getattr(module, is_on)())
            before[module_name] = not state if is_on.startswith("are_") else state
            getattr(module, off)()
    user_env = {env: os.environ.get(env, "") for *_, env in _SWITCHES}
    try:
        yield
    finally:
        for module_name, is_on, _off, on, env in _SWITCHES:
            module = sys.modules.get(module_name)
            wanted = before.get(module_name, user_env[env].strip().lower() not in ("1", "true", "yes", "on"))
            if module is not None and hasattr(module, on) and wanted:
                getattr(module, on)()


@contextmanager
def _diverted_loggers(stream: IO[str]) -> Iterator[None]:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
    saved: list[tuple[logging.Logger, list[logging.Handler], bool, int]] = []
    held: list[tuple[logging.Logger, logging.Handler]] = []
    patched: list[tuple[logging.Logger, Any]] = []  # an enclosing block's addHandler patch, to put back
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, list(logger.handlers), logger.propagate, logger.level))
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(logging.WARNING)  # what the terminal would have shown; INFO dumps whole model configs
        patched.append((logger, logger.__dict__.get("addHandler")))
        # a library configuring its logger on first import adds its own stderr handler: hold it back
        logger.addHandler = _holder(logger, held)  # type: ignore[method-assign]
    try:
        yield
    finally:
        handler.flush()
        for logger, previous in patched:
            if previous is None:
                del logger.addHandler  # the instance attribute goes; the class method shows again
            else:
                logger.addHandler = previous  # type: ignore[method-assign]
        for logger, handlers, propagate, level in saved:
            logger.handlers = handlers
            logger.propagate = propagate
            logger.setLevel(level)
        for logger, late in held:
            logger.addHandler(late)


def _holder(logger: logging.Logger, held: list[tuple[logging.Logger, logging.Handler]]) -> Any:
    def hold(handler: logging.Handler) -> None:
        held.append((logger, handler))

    return hold


def _is_own_warning(category: type[Warning], filename: str) -> bool:
    return filename.startswith(_EVALKIT_DIR) and issubclass(category, _OWN_CATEGORIES) \
        and not issubclass(category, (DeprecationWarning, FutureWarning))


@contextmanager
def _diverted_warnings(stream: IO[str]) -> Iterator[None]:
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
            if _is_own_warning(category, filename):
                shown(message, category, filename, lineno, file, line)
            else:
                stream.write(warnings.formatwarning(message, category, filename, lineno, line))

        warnings.showwarning = show
        yield


@contextmanager
def _stderr_to(stream: IO[str]) -> Iterator[None]:
    """Point file descriptor 2 at the log for the block (what C code and tqdm write lands there too)."""
    sys.stderr.flush()
    stream.flush()
    saved = os.dup(2)
    os.dup2(stream.fileno(), 2)
    _TERMINAL_FDS.append(saved)
    try:
        yield
    finally:
        sys.stderr.flush()
        _TERMINAL_FDS.remove(saved)
        os.dup2(saved, 2)
        os.close(saved)
