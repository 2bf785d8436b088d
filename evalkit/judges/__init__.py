"""LLM judges: parsing, single and pairwise grading, probability mode, voting panels, agreement statistics,
Bradley-Terry ranking, and the `evalkit judge` runner for FastChat answer files.

Examples:
    >>> from evalkit.judges import parse_rating, reduce_values
    >>> parse_rating("The answer is fine. Rating: [[7]]").value
    7.0
    >>> reduce_values([7.0, 9.0], "mean")
    8.0
"""

from evalkit.judges._aggregate import (
    battles_of,
    human_agreement,
    mean_with_ci,
    reliability,
    score_table,
    summarize,
)
from evalkit.judges._agreement import (
    agreement_report,
    cohen_kappa,
    fleiss_kappa,
    label_of,
    percent_agreement,
    position_consistency,
)
from evalkit.judges._answers import (
    CATEGORY_TEMPERATURE,
    Question,
    answer_questions,
    load_model_answers,
    load_questions,
    load_references,
    write_model_answers,
)
from evalkit.judges._bradley_terry import RankedModel, bradley_terry, fit_bradley_terry
from evalkit.judges._judge import GenerativeJudge, Scorer, build_conversation, merge_orders
from evalkit.judges._parse import FALLBACK_RULES, ParsedVerdict, parse_pairwise, parse_rating
from evalkit.judges._probability import ProbabilityJudge, verdict_distribution
from evalkit.judges._records import Attempt, JudgeItem, JudgeStats, Vote, preference_of, verdict_of
from evalkit.judges._runner import (
    JudgedItem,
    build_items,
    build_scorer,
    judge_items,
    reference_answers,
    sample_row,
)
from evalkit.judges._spec import JudgeConfig, JudgeDefinition, list_judges, load_judge_definition
from evalkit.judges._vote import REDUCERS, Reduced, Voting, reduce_values, reduce_verdicts, reduce_votes, vote

__all__ = [
    "CATEGORY_TEMPERATURE",
    "FALLBACK_RULES",
    "REDUCERS",
    "Attempt",
    "GenerativeJudge",
    "JudgeConfig",
    "JudgeDefinition",
    "JudgeItem",
    "JudgeStats",
    "JudgedItem",
    "ParsedVerdict",
    "ProbabilityJudge",
    "Question",
    "RankedModel",
    "Reduced",
    "Scorer",
    "Vote",
    "Voting",
    "agreement_report",
    "answer_questions",
    "battles_of",
    "bradley_terry",
    "build_conversation",
    "build_items",
    "build_scorer",
    "cohen_kappa",
    "fit_bradley_terry",
    "fleiss_kappa",
    "human_agreement",
    "judge_items",
    "label_of",
    "list_judges",
    "load_judge_definition",
    "load_model_answers",
    "load_questions",
    "load_references",
    "mean_with_ci",
    "merge_orders",
    "parse_pairwise",
    "parse_rating",
    "percent_agreement",
    "position_consistency",
    "preference_of",
    "reduce_values",
    "reduce_verdicts",
    "reduce_votes",
    "reference_answers",
    "reliability",
    "sample_row",
    "score_table",
    "summarize",
    "verdict_distribution",
    "verdict_of",
    "vote",
    "write_model_answers",
]
