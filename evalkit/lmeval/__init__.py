"""lm-eval interop (extra `[lmeval]`): run lm-eval itself on local data as evalkit's parity reference."""

from evalkit.lmeval._reference import LmevalMC, LmevalPPL, lmeval_task_dir, run_lmeval_mc, run_lmeval_wikitext

__all__ = ["LmevalMC", "LmevalPPL", "lmeval_task_dir", "run_lmeval_mc", "run_lmeval_wikitext"]
