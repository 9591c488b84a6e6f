"""Evaluation: metrics, the comparison runner, error maps and reports.

Only the metrics are imported here (numpy only); the runner and the reports (matplotlib, dask) load on demand.
"""

from .metrics import (
    METRIC_KEYS,
    DatasetResult,
    Metrics,
    PairResult,
    evaluate_dataset,
    evaluate_pair,
    format_table,
    save_json,
)

__all__ = [
    "METRIC_KEYS",
    "Metrics",
    "PairResult",
    "DatasetResult",
    "evaluate_pair",
    "evaluate_dataset",
    "format_table",
    "save_json",
]
