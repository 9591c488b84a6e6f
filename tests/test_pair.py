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
    assert StereoPair(GRAY.astype(np.uint16), GRAY.astype(np.uint16)).left.dtype == np.uint16
    for dtype in (np.float32, np.float64):
        f = (GRAY / 255.0).astype(dtype)
        assert StereoPair(f, f).left.dtype == dtype


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
    fl = RGB.astype(np.float64) / 255.0  # floats in [0, 1] are kept as given
    assert np.allclose(StereoPair(fl, fl).left_float, fl)


def test_uint16_is_scaled_by_the_pairs_bit_depth():
    # 12-bit camera data: the full scale is 4095 for both images, set by the brighter one
    left = (GRAY.astype(np.uint16) * 16).astype(np.uint16)  # max 255 * 16 = 4080 < 4096
    right = (left // 2).astype(np.uint16)
    p = StereoPair(left, right)
    assert np.allclose(p.left_float, left / 4095.0) and np.allclose(p.right_float, right / 4095.0)
    # 8-bit values stored in uint16 keep their 8-bit scale; a value above 2^14 - 1 means 16-bit data
    assert np.allclose(StereoPair(GRAY.astype(np.uint16), GRAY.astype(np.uint16)).left_float, GRAY / 255.0)
    full = GRAY.astype(np.uint16) * 257
    assert np.allclose(StereoPair(full, full).left_float, GRAY / 255.0)
    # the cost volume takes the same common scale from raw arrays
    from stereokit.cost import cost_volume

    vol16 = cost_volume(left, right, max_disp=3, cost="ad")
    vol_f = cost_volume(left / 4095.0, right / 4095.0, max_disp=3, cost="ad")
    np.testing.assert_allclose(vol16, vol_f, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "left, right, words",
    [
        (GRAY.astype(np.float32), GRAY.astype(np.float32), ["values in [1, 245]", "[0, 1]", "divide by 255"]),
        (GRAY / 255.0 - 0.5, GRAY / 255.0, ["[0, 1]"]),
        (GRAY, GRAY.astype(np.uint16), ["uint8", "uint16", "same type"]),
        (GRAY / 255.0, GRAY, ["float64", "uint8"]),
    ],
)
def test_images_on_unknown_or_different_scales_are_refused(left, right, words):
    from stereokit import match
    from stereokit.cost import cost_volume

    for call in (lambda: StereoPair(left, right), lambda: cost_volume(left, right, 4, cost="sad"),
                 lambda: match(left, right, method="bm-sad", max_disp=4)):
        with pytest.raises(StereoKitError) as exc:
            call()
        for w in words:
            assert w in str(exc.value)


def test_middlebury_mask_encoding_and_obj_map_ids():
    mask = np.full((6, 8), 255, np.uint8)
    mask[:, 0] = 128  # occluded
    mask[0, :] = 0  # unknown
    p = StereoPair(GRAY, GRAY, nonocc=mask, fg=np.where(GRAY > 128, 7, 0).astype(np.uint8))
    assert (p.nonocc == (mask == 255)).all() and (p.fg == (GRAY > 128)).all()
    with pytest.raises(StereoKitError, match="0/128/255"):
        StereoPair(GRAY, GRAY, nonocc=np.full((6, 8), 3, np.uint8))
    with pytest.raises(StereoKitError, match="NaN"):
        StereoPair(GRAY, GRAY, fg=np.full((6, 8), np.nan))


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


def test_ground_truth_in_a_raw_encoding_is_refused_by_the_pair_too():
    for gt, words in [(np.full((6, 8), 2560, np.uint16), "uint16"), (np.full((6, 8), -1.0), "negative"),
                      (np.full((6, 8), "a"), "dtype")]:
        with pytest.raises(StereoKitError, match=words):
            StereoPair(GRAY, GRAY, gt=gt)


def test_uint16_bit_depth_boundaries():
    # the smallest depth whose range 0 .. 2^b - 1 holds the maximum: 255 is 8-bit, 256 needs 10 bits, 4096 14 bits
    for top, scale in [(255, 255.0), (256, 1023.0), (1023, 1023.0), (1024, 4095.0), (4096, 16383.0)]:
        img = np.zeros((6, 8), np.uint16)
        img[0, 0] = top
        p = StereoPair(img, img)
        assert p.left_float[0, 0] == np.float32(top) / np.float32(scale), top
        assert p.left_float.max() <= 1.0


def test_uint16_scale_is_set_by_the_brighter_view_either_side():
    # right brighter than left: both views share the right view's 10-bit scale
    left = np.full((6, 8), 100, np.uint16)
    right = np.full((6, 8), 1000, np.uint16)
    p = StereoPair(left, right)
    np.testing.assert_array_equal(p.left_float, np.float32(100) / np.float32(1023))
    np.testing.assert_array_equal(p.right_float, np.float32(1000) / np.float32(1023))


def test_float_overshoot_within_slack_is_clipped_not_refused():
    # resampling ringing slightly outside [0, 1] (up to 0.01) is clipped; beyond it the image is refused
    f = (GRAY / 255.0).astype(np.float32)
    f[0, 0], f[0, 1] = 1.005, -0.005
    p = StereoPair(f, f)
    assert p.left_float[0, 0] == 1.0 and p.left_float[0, 1] == 0.0
    assert p.left_float.min() >= 0.0 and p.left_float.max() <= 1.0
    g = f.copy()
    g[0, 0] = 1.02
    with pytest.raises(StereoKitError, match=r"\[0, 1\]"):
        StereoPair(g, g)


def test_zero_disparity_ground_truth_and_nonzero_mask_ids():
    # d = 0 (a point at infinity) is a valid disparity, not a sentinel
    gt = np.zeros((6, 8), np.float32)
    p = StereoPair(GRAY, GRAY, gt=gt)
    assert np.array_equal(p.gt, gt)
    # fg: any non-zero id is foreground, negative ones included
    fg = np.zeros((6, 8), np.int32)
    fg[0, 0], fg[1, 1] = -1, 3
    q = StereoPair(GRAY, GRAY, fg=fg)
    assert q.fg[0, 0] and q.fg[1, 1] and q.fg.sum() == 2
