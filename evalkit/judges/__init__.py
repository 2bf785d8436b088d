"""LLM judges: parsing, single, pairwise, listwise and rubric grading, probability mode, voting panels, agreement
statistics, the judge-bias report, Bradley-Terry ranking, and the `evalkit judge` runner for FastChat answer files.

Examples:
    >>> from evalkit.judges import parse_rating, reduce_values
    >>> parse_rating("The answer is fine. Rating: [[7]]").value
    7.0
    >>> reduce_values([7.0, 9.0], "mean")
    8.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalkit._lazy import lazy_getattr

if TYPE_CHECKING:  # the real imports, for type checkers; at run time names load on first use
    from evalkit.judges._aggregate import (
        battles_of,
        human_agreement,
        listwise_table,
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
    from evalkit.judges._bias import bias_report, judge_base_name
    from evalkit.judges._bradley_terry import RankedModel, bradley_terry, fit_bradley_terry
    from evalkit.judges._judge import GenerativeJudge, Scorer, build_conversation, merge_orders
    from evalkit.judges._listwise import ListwiseJudge, parse_ranking
    from evalkit.judges._parse import FALLBACK_RULES, ParsedVerdict, parse_pairwise, parse_rating
    from evalkit.judges._probability import ProbabilityJudge, verdict_distribution
    from evalkit.judges._records import Attempt, JudgeItem, JudgeStats, Vote, preference_of, verdict_of
    from evalkit.judges._rubric import parse_rubric
    from evalkit.judges._runner import (
        JudgedItem,
        build_items,
        build_scorer,
        judge_items,
        reference_answers,
        sample_row,
    )
    from evalkit.judges._spec import Aspect, JudgeConfig, JudgeDefinition, list_judges, load_judge_definition
    from evalkit.judges._vote import (
        REDUCERS,
        Reduced,
        Voting,
        reduce_values,
        reduce_verdicts,
        reduce_votes,
        vote,
    )
    from evalkit.tasks._mtbench_data import (
        CATEGORY_TEMPERATURE,
        Question,
        answer_questions,
        load_model_answers,
        load_questions,
        load_references,
        write_model_answers,
    )

__all__ = [
    "CATEGORY_TEMPERATURE",
    "FALLBACK_RULES",
    "REDUCERS",
    "Aspect",
    "Attempt",
    "GenerativeJudge",
    "JudgeConfig",
    "JudgeDefinition",
    "JudgeItem",
    "JudgeStats",
    "JudgedItem",
    "ListwiseJudge",
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
    "bias_report",
    "bradley_terry",
    "build_conversation",
    "build_items",
    "build_scorer",
    "cohen_kappa",
    "fit_bradley_terry",
    "fleiss_kappa",
    "human_agreement",
    "judge_base_name",
    "judge_items",
    "label_of",
    "list_judges",
    "listwise_table",
    "load_judge_definition",
    "load_model_answers",
    "load_questions",
    "load_references",
    "mean_with_ci",
    "merge_orders",
    "parse_pairwise",
    "parse_ranking",
    "parse_rating",
    "parse_rubric",
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

# Lazy re-exports keep `import evalkit.judges` (and so `evalkit --help`) free of numpy/scipy/pydantic.
# The MT-Bench data names (Question, load_questions, ..., answer_questions) live in evalkit.tasks; they are
# re-exported here so existing `from evalkit.judges import load_questions` keeps working.
_LAZY = {
    "Aspect": "evalkit.judges._spec",
    "Attempt": "evalkit.judges._records",
    "CATEGORY_TEMPERATURE": "evalkit.tasks._mtbench_data",
    "FALLBACK_RULES": "evalkit.judges._parse",
    "GenerativeJudge": "evalkit.judges._judge",
    "JudgeConfig": "evalkit.judges._spec",
    "JudgeDefinition": "evalkit.judges._spec",
    "JudgeItem": "evalkit.judges._records",
    "JudgeStats": "evalkit.judges._records",
    "JudgedItem": "evalkit.judges._runner",
    "ListwiseJudge": "evalkit.judges._listwise",
    "ParsedVerdict": "evalkit.judges._parse",
    "ProbabilityJudge": "evalkit.judges._probability",
    "Question": "evalkit.tasks._mtbench_data",
    "REDUCERS": "evalkit.judges._vote",
    "RankedModel": "evalkit.judges._bradley_terry",
    "Reduced": "evalkit.judges._vote",
    "Scorer": "evalkit.judges._judge",
    "Vote": "evalkit.judges._records",
    "Voting": "evalkit.judges._vote",
    "agreement_report": "evalkit.judges._agreement",
    "answer_questions": "evalkit.tasks._mtbench_data",
    "battles_of": "evalkit.judges._aggregate",
    "bias_report": "evalkit.judges._bias",
    "bradley_terry": "evalkit.judges._bradley_terry",
    "build_conversation": "evalkit.judges._judge",
    "build_items": "evalkit.judges._runner",
    "build_scorer": "evalkit.judges._runner",
    "cohen_kappa": "evalkit.judges._agreement",
    "fit_bradley_terry": "evalkit.judges._bradley_terry",
    "fleiss_kappa": "evalkit.judges._agreement",
    "human_agreement": "evalkit.judges._aggregate",
    "judge_base_name": "evalkit.judges._bias",
    "judge_items": "evalkit.judges._runner",
    "label_of": "evalkit.judges._agreement",
    "list_judges": "evalkit.judges._spec",
    "listwise_table": "evalkit.judges._aggregate",
    "load_judge_definition": "evalkit.judges._spec",
    "load_model_answers": "evalkit.tasks._mtbench_data",
    "load_questions": "evalkit.tasks._mtbench_data",
    "load_references": "evalkit.tasks._mtbench_data",
    "mean_with_ci": "evalkit.judges._aggregate",
    "merge_orders": "evalkit.judges._judge",
    "parse_pairwise": "evalkit.judges._parse",
    "parse_ranking": "evalkit.judges._listwise",
    "parse_rating": "evalkit.judges._parse",
    "parse_rubric": "evalkit.judges._rubric",
    "percent_agreement": "evalkit.judges._agreement",
    "position_consistency": "evalkit.judges._agreement",
    "preference_of": "evalkit.judges._records",
    "reduce_values": "evalkit.judges._vote",
    "reduce_verdicts": "evalkit.judges._vote",
    "reduce_votes": "evalkit.judges._vote",
    "reference_answers": "evalkit.judges._runner",
    "reliability": "evalkit.judges._aggregate",
    "sample_row": "evalkit.judges._runner",
    "score_table": "evalkit.judges._aggregate",
    "summarize": "evalkit.judges._aggregate",
    "verdict_distribution": "evalkit.judges._probability",
    "verdict_of": "evalkit.judges._records",
    "vote": "evalkit.judges._vote",
    "write_model_answers": "evalkit.tasks._mtbench_data",
}


__getattr__ = lazy_getattr("evalkit.judges", _LAZY, globals())
