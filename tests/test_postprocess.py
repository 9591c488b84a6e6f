"""MC-CNN's post-processing steps (stereokit.postprocess) on small arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from stereokit import StereoKitError
from stereokit.postprocess import (
    CORRECT,
    MISMATCH,
    OCCLUSION,
    interpolate_lr,
    lr_labels,
    subpixel_parabola,
    thresholded_gaussian,
)


def test_lr_labels_with_negative_disparities():
    dr = np.full((1, 6), -2, np.float32)
    dl = dr.copy()
    dl[0, 2] = 1  # wrong, but d' = -2 passes the check at x = 2 (dr[0, 4] == -2): a mismatch, not an occlusion
    assert lr_labels(dl, dr, min_disp=-3)[0, 2] == MISMATCH
    # with the range starting at 0 a negative d' is not a candidate: nothing else is consistent, an occlusion
    assert lr_labels(dl, dr, min_disp=0)[0, 2] == OCCLUSION
    with pytest.raises(StereoKitError, match="tolerance"):
        lr_labels(dl, dr, tolerance=np.nan)
    with pytest.raises(StereoKitError, match="min_disp"):
        lr_labels(dl, dr, min_disp=0.5)


def test_mismatch_takes_a_real_neighbour_not_the_mean_of_two():
    # the 16 directions of the centre pixel reach 8 correct pixels at 30 and 8 at 5: the median is one of them
    disp = np.full((5, 5), 5.0, np.float32)
    disp[:, 3:] = 30.0
    disp[0, :] = 30.0
    labels = np.full((5, 5), CORRECT, np.uint8)
    labels[2, 2] = MISMATCH
    out = interpolate_lr(disp, labels)
    assert out[2, 2] == 30.0  # sorted values[16 // 2], as MC-CNN's code; np.median would give 17.5
    with pytest.raises(StereoKitError, match="labels"):
        interpolate_lr(disp, np.full((5, 5), 3, np.uint8))
    with pytest.raises(StereoKitError, match="2-D"):
        interpolate_lr(np.zeros(5, np.float32), np.zeros(5))


def test_subpixel_parabola_refuses_bad_volumes():
    disp = np.zeros((2, 3), np.float32)
    vol = np.ones((2, 3, 4), np.float32)
    for bad in (np.where(np.eye(3, 4, dtype=bool)[None], np.nan, vol).astype(np.float32), -np.inf * vol,
                vol.astype(np.float64)):
        with pytest.raises(StereoKitError):
            subpixel_parabola(disp, bad)


def test_thresholded_gaussian_options():
    d = np.arange(12, dtype=np.float32).reshape(3, 4)
    for sigma in (np.inf, 0, "x"):
        with pytest.raises(StereoKitError, match="sigma"):
            thresholded_gaussian(d, sigma, 1.0)
    # a huge sigma is a plain mean over the pixels within the threshold, without a huge kernel
    out = thresholded_gaussian(d, 1e6, np.inf)
    np.testing.assert_allclose(out, np.full(d.shape, d.mean()), rtol=1e-5)
