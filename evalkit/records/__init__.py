"""The run record: the one typed schema of results.json and samples/<task>.jsonl.

Written by `evalkit.store.RunWriter` (the runner and `evalkit judge`), read by `evalkit.api.RunResult`, the
report, the gate and the lm-eval import. `evalkit schema` prints its JSON Schema.

Examples:
    >>> record = parse_record({"run_id": "r1", "tasks": {"cmmlu": {"metrics": {"acc": 0.41, "n": 10}, "n": 10}}})
    >>> record.schema_version, record.tasks["cmmlu"].kind, record.tasks["cmmlu"].metric("acc").value
    ('2', 'multiple_choice', 0.41)
"""

from evalkit.records._io import dump_record, json_schema, load_record, parse_record, results_file, schema_text
from evalkit.records._rules import (
    FAMILY_LABELS,
    family_of_kind,
    headline_metric,
    higher_is_better,
    is_count_key,
    is_fraction_metric,
    is_number,
    metric_names,
)
from evalkit.records._samples import (
    JudgedSample,
    LongContextSample,
    MultipleChoiceSample,
    PerplexitySample,
    SampleRecord,
    register_sample_type,
    sample_type,
)
from evalkit.records._schema import SCHEMA_VERSION, Metric, ModelRecord, RunRecord, Scores, TaskRecord

__all__ = [
    "FAMILY_LABELS",
    "SCHEMA_VERSION",
    "JudgedSample",
    "LongContextSample",
    "Metric",
    "ModelRecord",
    "MultipleChoiceSample",
    "PerplexitySample",
    "RunRecord",
    "SampleRecord",
    "Scores",
    "TaskRecord",
    "dump_record",
    "family_of_kind",
    "headline_metric",
    "higher_is_better",
    "is_count_key",
    "is_fraction_metric",
    "is_number",
    "json_schema",
    "load_record",
    "metric_names",
    "parse_record",
    "register_sample_type",
    "results_file",
    "sample_type",
    "schema_text",
]
