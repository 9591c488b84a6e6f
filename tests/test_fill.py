"""stereokit.fill.fill_invalid_background against a line-by-line port of the KITTI devkit's interpolateBackground."""

from __future__ import annotations

import numpy as np
import pytest

from stereokit.errors import StereoKitError
from stereokit.fill import fill_invalid_background

nan = np.nan


def devkit_interpolate_background(disp: np.ndarray) -> np.ndarray:
    """Port of DisparityImage::interpolateBackground (devkit_stereo io_disp.h), NaN standing for the devkit's -1."""
    d = np.array(disp, dtype=np.float64)
    height, width = d.shape

    def valid(u: int, v: int) -> bool:
        return not np.isnan(d[v, u])

    for v in range(height):
        count = 0
        for u in range(width):
            if valid(u, v):
                if count >= 1:
                    u1, u2 = u - count, u - 1
                    if u1 > 0 and u2 < width - 1:
                        d_ipol = min(d[v, u1 - 1], d[v, u2 + 1])
                        for u_curr in range(u1, u2 + 1):
                            d[v, u_curr] = d_ipol
                count = 0
            else:
                count += 1
        for u in range(width):  # extrapolate to the left
            if valid(u, v):
                for u2 in range(u):
                    d[v, u2] = d[v, u]
                break
        for u in range(width - 1, -1, -1):  # extrapolate to the right
            if valid(u, v):
                for u2 in range(u + 1, width):
                    d[v, u2] = d[v, u]
                break
    for u in range(width):
        for v in range(height):  # extrapolate to the top
            if valid(u, v):
                for v2 in range(v):
                    d[v2, u] = d[v, u]
                break
        for v in range(height - 1, -1, -1):  # extrapolate to the bottom
            if valid(u, v):
                for v2 in range(v + 1, height):
                    d[v2, u] = d[v, u]
                break
    return d


HAND_CASES = [
    # a gap takes the smaller of its two ends; the row's ends copy the first / last valid pixel
    ([[nan, 5, nan, nan, 3, nan]], [[5, 5, 3, 3, 3, 3]]),
    ([[2, nan, 9]], [[2, 2, 9]]),
    ([[9, nan, nan, nan, 2]], [[9, 2, 2, 2, 2]]),
    # an all-invalid row at the top / bottom is filled from the column's first / last valid pixel
    ([[nan, nan, nan], [nan, 4, nan], [nan, nan, nan]], [[4, 4, 4], [4, 4, 4], [4, 4, 4]]),
    ([[nan, nan], [1, 2], [nan, nan], [nan, nan]], [[1, 2], [1, 2], [1, 2], [1, 2]]),
    # an interior all-invalid row stays invalid, as in the devkit
    ([[1, 2], [nan, nan], [3, 4]], [[1, 2], [nan, nan], [3, 4]]),
    # rows are filled first, so a gap in a row never looks at the rows above or below
    ([[7, nan, 8], [1, 1, 1]], [[7, 7, 8], [1, 1, 1]]),
    # nothing valid: unchanged
    ([[nan, nan], [nan, nan]], [[nan, nan], [nan, nan]]),
    # nothing invalid: unchanged
    ([[1.5, 2.5], [3.5, 0.0]], [[1.5, 2.5], [3.5, 0.0]]),
]


@pytest.mark.parametrize("disp, expected", HAND_CASES)
def test_hand_computed(disp, expected):
    disp = np.array(disp, dtype=np.float32)
    out = fill_invalid_background(disp)
    np.testing.assert_array_equal(out, np.array(expected, dtype=np.float32))
    np.testing.assert_array_equal(devkit_interpolate_background(disp), np.array(expected))  # the port agrees too


def test_matches_devkit_port_on_random_maps():
    rng = np.random.default_rng(7)
    for _ in range(300):
        h, w = rng.integers(1, 8), rng.integers(1, 10)
        d = rng.uniform(0, 50, size=(h, w)).astype(np.float32)
        d[rng.random((h, w)) < rng.uniform(0, 1)] = nan
        if rng.random() < 0.3:
            d[rng.integers(h)] = nan  # whole invalid rows
        if rng.random() < 0.3:
            d[:, rng.integers(w)] = nan  # and columns
        out = fill_invalid_background(d)
        np.testing.assert_array_equal(out, devkit_interpolate_background(d).astype(np.float32))


def test_dtype_and_input_untouched():
    d = np.array([[nan, 3.0, nan]], dtype=np.float64)
    before = d.copy()
    out = fill_invalid_background(d)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(d, before)
    assert out is not d


def test_rejects_non_2d():
    with pytest.raises(StereoKitError):
        fill_invalid_background(np.zeros((2, 2, 3), np.float32))


def test_returns_a_new_array_even_without_holes():
    # float32 input, nothing to fill: still a copy, writing to the result leaves the caller's map alone
    d = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    out = fill_invalid_background(d)
    assert out is not d and not np.shares_memory(out, d)
    out[0, 0] = 99.0
    assert d[0, 0] == 1.0
