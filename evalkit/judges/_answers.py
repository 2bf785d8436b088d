"""Moved: MT-Bench question and answer loading lives in `evalkit.tasks._mtbench_data` (public names in
`evalkit.tasks`), so judges/ holds only judging. This module re-exports the names `evalkit.judges._command`
still imports from here; import them from `evalkit.tasks` instead.
"""

from __future__ import annotations

from evalkit.tasks._mtbench_data import load_model_answers, load_questions

__all__ = ["load_model_answers", "load_questions"]
