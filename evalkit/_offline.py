"""Is the Hugging Face hub reachable? Asked once per process, answered in about a second.

Without this, an offline machine waits for `huggingface_hub`'s retries (tens of seconds, a screenful of
"Retrying in 8s" lines) at every model or dataset it tries. One short TCP probe decides; when it fails, the
process behaves as with `EVALKIT_OFFLINE=1`: `HF_HUB_OFFLINE` / `HF_DATASETS_OFFLINE` are set (also inside
`huggingface_hub` and `datasets` if they are already imported), and one line says so on stderr.

Environment:
    EVALKIT_OFFLINE=1 (or HF_HUB_OFFLINE=1 / HF_DATASETS_OFFLINE=1): skip the probe, stay offline.
    EVALKIT_HUB_PROBE=host:port or URL: what to probe (default: $HF_ENDPOINT, else https://huggingface.co);
        tests point it at a closed local port to play an unreachable hub.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from functools import lru_cache
from urllib.parse import urlparse

__all__ = ["PROBE_TIMEOUT_S", "forget", "go_offline", "hub_reachable", "offline_requested", "probe_target"]

PROBE_TIMEOUT_S = 1.5
_TRUE = ("1", "true", "yes", "on")
_OFFLINE_VARS = ("EVALKIT_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def offline_requested() -> bool:
    """Whether the user asked for offline mode (EVALKIT_OFFLINE, HF_HUB_OFFLINE or HF_DATASETS_OFFLINE)."""
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in _OFFLINE_VARS)


def probe_target() -> tuple[str, int]:
    """(host, port) the probe connects to: EVALKIT_HUB_PROBE, else HF_ENDPOINT, else huggingface.co:443."""
    raw = os.environ.get("EVALKIT_HUB_PROBE") or os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    if "://" not in raw:
        raw = "tcp://" + raw
    url = urlparse(raw)
    default_port = 80 if url.scheme == "http" else 443
    return url.hostname or "huggingface.co", url.port or default_port


def _connects(host: str, port: int, timeout: float) -> bool:
    """A TCP connect, bounded in time including name resolution (getaddrinfo has no timeout of its own)."""
    result: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=attempt, name="evalkit-hub-probe", daemon=True)
    worker.start()
    worker.join(timeout + 0.2)
    return bool(result and result[0])


def go_offline() -> None:
    """Make this process offline for huggingface_hub, transformers and datasets (also if already imported)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    for module_name, attrs in (("huggingface_hub.constants", ("HF_HUB_OFFLINE",)),
                               ("datasets.config", ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))):
        module = sys.modules.get(module_name)
        for attr in attrs:
            if module is not None and hasattr(module, attr):
                setattr(module, attr, True)


@lru_cache(maxsize=1)
def _probe_once() -> bool:
    if offline_requested():
        go_offline()
        return False
    host, port = probe_target()
    if _connects(host, port, PROBE_TIMEOUT_S):
        return True
    go_offline()
    _unannounced.append(f"note: the Hugging Face hub ({host}:{port}) is not reachable; running offline "
                        f"(local data, cached weights and the demo set only; set EVALKIT_OFFLINE=1 to skip this check)")
    return False


_unannounced: list[str] = []  # the offline note, until someone prints it


def hub_reachable(*, announce: bool = True) -> bool:
    """True when the HF hub answers a TCP connect within PROBE_TIMEOUT_S; probed once per process.

    When it does not (or offline mode was asked for), the process is switched to offline mode. An unreachable
    hub is reported with one line on stderr, once; `announce=False` leaves the line to a later caller (for a
    command that fails with its own one-line error instead).
    """
    reachable = _probe_once()
    if announce and _unannounced:
        from evalkit._quiet import tell_user

        tell_user(_unannounced.pop())  # reaches the terminal even while a model load's stderr goes to the log
    return reachable


def forget() -> None:
    """Forget the probe's answer, so that the next `hub_reachable()` probes again (tests, long-lived servers)."""
    _probe_once.cache_clear()
    _unannounced.clear()
