"""OpenCV's StereoBM and StereoSGBM behind StereoKit's matcher API (`f(pair, max_disp, **params)`).

Registered (entry points in pyproject.toml) as ``opencv-bm``, ``opencv-sgbm`` (MODE_SGBM), ``opencv-sgbm-hh``
(MODE_HH) and ``opencv-sgbm-3way`` (MODE_SGBM_3WAY).

What the wrappers do, the same for all four:

- ``numDisparities`` must be a multiple of 16 in OpenCV: `max_disp` is rounded up to the next multiple of 16 and
  the result cropped back, i.e. disparities at or beyond ``min_disp + max_disp`` become NaN;
- OpenCV's CV_16S output (4 fractional bits) is divided by 16 into float32; its invalid marker
  ``(minDisparity - 1) * 16`` (anything below ``minDisparity``) becomes NaN;
- images are converted to 8 bits (uint16 / float scaled from the pair's [0, 1] floats); SGBM takes gray or colour
  (``color=True``, the default, uses the RGB channels when the pair has them); StereoBM is gray only, so colour
  is converted to gray (BT.601 luma, as `StereoPair.left_gray`);
- images narrower than OpenCV needs for the rounded range are padded on the right (which changes no disparity of
  the left view) and cropped back.

OpenCV quirks worth knowing when comparing (calib3d stereosgbm.cpp / stereobm.cpp):

- SGBM's ``disp12MaxDiff <= 0`` is forced to 1: its left-right check cannot be switched off;
- SGBM's ``compute()`` always runs a 3x3 median filter on the disparity (invalid pixels vote as very small
  disparities), then ``filterSpeckles`` when ``speckleWindowSize > 0``; ``speckleRange`` is in pixels (scaled by
  16 internally);
- ``preFilterCap`` 0 means 15 in SGBM; the SGBM cost is Birchfield-Tomasi on a clipped x-Sobel of the image plus
  the intensities, summed over the channels and over ``blockSize`` x ``blockSize``;
- MODE_SGBM aggregates 5 paths in one pass, MODE_HH 8 paths in two passes over a full W*H*D volume (memory!),
  MODE_SGBM_3WAY 3 paths in stripes, in parallel;
- StereoBM prefilters with a clipped x-Sobel (``preFilterType`` XSOBEL, size 9, cap 31), needs gray 8-bit input,
  rejects pixels with low texture (``textureThreshold`` 10) and has a uniqueness ratio of 15; the leftmost
  ``minDisparity + numDisparities`` columns are invalid;
- every mode works on the rounded-up range, so the invalid left border grows with the rounding.
"""

from __future__ import annotations

import cv2
import numpy as np

from stereokit.errors import StereoKitError
from stereokit.pair import StereoPair
from stereokit.validation import check_disparity_range, round_up_16  # round_up_16: OpenCV numDisparities

__all__ = ["opencv_bm", "opencv_sgbm", "opencv_sgbm_hh", "opencv_sgbm_3way", "from_opencv_disparity", "round_up_16"]


def from_opencv_disparity(raw: np.ndarray, min_disp: int, max_disp: int) -> np.ndarray:
    """OpenCV CV_16S fixed-point disparity -> float32, NaN outside [min_disp, min_disp + max_disp) (which includes
    OpenCV's invalid marker (minDisparity - 1) * 16)."""
    if raw.dtype != np.int16:
        raise StereoKitError(f"expected OpenCV's int16 disparity, got {raw.dtype}")
    disp = raw.astype(np.float32) / 16.0
    bad = (raw < min_disp * 16) | (disp >= min_disp + max_disp)
    disp[bad] = np.nan
    return disp


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    from stereokit.pair import to_float

    return np.clip(np.rint(to_float(img) * 255.0), 0, 255).astype(np.uint8)


def _pad_right(img: np.ndarray, need: int) -> np.ndarray:
    if img.shape[1] >= need:
        return img
    extra = need - img.shape[1]
    widths = ((0, 0), (0, extra)) + ((0, 0),) * (img.ndim - 2)
    return np.pad(img, widths, mode="edge")


def _images(pair: StereoPair, color: bool) -> tuple[np.ndarray, np.ndarray, int]:
    left, right = _to_uint8(pair.left), _to_uint8(pair.right)
    if pair.channels == 3 and not color:
        left = cv2.cvtColor(left, cv2.COLOR_RGB2GRAY)
        right = cv2.cvtColor(right, cv2.COLOR_RGB2GRAY)
    cn = 1 if left.ndim == 2 else 3
    return np.ascontiguousarray(left), np.ascontiguousarray(right), cn


def _run(matcher, left: np.ndarray, right: np.ndarray, width: int, num: int, block: int, min_disp: int,
         max_disp: int) -> np.ndarray:
    need = num + block + abs(min_disp) + 1
    raw = matcher.compute(_pad_right(left, need), _pad_right(right, need))
    return from_opencv_disparity(raw[:, :width], min_disp, max_disp)


def _sgbm(pair: StereoPair, max_disp: int, mode: int, *, min_disp: int = 0, block_size: int = 5,
          P1: int | None = None, P2: int | None = None, disp12_max_diff: int = 0, pre_filter_cap: int = 0,
          uniqueness_ratio: int = 10, speckle_window_size: int = 100, speckle_range: int = 2,
          color: bool = True) -> np.ndarray:
    min_disp, max_disp = check_disparity_range(pair.width, max_disp, min_disp)
    if block_size < 1 or block_size % 2 == 0:
        raise StereoKitError(f"block_size must be an odd positive integer, got {block_size}")
    left, right, cn = _images(pair, color)
    P1 = 8 * cn * block_size**2 if P1 is None else int(P1)
    P2 = 32 * cn * block_size**2 if P2 is None else int(P2)
    if not 0 <= P1 < P2:
        raise StereoKitError(f"OpenCV needs 0 <= P1 < P2, got P1={P1}, P2={P2}")
    num = round_up_16(max_disp)
    matcher = cv2.StereoSGBM_create(
        minDisparity=min_disp, numDisparities=num, blockSize=block_size, P1=P1, P2=P2,
        disp12MaxDiff=disp12_max_diff, preFilterCap=pre_filter_cap, uniquenessRatio=uniqueness_ratio,
        speckleWindowSize=speckle_window_size, speckleRange=speckle_range, mode=mode,
    )
    return _run(matcher, left, right, pair.width, num, block_size, min_disp, max_disp)


_SGBM_DOC = """OpenCV StereoSGBM in {mode}: disparity float32 (H, W), NaN invalid.

Options (OpenCV names in snake case; defaults = OpenCV's documented recommendations, as in the issue's
measurements): min_disp 0, block_size 5, P1 = 8 * cn * block_size**2, P2 = 32 * cn * block_size**2 (cn = 3 for
colour, 1 for gray), disp12_max_diff 0 (OpenCV forces <= 0 to 1), pre_filter_cap 0 (OpenCV uses 15),
uniqueness_ratio 10, speckle_window_size 100, speckle_range 2 (px), color True. See the module docstring for
the conversions and OpenCV's quirks (mandatory 3x3 median, forced left-right check).
"""


_SGBM_OPTIONS = frozenset(
    ("min_disp", "block_size", "P1", "P2", "disp12_max_diff", "pre_filter_cap", "uniqueness_ratio",
     "speckle_window_size", "speckle_range", "color")
)


def _check_options(name: str, params: dict, allowed: frozenset) -> None:
    unknown = set(params) - allowed
    if unknown:
        raise StereoKitError(f"{name}: unknown option(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(allowed))}")


def opencv_sgbm(pair: StereoPair, max_disp: int, **params) -> np.ndarray:
    _check_options("opencv-sgbm", params, _SGBM_OPTIONS)
    return _sgbm(pair, max_disp, cv2.STEREO_SGBM_MODE_SGBM, **params)


def opencv_sgbm_hh(pair: StereoPair, max_disp: int, **params) -> np.ndarray:
    _check_options("opencv-sgbm-hh", params, _SGBM_OPTIONS)
    return _sgbm(pair, max_disp, cv2.STEREO_SGBM_MODE_HH, **params)


def opencv_sgbm_3way(pair: StereoPair, max_disp: int, **params) -> np.ndarray:
    _check_options("opencv-sgbm-3way", params, _SGBM_OPTIONS)
    return _sgbm(pair, max_disp, cv2.STEREO_SGBM_MODE_SGBM_3WAY, **params)


opencv_sgbm.__doc__ = _SGBM_DOC.format(mode="MODE_SGBM (5 paths, one pass)")
opencv_sgbm_hh.__doc__ = _SGBM_DOC.format(mode="MODE_HH (8 paths, full H*W*D volume)")
opencv_sgbm_3way.__doc__ = _SGBM_DOC.format(mode="MODE_SGBM_3WAY (3 paths in parallel stripes)")


_BM_OPTIONS = frozenset(
    ("min_disp", "block_size", "pre_filter_type", "pre_filter_size", "pre_filter_cap", "texture_threshold",
     "uniqueness_ratio", "speckle_window_size", "speckle_range", "disp12_max_diff")
)


def opencv_bm(pair: StereoPair, max_disp: int, **params) -> np.ndarray:
    """OpenCV StereoBM (SAD block matching on a prefiltered gray image): disparity float32 (H, W), NaN invalid.

    Defaults are OpenCV's (StereoBM_create): block_size 21 (odd, 5..255), XSOBEL prefilter of size 9 capped at
    31 (``pre_filter_type="normalized"`` for the local-mean-normalised variant), texture_threshold 10,
    uniqueness_ratio 15, no speckle filter, no left-right check (disp12_max_diff -1). Colour pairs are converted
    to gray (StereoBM accepts 8-bit gray only). Options: min_disp and the names above.
    """
    _check_options("opencv-bm", params, _BM_OPTIONS)
    return _bm(pair, max_disp, **params)


def _bm(pair: StereoPair, max_disp: int, *, min_disp: int = 0, block_size: int = 21,
        pre_filter_type: str = "xsobel", pre_filter_size: int = 9, pre_filter_cap: int = 31,
        texture_threshold: int = 10, uniqueness_ratio: int = 15, speckle_window_size: int = 0,
        speckle_range: int = 0, disp12_max_diff: int = -1) -> np.ndarray:
    min_disp, max_disp = check_disparity_range(pair.width, max_disp, min_disp)
    if block_size < 5 or block_size > 255 or block_size % 2 == 0:
        raise StereoKitError(f"StereoBM needs an odd block_size in [5, 255], got {block_size}")
    kinds = {"xsobel": cv2.STEREO_BM_PREFILTER_XSOBEL, "normalized": cv2.STEREO_BM_PREFILTER_NORMALIZED_RESPONSE}
    if pre_filter_type not in kinds:
        raise StereoKitError(f"pre_filter_type must be one of {', '.join(kinds)}, got {pre_filter_type!r}")
    left, right, _ = _images(pair, color=False)
    num = round_up_16(max_disp)
    matcher = cv2.StereoBM_create(numDisparities=num, blockSize=block_size)
    matcher.setMinDisparity(min_disp)
    matcher.setPreFilterType(kinds[pre_filter_type])
    matcher.setPreFilterSize(pre_filter_size)
    matcher.setPreFilterCap(pre_filter_cap)
    matcher.setTextureThreshold(texture_threshold)
    matcher.setUniquenessRatio(uniqueness_ratio)
    matcher.setSpeckleWindowSize(speckle_window_size)
    matcher.setSpeckleRange(speckle_range)
    matcher.setDisp12MaxDiff(disp12_max_diff)
    return _run(matcher, left, right, pair.width, num, block_size, min_disp, max_disp)
