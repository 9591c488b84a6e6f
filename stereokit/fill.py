"""Background interpolation of invalid disparities, as the KITTI stereo devkit does before scoring.

One implementation serves both the refinement step of the matchers and the evaluator.
"""

from __future__ import annotations

import numpy as np


def _fill_rows(d: np.ndarray) -> np.ndarray:
    """Per row: a gap between two valid pixels takes the smaller of the two; the ends copy the nearest valid pixel."""
    h, w = d.shape
    valid = ~np.isnan(d)
    cols = np.arange(w)
    # Index of the last valid pixel at or before x, and of the first valid pixel at or after x.
    prev_idx = np.maximum.accumulate(np.where(valid, cols, -1), axis=1)
    next_idx = np.minimum.accumulate(np.where(valid, cols, w)[:, ::-1], axis=1)[:, ::-1]
    rows = np.arange(h)[:, None]
    prev_val = np.where(prev_idx >= 0, d[rows, np.clip(prev_idx, 0, w - 1)], np.nan)
    next_val = np.where(next_idx < w, d[rows, np.clip(next_idx, 0, w - 1)], np.nan)
    both = (prev_idx >= 0) & (next_idx < w)
    out = np.where(both, np.fmin(prev_val, next_val), np.where(prev_idx >= 0, prev_val, next_val))
    out[valid] = d[valid]
    return out


def _extrapolate_columns(d: np.ndarray) -> np.ndarray:
    """Per column: pixels above the first valid one copy it, pixels below the last valid one copy that."""
    h, _ = d.shape
    valid = ~np.isnan(d)
    rows = np.arange(h)[:, None]
    prev_idx = np.maximum.accumulate(np.where(valid, rows, -1), axis=0)
    next_idx = np.minimum.accumulate(np.where(valid, rows, h)[::-1], axis=0)[::-1]
    col = np.arange(d.shape[1])[None, :]
    out = d.copy()
    top = prev_idx < 0  # nothing valid above: copy the first valid below
    bottom = next_idx >= h  # nothing valid below: copy the last valid above
    has_any = valid.any(axis=0)[None, :]
    out = np.where(top & has_any, d[np.clip(next_idx, 0, h - 1), col], out)
    out = np.where(bottom & ~top & has_any, d[np.clip(prev_idx, 0, h - 1), col], out)
    return out


def fill_invalid_background(disparity: np.ndarray) -> np.ndarray:
    """Fill NaN pixels by background interpolation (KITTI devkit `interpolateBackground`).

    Rows first: a run of invalid pixels between two valid ones takes the smaller (farther) of the two, the row's ends
    copy its first and last valid pixel; then each column's top and bottom copy its first and last valid pixel.
    Interior rows with no valid pixel at all stay NaN, as in the devkit; an all-invalid map is returned unchanged.
    """
    d = np.asarray(disparity, dtype=np.float32)
    if d.ndim != 2:
        from .errors import StereoKitError

        raise StereoKitError(f"disparity must be 2-D, got shape {d.shape}")
    if not np.isnan(d).any():
        return d.copy()
    return _extrapolate_columns(_fill_rows(d)).astype(np.float32)
