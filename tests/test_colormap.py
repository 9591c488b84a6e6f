"""Colour maps and error images against values computed by hand from the KITTI devkit's formulas."""

from __future__ import annotations

import cv2
import matplotlib
import numpy as np
import pytest

from eval.colormap import (
    BAD_COLOR,
    BAD_OCCLUDED_COLOR,
    bad_pixel_map,
    colorize_disparity,
    error_image,
    kitti_error_colors,
    normalized_error,
    write_png,
)
from stereokit.errors import StereoKitError

NAN = np.nan


def row(*values) -> np.ndarray:
    return np.array([values], dtype=np.float32)


# Devkit weights 114,185,114,174,114,185,114 sum to 1000, so with a maximum of 1000 the bins start at
# 0, 114, 299, 413, 587, 701, 886 and end at 1000.
@pytest.mark.parametrize(
    "d, rgb",
    [
        (0, (0, 0, 0)),  # black
        (57, (0, 0, 127)),  # halfway black -> blue: 0.5 * 255 = 127.5 truncated
        (114, (0, 0, 255)),  # blue
        (299, (255, 0, 0)),  # red
        (413, (255, 0, 255)),  # magenta
        (500, (127, 127, 127)),  # halfway magenta -> green
        (587, (0, 255, 0)),  # green
        (1000, (255, 255, 255)),  # white at the maximum
        (1500, (255, 255, 255)),  # above the maximum: clipped to white
    ],
)
def test_kitti_colors_at_bin_edges(d, rgb):
    img = colorize_disparity(row(d), max_disp=1000)
    assert tuple(int(c) for c in img[0, 0]) == rgb


@pytest.mark.parametrize("d, rgb", [(701, (0, 255, 255)), (886, (255, 255, 0)), (793.5, (127, 255, 127))])
def test_kitti_colors_float_edges_within_one(d, rgb):
    # 0.701 and 0.886 are not exact in float32; the devkit's truncation can give 254 there
    img = colorize_disparity(row(d), max_disp=1000)
    assert np.abs(img[0, 0].astype(int) - rgb).max() <= 1


def test_invalid_pixels_black_and_scale_from_gt():
    d = row(NAN, np.inf, -1, 30, 60)
    img = colorize_disparity(d, max_disp=60)
    assert (img[0, :3] == 0).all()
    assert tuple(img[0, 4]) == (255, 255, 255)
    # 30 / 60 = 0.5 -> grey halfway between magenta and green
    assert tuple(img[0, 3]) == (127, 127, 127)
    # default scale: the map's own maximum
    assert tuple(colorize_disparity(row(5, 10))[0, 1]) == (255, 255, 255)


def test_perceptual_colormap_matches_matplotlib():
    img = colorize_disparity(row(0, 50, 100, NAN), max_disp=100, cmap="turbo")
    lut = matplotlib.colormaps["turbo"].resampled(256)
    for k, v in ((0, 0.0), (2, 1.0)):
        expected = (np.array(lut(v)[:3]) * 255 + 0.5).astype(np.uint8)
        assert (img[0, k] == expected).all()
    assert (img[0, 3] == 0).all()
    with pytest.raises(StereoKitError, match="colour map"):
        colorize_disparity(row(1), cmap="no-such-map")


def test_normalized_error_is_kitti_d1_scale():
    gt = row(30, 100, 100, 0)
    pred = gt + row(3, 4, 5, 0)
    # gt 30: min(3/3, 20*3/30) = 1 (outlier threshold); gt 100: 4 px off is 0.8 (5 % rule), 5 px is 1; 0/0 -> 0
    assert normalized_error(pred, gt).tolist() == [[1.0, pytest.approx(0.8), 1.0, 0.0]]


@pytest.mark.parametrize(
    "err, rgb",
    [
        (0.0, (49, 54, 149)),
        (3 / 16 - 1e-4, (49, 54, 149)),
        (3 / 16, (69, 117, 180)),  # n = 1/16
        (3 / 8, (116, 173, 209)),
        (0.75, (171, 217, 233)),
        (1.5, (224, 243, 248)),
        (2.99, (224, 243, 248)),  # just below the D1 threshold
        (3.0, (254, 224, 144)),  # n = 1: D1 outlier
        (6.0, (253, 174, 97)),
        (12.0, (244, 109, 67)),
        (24.0, (215, 48, 39)),
        (48.0, (165, 0, 38)),  # n = 16
        (500.0, (165, 0, 38)),
    ],
)
def test_error_image_log_colors(err, rgb):
    gt = np.full((3, 3), 30.0, np.float32)  # 20 e / 30 > e / 3, so n = e / 3
    pred = gt + np.float32(err)
    img = error_image(pred, gt)
    assert tuple(int(c) for c in img[1, 1]) == rgb


def test_error_image_occluded_half_bright_no_gt_black_and_nan():
    gt = np.full((1, 4), 30.0, np.float32)
    gt[0, 3] = NAN
    pred = gt + row(3, 3, NAN, 0)
    nonocc = np.array([[True, False, True, True]])
    img = error_image(pred, gt, nonocc, fill=False)
    assert tuple(img[0, 0]) == (254, 224, 144)
    assert tuple(img[0, 1]) == (127, 112, 72)  # devkit: val *= 0.5, truncated
    assert tuple(img[0, 2]) == (165, 0, 38)  # no estimate and no fill: worst colour
    assert tuple(img[0, 3]) == (0, 0, 0)  # no ground truth
    # with the evaluator's fill the NaN takes the smaller neighbour (33 -> error 3 -> outlier colour)
    assert tuple(error_image(pred, gt, nonocc)[0, 2]) == (254, 224, 144)


def test_error_maps_draw_what_the_evaluator_scores():
    from eval import evaluate_pair

    gt = np.full((3, 6), 10.0, np.float32)
    left = np.full(gt.shape, 100, np.uint8)
    for bad in (np.inf, -np.inf, -2.0):  # invalid estimates, like NaN: filled from the valid 10s
        pred = gt.copy()
        pred[:, 2] = bad
        assert evaluate_pair(pred, gt).all["D1-all"] == 0.0
        np.testing.assert_array_equal(error_image(pred, gt), error_image(gt, gt))
        np.testing.assert_array_equal(bad_pixel_map(pred, gt, left), bad_pixel_map(gt, gt, left))
    # a raw Middlebury mask (255 non-occluded, 128 occluded) halves the occluded pixels only
    mask = np.full(gt.shape, 255, np.uint8)
    mask[:, 0] = 128
    img = error_image(gt, gt, nonocc=mask)
    assert (img[:, 0] == (np.array((49, 54, 149)) * 0.5).astype(np.uint8)).all()
    assert (img[:, 1:] == (49, 54, 149)).all()


def test_error_image_3x3_blocks_like_devkit():
    gt = np.full((5, 6), 30.0, np.float32)
    pred = gt + np.array([0, 1, 3, 4, 10, 0.2], np.float32)[None, :]
    img = error_image(pred, gt, blocks=True)
    # interior sources only, later (right/lower) blocks overwrite earlier ones
    reds = img[:, :, 0]
    assert (reds[:, 0] == 171).all()  # painted by column 1 (error 1 -> n 1/3)
    assert (reds[:, 1] == 254).all() and (reds[:, 3] == 253).all()  # column 1 overwritten by column 2's block
    assert (reds[:, 5] == 253).all()  # border column 5 is never a source: painted by column 4


def test_kitti_error_colors_nan_is_worst():
    assert tuple(kitti_error_colors(np.array([NAN], np.float32))[0]) == (165, 0, 38)


def test_bad_pixel_map_colours():
    gt = np.full((2, 3), 10.0, np.float32)
    gt[1, 2] = NAN
    pred = gt + np.array([[0, 2.5, 2.0], [3.0, 1.0, 0.0]], np.float32)
    nonocc = np.array([[True, True, True], [False, True, True]])
    left = np.full((2, 3), 100, np.uint8)
    img = bad_pixel_map(pred, gt, left, nonocc)
    assert tuple(img[0, 0]) == (114, 114, 114)  # good: dimmed gray 64 + 100 / 2
    assert tuple(img[0, 1]) == BAD_COLOR  # 2.5 px off
    assert tuple(img[0, 2]) == (114, 114, 114)  # exactly 2 px is not bad-2.0
    assert tuple(img[1, 0]) == BAD_OCCLUDED_COLOR
    assert tuple(img[1, 2]) == (0, 0, 0)  # no ground truth
    with pytest.raises(StereoKitError, match="shapes differ"):
        bad_pixel_map(pred, gt, np.zeros((3, 3), np.uint8))


def test_write_png_round_trip_and_atomic(tmp_path):
    img = np.zeros((4, 5, 3), np.uint8)
    img[..., 0] = 200  # red channel: checks the RGB -> BGR swap
    path = write_png(tmp_path / "sub" / "a.png", img)
    back = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert (back == img).all()
    assert [p.name for p in path.parent.iterdir()] == ["a.png"]  # no temporary left behind
    with pytest.raises(StereoKitError, match="uint8"):
        write_png(tmp_path / "b.png", img.astype(np.float32))
    assert not (tmp_path / "b.png").exists()


def test_exported_from_eval():
    import eval

    assert eval.colorize_disparity is colorize_disparity and eval.error_image is error_image


def test_max_disp_of_one_takes_the_maps_maximum():
    d = np.array([[5.0, 10.0]], np.float32)
    # max_disp 1 (<= 1): scale = the map's maximum 10 -> 5 / 10 = 0.5 is the grey between magenta and green,
    # 10 / 10 = 1 is white (with a scale of 1 both would be clipped to white)
    img = colorize_disparity(d, max_disp=1.0)
    assert tuple(int(c) for c in img[0, 0]) == (127, 127, 127)
    assert tuple(int(c) for c in img[0, 1]) == (255, 255, 255)
    np.testing.assert_array_equal(img, colorize_disparity(d))


def devkit_false_color(d: float, max_val: float) -> tuple[int, int, int]:
    """One pixel of the KITTI devkit's writeColor (io_disp.h), scalar by scalar in the devkit's C++ types: the tables
    and `val` in float, `float w = 1.0 - (val - cumsum[i]) * weights[i]` (product in float, difference in double,
    then rounded to float), the channel `(w * map[i][c] + (1.0 - w) * map[i + 1][c]) * 255.0` in double, truncated."""
    f = np.float32
    cmap = [[0, 0, 0, 114], [0, 0, 1, 185], [1, 0, 0, 114], [1, 0, 1, 174],
            [0, 1, 0, 114], [0, 1, 1, 185], [1, 1, 0, 114], [1, 1, 1, 0]]  # fmt: skip
    total = f(0)
    for entry in cmap:
        total = f(total + f(entry[3]))
    weights, cumsum = [], [f(0)]
    for i in range(7):
        weights.append(f(total / f(cmap[i][3])))
        cumsum.append(f(cumsum[i] + f(f(cmap[i][3]) / total)))
    val = min(max(f(f(d) / f(max_val)), f(0)), f(1))
    i = 0
    while i < 7 and not val < cumsum[i + 1]:
        i += 1
    if i == 7:  # val == 1: the devkit reads past its tables here and draws white
        return (255, 255, 255)
    w = f(1.0 - float(f(f(val - cumsum[i]) * weights[i])))
    return tuple(int((float(f(w * f(cmap[i][c]))) + (1.0 - float(w)) * cmap[i + 1][c]) * 255.0) for c in range(3))


@pytest.mark.parametrize(
    "d, max_disp, rgb",
    [
        # from compiling the devkit's writeColor arithmetic with g++: keeping w in double instead of the devkit's
        # float gives (3, 0, 251) and (53, 0, 201) here
        (29.625, 255.0, (2, 0, 252)),
        (38.875, 255.0, (52, 0, 202)),
    ],
)
def test_kitti_colors_round_w_to_float_like_the_devkit(d, max_disp, rgb):
    assert devkit_false_color(d, max_disp) == rgb
    assert tuple(int(c) for c in colorize_disparity(row(d), max_disp=max_disp)[0, 0]) == rgb


def test_kitti_colors_equal_the_devkit_arithmetic_on_a_sixteenth_pixel_grid():
    for max_disp in (255.0, 100.0):
        d = np.arange(0, max_disp * 16 + 1, dtype=np.float32)[None, :] / np.float32(16)
        got = colorize_disparity(d, max_disp=max_disp)[0]
        expected = np.array([devkit_false_color(float(v), max_disp) for v in d[0]], dtype=np.uint8)
        bad = np.flatnonzero((got != expected).any(axis=1))
        assert bad.size == 0, f"max {max_disp}: d = {d[0, bad[:5]]} got {got[bad[:5]]} devkit {expected[bad[:5]]}"


def test_default_scale_is_the_valid_maximum_but_at_least_one():
    # devkit writeColor: max_val starts at 1 and only valid disparities raise it
    img = colorize_disparity(row(0.5, 0.25))
    assert tuple(int(c) for c in img[0, 0]) == (127, 127, 127)  # 0.5 / 1 (not 0.5 / 0.5 = white)
    img = colorize_disparity(row(5, 10, np.inf, NAN, -30))
    assert tuple(int(c) for c in img[0, 1]) == (255, 255, 255)  # scale 10: inf does not set the scale
    assert tuple(int(c) for c in img[0, 0]) == (127, 127, 127)
    assert (img[0, 2:] == 0).all()


def test_perceptual_colormap_top_of_the_range_like_matplotlib():
    lut = matplotlib.colormaps["turbo"].resampled(256)
    img = colorize_disparity(row(99.9, 50), max_disp=100, cmap="turbo")
    for k, v in ((0, 0.999), (1, 0.5)):
        expected = (np.array(lut(v)[:3]) * 255 + 0.5).astype(np.uint8)  # matplotlib's own entry for v
        assert (img[0, k] == expected).all()


def test_error_image_half_brightness_truncates_odd_channels():
    gt = np.full((1, 2), 30.0, np.float32)
    pred = gt + np.float32(1.0)  # n = 1/3: colour (171, 217, 233)
    img = error_image(pred, gt, nonocc=np.array([[True, False]]))
    assert tuple(int(c) for c in img[0, 0]) == (171, 217, 233)
    assert tuple(int(c) for c in img[0, 1]) == (85, 108, 116)  # devkit val *= 0.5 on uint8: 85.5 -> 85


def test_error_image_blocks_paint_around_a_sparse_point():
    # a lone LiDAR point: the devkit paints its 3x3 block, pixels without ground truth included; nothing else
    gt = np.full((5, 5), NAN, np.float32)
    gt[2, 2] = 30.0
    pred = np.full((5, 5), 33.0, np.float32)  # error 3 px: n = 1
    img = error_image(pred, gt, blocks=True)
    assert (img[1:4, 1:4] == (254, 224, 144)).all()
    ring = np.ones((5, 5), bool)
    ring[1:4, 1:4] = False
    assert (img[ring] == 0).all()
    plain = error_image(pred, gt)
    assert tuple(int(c) for c in plain[2, 2]) == (254, 224, 144) and plain.sum() == sum((254, 224, 144))


def test_bad_pixel_map_unfilled_invalid_is_bad_and_no_mask_means_nonoccluded():
    gt = np.full((1, 3), 10.0, np.float32)
    left = np.full((1, 3), 100, np.uint8)
    pred = row(10, NAN, 15)
    unfilled = bad_pixel_map(pred, gt, left, fill=False)
    assert tuple(unfilled[0, 1]) == BAD_COLOR  # no estimate, no fill: bad
    assert tuple(unfilled[0, 2]) == BAD_COLOR  # without a mask every pixel is non-occluded: red
    assert tuple(unfilled[0, 0]) == (114, 114, 114)
    filled = bad_pixel_map(pred, gt, left)
    assert tuple(filled[0, 1]) == (114, 114, 114)  # filled with min(10, 15) = 10: good


def test_bad_pixel_map_reads_the_middlebury_mask_encoding():
    gt = np.full((1, 3), 10.0, np.float32)
    pred = gt + np.float32(5.0)  # every pixel bad
    left = np.full((1, 3), 100, np.uint8)
    mask = np.array([[255, 128, 255]], np.uint8)  # 128 = occluded
    img = bad_pixel_map(pred, gt, left, nonocc=mask)
    assert [tuple(int(c) for c in px) for px in img[0]] == [BAD_COLOR, BAD_OCCLUDED_COLOR, BAD_COLOR]
