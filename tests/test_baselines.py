"""OpenCV wrappers: fixed-point conversion, the multiple of 16, gray/colour, min_disp, bad input."""

from __future__ import annotations

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
    left, right = scene(3, w=24)
    disp = stereokit.match(left, right, method="opencv-sgbm", max_disp=17)  # OpenCV needs 32 < width + block
    assert disp.shape == (48, 24)


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
