"""evalkit sets an explicit OpenMP wait policy before torch loads (the default one is slow on VMs)."""

from __future__ import annotations

import os
import subprocess
import sys


def _policy_seen_by_child(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env_value is not None:
        env["OMP_WAIT_POLICY"] = env_value
    code = "import evalkit, os; print(os.environ.get('OMP_WAIT_POLICY', '<unset>'))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_import_sets_passive_wait_policy_when_unset() -> None:
    assert _policy_seen_by_child(None) == "PASSIVE"


def test_users_own_wait_policy_wins() -> None:
    assert _policy_seen_by_child("ACTIVE") == "ACTIVE"
