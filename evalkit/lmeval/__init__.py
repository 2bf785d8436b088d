"""lm-eval interop (extra `[lmeval]`): run lm-eval itself on local data as evalkit's parity reference."""

from evalkit.lmeval._reference import LmevalMC, LmevalPPL, lmeval_task_dir, run_lmeval_mc, run_lmeval_wikitext

__all__ = ["LmevalMC", "LmevalPPL", "lmeval_task_dir", "run_lmeval_mc", "run_lmeval_wikitext"]

# the bridge: lm-eval task definitions through evalkit backends (lm-eval itself is imported lazily)
from evalkit.lmeval._adapter import backend_lm, gen_config
from evalkit.lmeval._bridge import outcome_from_lmeval, run_bridge, sample_records

__all__ += ["backend_lm", "gen_config", "outcome_from_lmeval", "run_bridge", "sample_records"]
