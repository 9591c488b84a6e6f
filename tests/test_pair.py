"""StereoPair: validation (each bad input -> StereoKitError naming the problem), cached gray/float views, depth()."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stereokit import Calibration, StereoKitError, StereoPair

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
GRAY = RNG.integers(0, 256, size=(6, 8), dtype=np.uint8)


@pytest.mark.parametrize("left, right, msg", [
    (None, GRAY, "left image is missing"),
    (GRAY, None, "right image is missing"),
    (np.zeros((6, 8, 4), np.uint8), np.zeros((6, 8, 4), np.uint8), r"left image must be 2-D .* got shape \(6, 8, 4\)"),
    (np.zeros(8, np.uint8), np.zeros(8, np.uint8), "left image must be 2-D"),
    (np.zeros((0, 8), np.uint8), np.zeros((0, 8), np.uint8), "left image is empty"),
    (GRAY, np.zeros((6, 0), np.uint8), "right image is empty"),
    (GRAY.astype(np.int32), GRAY, "left image has dtype int32"),
    (GRAY, GRAY.astype(bool), "right image has dtype bool"),
    (np.full((6, 8), np.nan, np.float32), GRAY, "left image contains NaN"),
    (GRAY, np.full((6, 8), np.inf), "right image contains NaN or inf"),
    (GRAY, np.zeros((6, 9), np.uint8), r"differ in size: \(6, 8\) vs \(6, 9\)"),
    (GRAY, RGB, "differ in channels"),
])
def test_bad_images(left, right, msg):
    with pytest.raises(StereoKitError, match=msg):
        StereoPair(left, right)


def test_error_is_a_value_error():
    with pytest.raises(ValueError):
        StereoPair(GRAY, np.zeros((5, 8), np.uint8))


def test_bad_ground_truth_and_masks():
    with pytest.raises(StereoKitError, match=r"ground truth has shape \(6, 7\), expected \(6, 8\)"):
        StereoPair(GRAY, GRAY, gt=np.zeros((6, 7)))
    with pytest.raises(StereoKitError, match="nonocc mask has shape"):
        StereoPair(GRAY, GRAY, nonocc=np.ones((8, 6), bool))
    with pytest.raises(StereoKitError, match="fg mask has shape"):
        StereoPair(GRAY, GRAY, fg=np.ones((6,), bool))


def test_accepted_inputs_are_normalised():
    one_channel = GRAY[:, :, None]
    p = StereoPair(one_channel, one_channel)  # H x W x 1 is gray
    assert p.left.shape == (6, 8) and p.channels == 1
    gt = np.arange(48, dtype=np.float64).reshape(6, 8)
    gt[0, 0] = np.inf
    gt[0, 1] = -np.inf
    p = StereoPair(RGB, RGB, gt=gt, nonocc=np.ones((6, 8), np.uint8), fg=np.zeros((6, 8)))
    assert p.gt.dtype == np.float32 and np.isnan(p.gt[0, :2]).all() and p.gt[5, 7] == 47
    assert np.isinf(gt[0, 0])  # the caller's array is not modified
    assert p.nonocc.dtype == bool and p.fg.dtype == bool
    assert p.shape == (6, 8) and (p.height, p.width, p.channels) == (6, 8, 3)
    for dtype in (np.uint16, np.float32, np.float64):
        assert StereoPair(GRAY.astype(dtype), GRAY.astype(dtype)).left.dtype == dtype


def test_float_and_gray_views_are_computed_once():
    p = StereoPair(RGB, RGB)
    f = p.left_float
    assert f is p.left_float and p.left_gray is p.left_gray and p.right_gray is p.right_gray
    assert f.dtype == np.float32 and np.allclose(f, RGB / 255.0)
    # BT.601 luma, the same weights as OpenCV's RGB -> gray
    ref = cv2.cvtColor(RGB.astype(np.float32) / 255.0, cv2.COLOR_RGB2GRAY)
    assert p.left_gray.shape == (6, 8) and np.allclose(p.left_gray, ref, atol=1e-6)
    g16 = (GRAY.astype(np.uint16) * 257)
    q = StereoPair(g16, g16)
    assert np.allclose(q.left_float, GRAY / 255.0) and q.left_gray is q.left_float
    fl = RGB.astype(np.float64) * 3.0  # floats are kept as given (not rescaled)
    assert np.allclose(StereoPair(fl, fl).left_float, fl)


def test_depth():
    cal = Calibration(focal=1000.0, baseline=0.5, doffs=2.0)
    p = StereoPair(GRAY, GRAY, calib=cal)
    d = np.array([[8.0, np.nan, -2.0, -5.0]], np.float32)
    z = p.depth(d)
    assert z.dtype == np.float32
    assert z[0, 0] == pytest.approx(1000 * 0.5 / 10.0)
    assert np.isnan(z[0, 1:]).all()  # invalid disparity, d + doffs == 0, d + doffs < 0
    with pytest.raises(StereoKitError, match="no calibration"):
        StereoPair(GRAY, GRAY).depth(d)
