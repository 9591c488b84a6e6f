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


def test_thresholded_gaussian_extreme_sigma_and_threshold_stay_defined():
    # sigma whose square underflows: the centre alone (not 0 / 0 = NaN everywhere); a threshold below float32's
    # smallest step: equal disparities only, the centre's own among them (not an empty sum)
    d = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, np.nan]], np.float32)
    np.testing.assert_array_equal(thresholded_gaussian(d, 1e-300, 2.0), d)
    np.testing.assert_array_equal(thresholded_gaussian(d, 1.0, 1e-50), d)
    # and equal neighbours are still averaged in under the tiny threshold: a flat map stays flat
    np.testing.assert_array_equal(thresholded_gaussian(np.full((3, 3), 4.0, np.float32), 1.0, 1e-50),
                                  np.full((3, 3), 4.0, np.float32))


def test_subpixel_parabola_keeps_range_ends_and_non_convex_triples():
    # costs per disparity 0..4 (min_disp 0); disp is the disparity the fit starts from
    vol = np.array([[[1.0, 2.0, 3.0, 4.0, 1.5],  # disp 0: first of the range, no C(d-1): kept
                     [3.0, 2.5, 2.0, 1.5, 1.0],  # disp 4: last of the range, no C(d+1): kept
                     [0.0, 1.0, 2.0, 1.5, 5.0],  # disp 2: concave (C+ - 2C + C- < 0): kept
                     [0.0, 1.0, 2.0, 3.0, 5.0],  # disp 2: straight line (denominator 0): kept
                     [5.0, 2.0, 1.0, 3.0, 9.0]]], np.float32)  # disp 2: convex: 2 - (3 - 2) / (2 * 3) = 11 / 6
    disp = np.array([[0, 4, 2, 2, 2]], np.float32)
    out = subpixel_parabola(disp, vol)
    np.testing.assert_array_equal(out[0, :4], disp[0, :4])
    assert out[0, 4] == pytest.approx(11 / 6, abs=1e-6)


def test_subpixel_parabola_never_moves_a_full_pixel():
    # a convex triple whose vertex lies more than a pixel away (disp not the minimum of the three): kept as is;
    # C = (0, 1, 2.5) at d = 1, 2, 3: offset (2.5 - 0) / (2 * (2.5 - 2 + 0)) = 2.5, outside (-1, 1)
    vol = np.array([[[9.0, 0.0, 1.0, 2.5, 9.0]]], np.float32)
    assert subpixel_parabola(np.array([[2.0]], np.float32), vol)[0, 0] == 2.0


def test_thresholded_gaussian_threshold_is_strict():
    # neighbours exactly `threshold` apart are excluded (|D(p) - D(q)| < threshold): each pixel keeps its value
    d = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    np.testing.assert_array_equal(thresholded_gaussian(d, 1.0, 1.0), d)
    # just above it they are averaged: pixel (0, 0) sees itself (weight 1), two 1.0 at distance 1, one 0.0 at sqrt 2
    w1, w2 = np.exp(-0.5), np.exp(-1.0)
    out = thresholded_gaussian(d, 1.0, 1.5)
    assert out[0, 0] == pytest.approx(2 * w1 / (1 + 2 * w1 + w2), rel=1e-6)


def _one_correct_pixel(y, x, size=13, value=7.0):
    """A map where every pixel is a mismatch except (y, x)."""
    disp = np.full((size, size), np.nan, np.float32)
    labels = np.full((size, size), MISMATCH, np.uint8)
    disp[y, x], labels[y, x] = value, CORRECT
    return disp, labels


@pytest.mark.parametrize("dy, dx", [(0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1),
                                    (1, 2), (2, 1), (2, -1), (1, -2), (-1, -2), (-2, -1), (-2, 1), (-1, 2)])
def test_mismatch_searches_the_papers_16_directions(dy, dx):
    # the only correct pixel lies on this direction's ray from the centre (6, 6), one or three steps out: found
    for steps in (1, 3):
        disp, labels = _one_correct_pixel(6 + steps * dy, 6 + steps * dx)
        assert interpolate_lr(disp, labels)[6, 6] == 7.0


def test_mismatch_ignores_pixels_off_the_16_rays():
    for dy, dx in [(2, 3), (3, 1), (-3, 2), (1, 4)]:  # on none of the 16 rays from (6, 6)
        disp, labels = _one_correct_pixel(6 + dy, 6 + dx)
        assert np.isnan(interpolate_lr(disp, labels)[6, 6])


def test_mismatch_takes_the_nearest_correct_pixel_of_each_ray():
    disp = np.full((7, 7), np.nan, np.float32)
    labels = np.full((7, 7), MISMATCH, np.uint8)
    disp[3, 4], disp[3, 6] = 5.0, 9.0  # both on the ray (0, 1): only the nearer one counts
    labels[3, 4] = labels[3, 6] = CORRECT
    assert interpolate_lr(disp, labels)[3, 3] == 5.0


# ---- independent references and hand-worked cases (mutation-testing round 2) ----

# the paper's 16 directions: the 8 neighbours and the 8 knight moves
_PAPER_DIRS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)] + [
    (sy * a, sx * b) for a, b in ((1, 2), (2, 1)) for sy in (-1, 1) for sx in (-1, 1)]


def _reference_lr_labels(dl, dr, tol, min_disp):
    h, w = dl.shape
    out = np.zeros((h, w), np.uint8)
    for y in range(h):
        for x in range(w):
            d = dl[y, x]
            if np.isfinite(d):
                xr = int(np.floor(x - d + 0.5))
                if 0 <= xr < w and abs(d - dr[y, xr]) <= tol:
                    continue
            # some candidate disparity d' >= min_disp whose right pixel x - d' agrees with it: a mismatch
            visible = any(abs(dp - dr[y, x - dp]) <= tol for dp in range(min_disp, x + 1) if 0 <= x - dp < w)
            out[y, x] = MISMATCH if visible else OCCLUSION
    return out


def _reference_interpolate(disp, labels, border=0):
    h, w = disp.shape
    out = disp.copy()
    for y in range(h):
        for x in range(w):
            if labels[y, x] == OCCLUSION:
                left = [disp[y, i] for i in range(x - 1, -1, -1) if labels[y, i] == CORRECT]
                right = [disp[y, i] for i in range(x + 1, w) if labels[y, i] == CORRECT]
                first, second = (right, left) if x < border else (left, right)
                out[y, x] = first[0] if first else (second[0] if second else np.nan)
            elif labels[y, x] == MISMATCH:
                vals = []
                for dy, dx in _PAPER_DIRS:
                    yy, xx = y + dy, x + dx
                    while 0 <= yy < h and 0 <= xx < w:
                        if labels[yy, xx] == CORRECT:
                            vals.append(disp[yy, xx])
                            break
                        yy, xx = yy + dy, xx + dx
                out[y, x] = sorted(vals)[len(vals) // 2] if vals else np.nan
    return out


def test_lr_labels_hand_worked_row():
    # right view constant 2; left 2 except a wrong 5 at x = 5 and a NaN at x = 6
    dr = np.full((1, 8), 2.0, np.float32)
    dl = np.array([[2, 2, 2, 2, 2, 5, np.nan, 2]], np.float32)
    # x = 0: x - 2 < 0 and no d' >= 0 reaches a right pixel with |d' - 2| <= 1 (d' = 0 only): occlusion
    # x = 1: d' = 1 (right pixel 0, disparity 2) passes with |1 - 2| == tolerance exactly: mismatch
    # x = 5: D_R(5 - 5) = 2 != 5, but d' = 2 passes: mismatch; x = 6 (NaN): d' = 2 passes: mismatch
    expected = np.array([[OCCLUSION, MISMATCH, CORRECT, CORRECT, CORRECT, MISMATCH, MISMATCH, CORRECT]])
    np.testing.assert_array_equal(lr_labels(dl, dr, 1.0, 0), expected)
    np.testing.assert_array_equal(lr_labels(dl, dr, 1.0, 1), expected)  # d' = 1 == min_disp is a candidate
    expected[0, 1] = OCCLUSION  # with the range starting at 2, d' = 1 is not a candidate
    np.testing.assert_array_equal(lr_labels(dl, dr, 1.0, 2), expected)
    with pytest.raises(StereoKitError, match="shape"):
        lr_labels(dl, dr[:, :7])


def test_lr_labels_agree_with_the_papers_definition():
    rng = np.random.default_rng(7)
    for tol, min_disp in ((1.0, 0), (0.0, 0), (1.0, 2)):
        dl = rng.integers(0, 6, (6, 14)).astype(np.float32)
        dr = rng.integers(0, 6, (6, 14)).astype(np.float32)
        dl[rng.random(dl.shape) < 0.1] = np.nan
        dr[rng.random(dr.shape) < 0.1] = np.nan
        np.testing.assert_array_equal(lr_labels(dl, dr, tol, min_disp), _reference_lr_labels(dl, dr, tol, min_disp))
    # half-pixel disparities and a fractional tolerance
    dl = rng.integers(0, 12, (6, 14)).astype(np.float32) / 2
    dr = rng.integers(0, 12, (6, 14)).astype(np.float32) / 2
    np.testing.assert_array_equal(lr_labels(dl, dr, 0.5, 0), _reference_lr_labels(dl, dr, 0.5, 0))


def test_occlusions_take_the_first_correct_pixel_to_the_left():
    disp = np.array([[9, 1, 8, 7, 3, 4]], np.float32)
    labels = np.array([[OCCLUSION, CORRECT, MISMATCH, OCCLUSION, OCCLUSION, CORRECT]], np.uint8)
    # x = 3, 4: moving left past the mismatch at x = 2 to the correct 1; x = 0: nothing to its left, the right's 1
    out = interpolate_lr(disp, labels)
    assert out[0, 0] == 1 and out[0, 3] == 1 and out[0, 4] == 1
    # inside the border band (x < 4) occlusions look right first: x = 3 takes 4; x = 4 is outside, takes 1
    out = interpolate_lr(disp, labels, border=4)
    assert out[0, 0] == 1 and out[0, 3] == 4 and out[0, 4] == 1
    out = interpolate_lr(disp, labels, border=3)  # x = 3 is no longer inside the band
    assert out[0, 3] == 1
    # no correct pixel on the row: NaN
    assert np.isnan(interpolate_lr(disp[:, :1], labels[:, :1])[0, 0])
    for bad in (1.5, -1, "2"):
        with pytest.raises(StereoKitError, match="border"):
            interpolate_lr(disp, labels, border=bad)


def test_mismatch_without_correct_pixel_on_any_ray_becomes_nan():
    disp = np.full((3, 3), 4.0, np.float32)
    labels = np.full((3, 3), OCCLUSION, np.uint8)  # occlusions are no source for a mismatch
    labels[1, 1] = MISMATCH
    assert np.isnan(interpolate_lr(disp, labels)[1, 1])


def test_interpolate_lr_agrees_with_the_papers_definition():
    rng = np.random.default_rng(3)
    for border in (0, 3):
        disp = (rng.random((9, 11)) * 20).astype(np.float32)
        labels = rng.choice(np.array([CORRECT, MISMATCH, OCCLUSION], np.uint8), size=disp.shape, p=[0.3, 0.4, 0.3])
        np.testing.assert_array_equal(interpolate_lr(disp, labels, border), _reference_interpolate(disp, labels, border))


def test_subpixel_parabola_with_min_disp_and_fractional_input():
    # costs for disparities 10..14 (min_disp 10); the convex triple at 12: 12 - (3 - 2) / (2 * 3) = 12 - 1 / 6
    vol = np.array([[[9.0, 2.0, 1.0, 3.0, 9.0]] * 3], np.float32)
    disp = np.array([[12.0, 11.6, 12.4]], np.float32)  # fractional input: the fit is at the rounded disparity
    out = subpixel_parabola(disp, vol, min_disp=10)
    np.testing.assert_allclose(out, np.full((1, 3), 12 - 1 / 6), atol=1e-5)
    # a disparity rounding to the range's first value (10) has no C(d-1): kept
    assert subpixel_parabola(np.array([[10.2]], np.float32), vol[:, :1], min_disp=10)[0, 0] == np.float32(10.2)


def test_subpixel_parabola_offset_bound():
    # offsets below a pixel move the disparity, even past half a pixel: C = (0, 1, 6): 6 / (2 * 4) = 0.75
    vol = np.array([[[0.0, 1.0, 6.0], [6.0, 1.0, 0.0]]], np.float32)
    out = subpixel_parabola(np.array([[1.0, 1.0]], np.float32), vol)
    np.testing.assert_allclose(out, [[0.25, 1.75]], atol=1e-6)
    # an offset of exactly one pixel (C = (0, 1, 4): 4 / (2 * 2) = 1) is outside the open bound: kept
    vol = np.array([[[0.0, 1.0, 4.0], [4.0, 1.0, 0.0]]], np.float32)
    np.testing.assert_array_equal(subpixel_parabola(np.array([[1.0, 1.0]], np.float32), vol), [[1.0, 1.0]])


def _reference_thresholded_gaussian(d, sigma, t):
    r = int(np.ceil(3 * sigma))
    h, w = d.shape
    out = d.astype(np.float64).copy()
    for y in range(h):
        for x in range(w):
            if np.isnan(d[y, x]):
                continue
            s = ws = 0.0
            for yy in range(max(0, y - r), min(h, y + r + 1)):
                for xx in range(max(0, x - r), min(w, x + r + 1)):
                    if abs(float(d[yy, xx]) - float(d[y, x])) < t:  # NaN: False
                        wt = np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma**2))
                        s, ws = s + wt * d[yy, xx], ws + wt
            out[y, x] = s / ws
    return out


@pytest.mark.parametrize("sigma, t", [(1.0, 4.0), (0.9, 2.5), (1.4, np.inf)])
def test_thresholded_gaussian_agrees_with_the_papers_definition(sigma, t):
    rng = np.random.default_rng(5)
    d = (rng.random((10, 12)) * 8).astype(np.float32)
    d[rng.random(d.shape) < 0.1] = np.nan
    np.testing.assert_allclose(thresholded_gaussian(d, sigma, t), _reference_thresholded_gaussian(d, sigma, t),
                               rtol=1e-5, equal_nan=True)


def test_thresholded_gaussian_reaches_three_sigma():
    # sigma 1: radius 3; a single different pixel 3 px away (within threshold) pulls the centre
    d = np.zeros((1, 7), np.float32)
    d[0, 6] = 1.0
    w3 = np.exp(-4.5)
    expected = w3 / sum(np.exp(-k * k / 2) for k in range(-3, 4))
    assert thresholded_gaussian(d, 1.0, 2.0)[0, 3] == pytest.approx(expected, rel=1e-5)


def test_thresholded_gaussian_threshold_must_be_positive():
    d = np.zeros((2, 2), np.float32)
    for bad in (0, -1.0, np.nan, "1", True):
        with pytest.raises(StereoKitError, match="threshold"):
            thresholded_gaussian(d, 1.0, bad)


def test_post_processing_leaves_its_inputs_alone():
    disp = np.array([[1.0, 2.0, 3.0, 2.0]], np.float32)
    labels = np.array([[CORRECT, OCCLUSION, MISMATCH, CORRECT]], np.uint8)
    vol = np.array([[[5.0, 2.0, 1.0, 3.0]] * 4], np.float32)
    before = disp.copy()
    interpolate_lr(disp, labels)
    subpixel_parabola(disp, vol)
    thresholded_gaussian(disp, 1.0, 5.0)
    np.testing.assert_array_equal(disp, before)
