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

# Drawing and the comparison runner load on first use (OpenCV, matplotlib, dask stay out of `import eval`).
_LAZY = {
    "colorize_disparity": "colormap",
    "error_image": "colormap",
    "bad_pixel_map": "colormap",
    "write_png": "colormap",
    "run_compare": "compare",
    "build_report": "report",
}
__all__ += list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
