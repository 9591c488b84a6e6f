"""OpenCV wrappers: fixed-point conversion, the multiple of 16, gray/colour, min_disp, bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import stereokit
from baselines.opencv import from_opencv_disparity, round_up_16
from stereokit import StereoKitError

OPENCV = ["opencv-bm", "opencv-sgbm", "opencv-sgbm-hh", "opencv-sgbm-3way"]


def scene(d: int, h: int = 48, w: int = 128, seed: int = 0):
    """Smoothed random uint8 RGB texture shifted by d: right(x - d) = left(x)."""
    import cv2

    rng = np.random.default_rng(seed)
    tex = rng.integers(0, 256, (h, w + abs(d) + 8, 3), dtype=np.uint8)
    tex = cv2.GaussianBlur(tex, (3, 3), 0.7)
    if d >= 0:
        return tex[:, :w], tex[:, d : d + w]
    return tex[:, -d : -d + w], tex[:, :w]


def test_round_up_16():
    assert [round_up_16(n) for n in (1, 15, 16, 17, 64, 65)] == [16, 16, 16, 32, 64, 80]


def test_fixed_point_conversion():
    raw = np.array([[16 * 5 + 8, -16, 0, 16 * 20, 16 * 19 + 15, 4]], np.int16)
    out = from_opencv_disparity(raw, min_disp=0, max_disp=20)
    assert out.dtype == np.float32
    assert out[0, 0] == 5.5 and np.isnan(out[0, 1]) and out[0, 2] == 0.0
    assert np.isnan(out[0, 3])  # beyond the requested range (OpenCV searched the rounded-up one)
    assert out[0, 4] == 19.9375 and out[0, 5] == 0.25
    neg = from_opencv_disparity(np.array([[-16 * 5, -16 * 6, -16 * 3 + 4]], np.int16), min_disp=-5, max_disp=8)
    assert neg[0, 0] == -5 and np.isnan(neg[0, 1]) and neg[0, 2] == -2.75
    with pytest.raises(StereoKitError):
        from_opencv_disparity(np.zeros((2, 2), np.float32), 0, 16)


@pytest.mark.parametrize("method", OPENCV)
def test_registered_and_exact_on_shifted_texture(method):
    assert method in stereokit.matchers
    left, right = scene(9)
    disp = stereokit.match(left, right, method=method, max_disp=20)  # OpenCV runs 32 and we crop to 20
    assert disp.dtype == np.float32 and disp.shape == left.shape[:2]
    inner = disp[12:-12, 40:-12]
    assert np.isfinite(inner).mean() > 0.9
    assert np.nanmedian(inner) == 9.0
    assert np.nanmax(disp) < 20


@pytest.mark.parametrize("method", OPENCV)
def test_disparities_beyond_max_disp_become_invalid(method):
    left, right = scene(25)
    disp = stereokit.match(left, right, method=method, max_disp=20)
    inner = disp[12:-12, 50:-12]
    assert not np.any(inner >= 20)
    full = stereokit.match(left, right, method=method, max_disp=32)
    assert np.nanmedian(full[12:-12, 50:-12]) == 25.0


@pytest.mark.parametrize("method", OPENCV)
def test_gray_colour_uint16_float_and_min_disp(method):
    left, right = scene(-4)
    gray_l, gray_r = left.mean(axis=2).astype(np.uint8), right.mean(axis=2).astype(np.uint8)
    for a, b in [(left, right), (gray_l, gray_r), (left.astype(np.uint16) * 257, right.astype(np.uint16) * 257),
                 (left.astype(np.float32) / 255, right.astype(np.float32) / 255)]:
        disp = stereokit.match(a, b, method=method, max_disp=16, min_disp=-8)
        assert np.nanmedian(disp[12:-12, 40:-12]) == -4.0
        assert np.nanmin(disp) >= -8


def test_narrow_image_is_padded_not_rejected():
    left, right = scene(3, w=30)  # StereoBM needs 16 + 21 + 1 columns: padded to 38 and cropped back
    disp = stereokit.match(left, right, method="opencv-bm", max_disp=10)
    assert disp.shape == (48, 30) and np.nanmedian(disp) == 3.0
    left, right = scene(3, w=20)  # SGBM needs 16 + 5 + 1
    disp = stereokit.match(left, right, method="opencv-sgbm", max_disp=3)
    assert disp.shape == (48, 20) and abs(np.nanmedian(disp) - 3) < 0.1


@pytest.mark.parametrize("method", OPENCV)
def test_padding_does_not_match_negative_disparities_against_copied_columns(method):
    left, right = scene(-4, w=26)  # needs 16 + block + 8 + 1 columns: padded
    disp = stereokit.match(left, right, method=method, max_disp=16, min_disp=-8)
    assert np.isnan(disp[:, 26 - 8 :]).all()  # x - d would fall right of the image, as OpenCV leaves them
    assert np.nanmedian(disp) == -4.0


def test_options_and_bad_input():
    left, right = scene(5)
    stereokit.match(left, right, method="opencv-sgbm", max_disp=16, block_size=3, P1=10, P2=100, color=False)
    with pytest.raises(StereoKitError, match="P1"):
        stereokit.match(left, right, method="opencv-sgbm", max_disp=16, P1=100, P2=10)
    with pytest.raises(StereoKitError, match="block_size"):
        stereokit.match(left, right, method="opencv-bm", max_disp=16, block_size=4)
    with pytest.raises(StereoKitError, match="wider than the image"):
        stereokit.match(left, right, method="opencv-sgbm-hh", max_disp=128)
    with pytest.raises(StereoKitError, match="unknown option"):
        stereokit.match(left, right, method="opencv-bm", max_disp=16, P9=3)


@pytest.mark.parametrize("method", OPENCV)
def test_uint8_results_are_opencvs_bit_for_bit_and_float_uint16_convert_the_same(method):
    import cv2

    left, right = scene(7, w=96)
    disp = stereokit.match(left, right, method=method, max_disp=32)
    if method == "opencv-bm":
        matcher = cv2.StereoBM_create(numDisparities=32, blockSize=21)
        raw = matcher.compute(cv2.cvtColor(left, cv2.COLOR_RGB2GRAY), cv2.cvtColor(right, cv2.COLOR_RGB2GRAY))
    else:
        mode = {"opencv-sgbm": cv2.STEREO_SGBM_MODE_SGBM, "opencv-sgbm-hh": cv2.STEREO_SGBM_MODE_HH,
                "opencv-sgbm-3way": cv2.STEREO_SGBM_MODE_SGBM_3WAY}[method]
        matcher = cv2.StereoSGBM_create(0, 32, 5, P1=8 * 3 * 25, P2=32 * 3 * 25, uniquenessRatio=10,
                                        speckleWindowSize=100, speckleRange=2, mode=mode)
        raw = matcher.compute(left, right)
    expected = np.where(raw >= 0, raw / 16.0, np.nan).astype(np.float32)
    assert np.isfinite(disp).mean() > 0.2
    np.testing.assert_array_equal(disp, expected)
    for a, b in [(left.astype(np.float32) / 255, right.astype(np.float32) / 255),
                 (left.astype(np.uint16) * 257, right.astype(np.uint16) * 257)]:
        np.testing.assert_array_equal(stereokit.match(a, b, method=method, max_disp=32), disp)


def test_one_8bit_conversion_from_the_pairs_float_images():
    from baselines.opencv import _images
    from stereokit import StereoPair

    rng = np.random.default_rng(1)
    left, right = rng.random((16, 40, 3), dtype=np.float32), rng.random((16, 40, 3), dtype=np.float32)
    pair = StereoPair(left, right)
    colour_l, colour_r, cn = _images(pair, color=True)
    assert cn == 3 and colour_l.dtype == np.uint8
    np.testing.assert_array_equal(colour_l, np.clip(np.rint(pair.left_float * 255), 0, 255).astype(np.uint8))
    np.testing.assert_array_equal(colour_r, np.clip(np.rint(pair.right_float * 255), 0, 255).astype(np.uint8))
    gray_l, _, cn = _images(pair, color=False)  # StereoBM's and color=False's gray: cvtColor of the same 8 bits
    assert cn == 1 and gray_l.shape == (16, 40)
    import cv2

    np.testing.assert_array_equal(gray_l, cv2.cvtColor(colour_l, cv2.COLOR_RGB2GRAY))


@pytest.mark.parametrize("shape", [(20, 80), (5, 80), (1, 80), (5, 5)])
def test_bm_refuses_images_not_taller_than_its_block(shape):
    left, right = scene(3, h=48, w=80)
    h, w = shape
    with pytest.raises(StereoKitError, match=rf"block_size 21 .* {h} x {w}"):
        stereokit.match(left[:h, :w], right[:h, :w], method="opencv-bm", max_disp=min(16, w - 1))


def test_bm_smaller_block_and_sgbm_match_short_crops():
    left, right = scene(3, h=48, w=80)
    with pytest.raises(StereoKitError, match=r"odd block_size in \[5, 19\]"):
        stereokit.match(left[:20], right[:20], method="opencv-bm", max_disp=16)
    disp = stereokit.match(left[:20], right[:20], method="opencv-bm", max_disp=16, block_size=15)
    assert np.nanmedian(disp) == 3.0
    for method in OPENCV[1:]:
        for h in (20, 5, 1):  # SGBM matches any height (speckle window off: one row has fewer than 100 pixels)
            disp = stereokit.match(left[:h], right[:h], method=method, max_disp=16, speckle_window_size=0)
            assert disp.shape == (h, 80) and np.isfinite(disp).mean() > 0.3 and np.nanmedian(disp) == 3.0


BAD_OPTIONS = [
    ("opencv-bm", dict(pre_filter_size=4), "pre_filter_size"),
    ("opencv-bm", dict(pre_filter_size=257), "pre_filter_size"),
    ("opencv-bm", dict(pre_filter_cap=0), "pre_filter_cap"),
    ("opencv-bm", dict(pre_filter_cap=100), "pre_filter_cap"),
    ("opencv-bm", dict(texture_threshold=-1), "texture_threshold"),
    ("opencv-bm", dict(uniqueness_ratio=-5), "uniqueness_ratio"),
    ("opencv-bm", dict(speckle_range=0.5), "speckle_range"),
    ("opencv-bm", dict(speckle_range=-1), "speckle_range"),
    ("opencv-bm", dict(speckle_window_size=-1), "speckle_window_size"),
    ("opencv-bm", dict(disp12_max_diff=1.5), "disp12_max_diff"),
    ("opencv-bm", dict(block_size=5.5), "block_size"),
    ("opencv-bm", dict(block_size=257), "block_size"),
    ("opencv-bm", dict(texture_threshold=2**40), "texture_threshold"),
    ("opencv-bm", dict(pre_filter_type="sobel"), "pre_filter_type"),
    ("opencv-sgbm", dict(uniqueness_ratio=-5), "uniqueness_ratio"),  # OpenCV would silently use 10
    ("opencv-sgbm", dict(pre_filter_cap=-1), "pre_filter_cap"),
    ("opencv-sgbm", dict(pre_filter_cap=128), "pre_filter_cap"),  # wraps in OpenCV's 8-bit table
    ("opencv-sgbm", dict(speckle_range=0.5), "speckle_range"),
    ("opencv-sgbm", dict(speckle_range=-2), "speckle_range"),
    ("opencv-sgbm", dict(disp12_max_diff=1.5), "disp12_max_diff"),
    ("opencv-sgbm", dict(block_size=4), "block_size"),
    ("opencv-sgbm", dict(block_size="5"), "block_size"),
    ("opencv-sgbm", dict(block_size=True), "block_size"),
    ("opencv-sgbm", dict(P1=-1, P2=10), "P1"),
    ("opencv-sgbm", dict(P1=0.5, P2=10), "P1"),
    ("opencv-sgbm", dict(P1=10, P2=10), "P1 < P2"),
    ("opencv-sgbm", dict(P1=10, P2=40000), "16-bit"),  # OpenCV truncates P2 and returns garbage
    ("opencv-sgbm-hh", dict(block_size=21), "default P2"),  # 32 * 3 * 21**2 = 42336
    ("opencv-sgbm-3way", dict(color="no"), "color"),
    # a ratio of 100 % rejects every pixel and MODE_SGBM_3WAY divides by 100 - ratio (the process dies of SIGFPE)
    *[(m, dict(uniqueness_ratio=100), r"uniqueness_ratio.*\[0, 99\]") for m in OPENCV],
    # speckle ranges and BM's LR threshold are compared with 16-bit (x16 fixed-point) values: larger ones wrap
    ("opencv-sgbm", dict(speckle_range=2048), r"speckle_range.*\[0, 2047\]"),
    ("opencv-sgbm-hh", dict(speckle_range=2**31 - 1), r"speckle_range.*\[0, 2047\]"),
    ("opencv-bm", dict(speckle_range=2**15), r"speckle_range.*\[0, 32767\]"),
    ("opencv-bm", dict(disp12_max_diff=2**27), r"disp12_max_diff.*<= 134217727"),
]


@pytest.mark.parametrize("method, params, match", BAD_OPTIONS)
def test_bad_options_raise_naming_the_option(method, params, match):
    left, right = scene(5)
    with pytest.raises(StereoKitError, match=match):
        stereokit.match(left, right, method=method, max_disp=16, **params)


@pytest.mark.parametrize("method", OPENCV)
def test_integral_float_options_are_accepted_as_ints(method):
    left, right = scene(5)
    params = dict(block_size=7, speckle_range=2, disp12_max_diff=1, uniqueness_ratio=5, speckle_window_size=20)
    if method == "opencv-bm":
        params.update(pre_filter_size=11, pre_filter_cap=20, texture_threshold=5)
    else:
        params.update(P1=100, P2=1000, pre_filter_cap=20)
    as_int = stereokit.match(left, right, method=method, max_disp=16, **params)
    as_float = stereokit.match(left, right, method=method, max_disp=16, **{k: float(v) for k, v in params.items()})
    np.testing.assert_array_equal(as_float, as_int)
    assert np.nanmedian(as_int) == 5.0


def test_sgbm_default_penalties_fit_with_gray_or_explicit_values():
    left, right = scene(5)
    for params in (dict(color=False), dict(P1=2000, P2=8000)):
        disp = stereokit.match(left, right, method="opencv-sgbm", max_disp=16, block_size=21, **params)
        assert np.nanmedian(disp[12:-12, 30:-12]) == 5.0


@pytest.mark.parametrize("method", OPENCV)
@pytest.mark.parametrize("width, max_disp, searched", [(64, 50, 64), (64, 63, 64), (40, 39, 48), (40, 33, 48)])
def test_rounded_range_without_matchable_columns_raises(method, width, max_disp, searched):
    left, right = scene(3, w=width)
    with pytest.raises(StereoKitError, match=rf"multiple of 16.*\[0, {searched}\).*{width} px wide"):
        stereokit.match(left, right, method=method, max_disp=max_disp)


@pytest.mark.parametrize("method", OPENCV[1:])
def test_largest_rounded_range_that_fits_still_matches(method):
    left, right = scene(3, w=64)
    with pytest.raises(StereoKitError, match="max_disp <= 48"):
        stereokit.match(left, right, method=method, max_disp=49)
    disp = stereokit.match(left, right, method=method, max_disp=47)  # OpenCV searches 48: columns 48..63 remain
    assert np.isfinite(disp[:, 48:]).mean() > 0.5 and np.isnan(disp[:, :48]).all()
    assert np.nanmedian(disp) == 3.0 and np.nanmax(disp) < 47


def test_bm_counts_its_block_border_in_the_rounded_range():
    left, right = scene(3, w=40)
    with pytest.raises(StereoKitError, match="block_size // 2 = 10"):
        stereokit.match(left, right, method="opencv-bm", max_disp=20)  # 32 + 10 columns lost of 40
    disp = stereokit.match(left, right, method="opencv-bm", max_disp=20, block_size=5)
    assert np.nanmedian(disp) == 3.0


def _scene(d: int, h: int = 48, w: int = 128, seed: int = 0):
    rng = np.random.default_rng(seed)
    tex = rng.integers(0, 256, (h, w + abs(d) + 8, 3), dtype=np.uint8)
    tex = cv2.GaussianBlur(tex, (3, 3), 0.7)
    return tex[:, :w], tex[:, d : d + w]


@pytest.mark.parametrize("method, mode", [("opencv-sgbm", cv2.STEREO_SGBM_MODE_SGBM),
                                          ("opencv-sgbm-3way", cv2.STEREO_SGBM_MODE_SGBM_3WAY)])
def test_positive_min_disp_keeps_the_right_border_columns(method, mode):
    left, right = _scene(6)
    disp = stereokit.match(left, right, method=method, max_disp=16, min_disp=2)
    # the image is wide enough for OpenCV (no padding): the answer is OpenCV's own output / 16, every column
    raw = cv2.StereoSGBM_create(minDisparity=2, numDisparities=16, blockSize=5, P1=8 * 3 * 25, P2=32 * 3 * 25,
                                disp12MaxDiff=0, preFilterCap=0, uniquenessRatio=10, speckleWindowSize=100,
                                speckleRange=2, mode=mode).compute(left, right)
    ref = raw.astype(np.float32) / 16
    ref[raw < 2 * 16] = np.nan
    np.testing.assert_array_equal(disp[:, -4:], ref[:, -4:])
    # and the true disparity 6 is found there
    assert np.isfinite(disp[12:-12, -2:]).all() and np.abs(disp[12:-12, -2:] - 6).max() <= 0.5


def test_largest_accepted_limits_still_run():
    left, right = scene(5)
    for method in OPENCV:
        params = dict(uniqueness_ratio=99)
        params["speckle_range"] = 32767 if method == "opencv-bm" else 2047
        disp = stereokit.match(left, right, method=method, max_disp=16, **params)
        assert disp.shape == left.shape[:2]


def test_bm_speckle_range_is_in_sixteenths_of_a_pixel():
    # a 20x20 square 2 px nearer than the background: StereoBM joins it to the background (so keeps it, as part of a
    # large region) only when the range reaches 2 * 16 = 32 fixed-point units; SGBM's range is in pixels
    rng = np.random.default_rng(0)
    h, w = 80, 120
    tex = rng.integers(0, 256, (h, w), dtype=np.uint8)
    D = np.full((h, w), 8)
    D[30:50, 50:70] = 10
    left = tex[np.arange(h)[:, None], np.clip(np.arange(w)[None, :] - D, 0, w - 1)]

    def kept(method, rng_):
        d = stereokit.match(left, tex, method=method, max_disp=16, block_size=9, speckle_window_size=1000,
                            speckle_range=rng_)
        return np.isfinite(d[30:50, 50:70]).mean()

    assert kept("opencv-bm", 16) < 0.2 and kept("opencv-bm", 32) > 0.8
    assert kept("opencv-sgbm", 1) < 0.5 and kept("opencv-sgbm", 2) > 0.8  # subpixel steps bridge a few at 1 px


def _occlusion_scene(h: int = 64, w: int = 112, seed: int = 0):
    """uint8 RGB texture with a low-texture band and a nearer square (occlusions, speckles): every option of the
    OpenCV matchers changes something on it."""
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (3, 3), 0.8)
    tex[:, 70:90] = tex[:, 70:90] // 16 + 100
    D = np.full((h, w), 6)
    D[20:44, 40:64] = 13
    left = tex[np.arange(h)[:, None], np.clip(np.arange(w)[None, :] - D, 0, w - 1)]
    return left, tex


_BM_DEFAULTS = dict(min_disp=0, block_size=15, pre_filter_type="xsobel", pre_filter_size=9, pre_filter_cap=31,
                    texture_threshold=10, uniqueness_ratio=15, speckle_window_size=0, speckle_range=0,
                    disp12_max_diff=-1)


def _opencv_bm_reference(left, right, o):
    m = cv2.StereoBM_create(numDisparities=32, blockSize=o["block_size"])
    m.setMinDisparity(o["min_disp"])
    m.setPreFilterType({"xsobel": cv2.STEREO_BM_PREFILTER_XSOBEL,
                        "normalized": cv2.STEREO_BM_PREFILTER_NORMALIZED_RESPONSE}[o["pre_filter_type"]])
    m.setPreFilterSize(o["pre_filter_size"])
    m.setPreFilterCap(o["pre_filter_cap"])
    m.setTextureThreshold(o["texture_threshold"])
    m.setUniquenessRatio(o["uniqueness_ratio"])
    m.setSpeckleWindowSize(o["speckle_window_size"])
    m.setSpeckleRange(o["speckle_range"])
    m.setDisp12MaxDiff(o["disp12_max_diff"])
    raw = m.compute(cv2.cvtColor(left, cv2.COLOR_RGB2GRAY), cv2.cvtColor(right, cv2.COLOR_RGB2GRAY))
    return np.where(raw >= o["min_disp"] * 16, raw / 16.0, np.nan).astype(np.float32)


@pytest.mark.parametrize("option, value", [("min_disp", 2), ("block_size", 11), ("pre_filter_type", "normalized"),
                                           ("pre_filter_size", 31), ("pre_filter_cap", 10),
                                           ("texture_threshold", 2000), ("uniqueness_ratio", 40),
                                           ("speckle_window_size", 100), ("speckle_range", 16),
                                           ("disp12_max_diff", 0)])
def test_every_bm_option_reaches_opencv(option, value):
    # each option, changed alone from OpenCV's default, gives OpenCV's own answer with that setting (bit for bit on
    # uint8 input wide enough not to be padded), and that answer differs from the default's
    left, right = _occlusion_scene()
    opts = dict(_BM_DEFAULTS, **{option: value})
    base = dict(_BM_DEFAULTS)
    if option == "pre_filter_size":  # only the normalised prefilter has a size
        opts["pre_filter_type"] = base["pre_filter_type"] = "normalized"
    if option == "speckle_range":  # the range only counts with a speckle window
        opts["speckle_window_size"] = base["speckle_window_size"] = 100
    want = _opencv_bm_reference(left, right, opts)
    assert not np.array_equal(want, _opencv_bm_reference(left, right, base), equal_nan=True)
    got = stereokit.match(left, right, method="opencv-bm", max_disp=32, **opts)
    np.testing.assert_array_equal(got, want)


_SGBM_DEFAULTS = dict(min_disp=0, block_size=5, P1=8 * 3 * 25, P2=32 * 3 * 25, disp12_max_diff=0, pre_filter_cap=0,
                      uniqueness_ratio=10, speckle_window_size=100, speckle_range=2)


def _opencv_sgbm_reference(left, right, o, mode):
    raw = cv2.StereoSGBM_create(minDisparity=o["min_disp"], numDisparities=32, blockSize=o["block_size"], P1=o["P1"],
                                P2=o["P2"], disp12MaxDiff=o["disp12_max_diff"], preFilterCap=o["pre_filter_cap"],
                                uniquenessRatio=o["uniqueness_ratio"], speckleWindowSize=o["speckle_window_size"],
                                speckleRange=o["speckle_range"], mode=mode).compute(left, right)
    return np.where(raw >= o["min_disp"] * 16, raw / 16.0, np.nan).astype(np.float32)


@pytest.mark.parametrize("method, mode", [("opencv-sgbm", cv2.STEREO_SGBM_MODE_SGBM),
                                          ("opencv-sgbm-hh", cv2.STEREO_SGBM_MODE_HH),
                                          ("opencv-sgbm-3way", cv2.STEREO_SGBM_MODE_SGBM_3WAY)])
@pytest.mark.parametrize("option, value", [("min_disp", 2), ("block_size", 1), ("P1", 20), ("P2", 32767),
                                           ("disp12_max_diff", 30), ("pre_filter_cap", 63),
                                           ("uniqueness_ratio", 40), ("speckle_window_size", 0),
                                           ("speckle_range", 0)])
def test_every_sgbm_option_reaches_opencv(method, mode, option, value):
    # the limits are included: block_size 1 and P2 = 32767 are OpenCV's and must be accepted
    left, right = _occlusion_scene()
    opts = dict(_SGBM_DEFAULTS, **{option: value})
    want = _opencv_sgbm_reference(left, right, opts, mode)
    assert not np.array_equal(want, _opencv_sgbm_reference(left, right, _SGBM_DEFAULTS, mode), equal_nan=True)
    got = stereokit.match(left, right, method=method, max_disp=32, **opts)
    np.testing.assert_array_equal(got, want)


def test_bm_refuses_block_3_and_an_image_exactly_as_tall_as_its_block():
    left, right = scene(3, h=48, w=80)
    with pytest.raises(StereoKitError, match=r"block_size must be an odd integer in \[5, 255\]"):
        stereokit.match(left, right, method="opencv-bm", max_disp=16, block_size=3)  # OpenCV's minimum is 5
    with pytest.raises(StereoKitError, match=r"taller than 21 rows .* 21 x 80"):
        stereokit.match(left[:21], right[:21], method="opencv-bm", max_disp=16)
    assert np.nanmedian(stereokit.match(left[:22], right[:22], method="opencv-bm", max_disp=16)) == 3.0


@pytest.mark.parametrize("method", OPENCV)
def test_positive_min_disp_whose_rounded_range_reaches_the_width_raises(method):
    # [16, 64) on a 64 px wide image is a valid range, but OpenCV leaves the leftmost min_disp + numDisparities = 64
    # columns invalid (and refuses the unpadded image outright): all NaN, which the wrapper refuses to pass off as a
    # failed match
    left, right = scene(20, w=64)
    pad = ((0, 0), (0, 16), (0, 0))
    raw = cv2.StereoSGBM_create(minDisparity=16, numDisparities=48, blockSize=5).compute(
        np.pad(left, pad, mode="edge"), np.pad(right, pad, mode="edge"))
    assert (raw[:, :64] < 16 * 16).all()  # OpenCV's own answer: nothing matched in the image's columns
    with pytest.raises(StereoKitError, match=r"multiple of 16.*\[16, 64\).*64 px wide"):
        stereokit.match(left, right, method=method, max_disp=48, min_disp=16)
    if method != "opencv-bm":  # one disparity less: the last column remains and the range is accepted
        disp = stereokit.match(left, right, method=method, max_disp=48, min_disp=15, speckle_window_size=0)
        assert disp.shape == (48, 64) and np.isnan(disp[:, :63]).all()


@pytest.mark.parametrize("method", OPENCV[1:])
def test_narrow_image_with_positive_min_disp_is_padded_enough_for_opencv(method):
    # OpenCV (5.x) asserts width - (minDisparity + numDisparities) > blockSize // 2: the padding must count min_disp
    left, right = scene(6, w=22)
    disp = stereokit.match(left, right, method=method, max_disp=10, min_disp=4, speckle_window_size=0)
    assert disp.shape == (48, 22) and np.isnan(disp[:, :20]).all()  # the left min_disp + 16 columns
    assert abs(np.nanmedian(disp[:, 20:]) - 6) < 0.5  # border columns: subpixel values near 6


@pytest.mark.parametrize("value", [1, 0, "yes", None])
def test_color_must_be_a_bool(value):
    # 1 / 0 are refused like "no": only True or False (or NumPy's bools) say what is meant
    left, right = scene(5)
    with pytest.raises(StereoKitError, match="color must be True or False"):
        stereokit.match(left, right, method="opencv-sgbm", max_disp=16, color=value)
    assert np.nanmedian(stereokit.match(left, right, method="opencv-sgbm", max_disp=16, color=np.False_)) == 5.0
