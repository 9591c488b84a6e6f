"""OpenCV's StereoBM and StereoSGBM behind StereoKit's matcher API (`f(pair, max_disp, **params)`).

Registered (entry points in pyproject.toml) as ``opencv-bm``, ``opencv-sgbm`` (MODE_SGBM), ``opencv-sgbm-hh``
(MODE_HH) and ``opencv-sgbm-3way`` (MODE_SGBM_3WAY).

What the wrappers do, the same for all four:

- ``numDisparities`` must be a multiple of 16 in OpenCV: `max_disp` is rounded up to the next multiple of 16 and
  the result cropped back, i.e. disparities at or beyond ``min_disp + max_disp`` become NaN. OpenCV leaves the
  leftmost ``min_disp + numDisparities`` columns invalid (StereoBM another ``block_size // 2 - 1``), so the
  rounding widens that border: a range whose rounded-up version leaves no column that can be matched (e.g.
  max_disp 50 on a 64 px wide image searches [0, 64)) raises `StereoKitError` instead of returning all NaN;
- OpenCV's CV_16S output (4 fractional bits) is divided by 16 into float32; its invalid marker
  ``(minDisparity - 1) * 16`` (anything below ``minDisparity``) becomes NaN;
- images are converted to 8 bits by one function for every mode (`_images`): uint8 images are passed as they are
  (bit-exact OpenCV results), anything else is ``rint(255 * f)`` clipped to [0, 255], ``f`` the pair's [0, 1]
  float image (`StereoPair.left_float`); SGBM takes gray or colour (``color=True``, the default, uses the RGB
  channels when the pair has them); StereoBM is gray only, so colour is converted to gray (BT.601 luma, as
  `StereoPair.left_gray`);
- images narrower than OpenCV needs for the rounded range are padded on the right (replicated) and cropped back;
  the last ``-min_disp`` columns of a negative range stay NaN, as OpenCV leaves them on a wide image, rather than
  being matched against the copied columns. Heights are not padded: StereoBM needs an image taller than ``block_size``
  (rows closer than ``block_size // 2`` to the top or bottom are invalid in its output, so replicated rows would
  only invent disparities), a shorter one raises `StereoKitError` naming both sizes; SGBM matches any height;
- every option is checked before OpenCV sees it (integers where OpenCV needs them, ``5.0`` accepted and ``0.5``
  refused, and OpenCV's ranges), so bad values raise `StereoKitError` naming the option, never ``cv2.error``.

OpenCV quirks worth knowing when comparing (calib3d stereosgbm.cpp / stereobm.cpp):

- SGBM's ``disp12MaxDiff <= 0`` is forced to 1: its left-right check cannot be switched off;
- SGBM's ``compute()`` always runs a 3x3 median filter on the disparity (invalid pixels vote as very small
  disparities), then ``filterSpeckles`` when ``speckleWindowSize > 0``; ``speckleRange`` is in pixels (scaled by
  16 internally); an image with fewer pixels than ``speckleWindowSize`` (e.g. one row) comes back all NaN;
- SGBM's ``preFilterCap`` acts as ``max(preFilterCap, 15) | 1`` (0..15 mean 15, an even value the next odd one)
  and its clipped range is stored in 8 bits, hence at most 127 here; the SGBM cost is Birchfield-Tomasi on a
  clipped x-Sobel of the image plus the intensities, summed over the channels and over ``blockSize`` x
  ``blockSize``;
- SGBM's ``P1 = 0`` acts as 2; costs and penalties are 16-bit, so ``P2`` is limited to 32767 here (beyond it the
  output is garbage; the documented ``P2 = 32 * 3 * block_size**2`` passes that for colour from block_size 19 on,
  pass P1/P2 or ``color=False``), and even below it large blocks with a large ``P2`` can overflow;
- MODE_SGBM aggregates 5 paths in one pass, MODE_HH 8 paths in two passes over a full W*H*D volume (memory!),
  MODE_SGBM_3WAY 3 paths in stripes, in parallel;
- StereoBM prefilters with a clipped x-Sobel (``preFilterType`` XSOBEL, size 9, cap 31), needs gray 8-bit input,
  rejects pixels with low texture (``textureThreshold`` 10) and has a uniqueness ratio of 15; unlike SGBM's, its
  ``speckleRange`` is in 1/16 px (compared with the fixed-point disparities as given: 32 joins a 2 px step); the
  leftmost ``minDisparity + numDisparities + blockSize // 2 - 1`` columns and ``blockSize // 2`` rows at the top and
  bottom are invalid;
- every mode works on the rounded-up range, so the invalid left border grows with the rounding.
"""

from __future__ import annotations

import numbers

import cv2
import numpy as np

from stereokit.errors import StereoKitError
from stereokit.pair import StereoPair, to_uint8
from stereokit.validation import check_bool, check_disparity_range, reject_unknown, round_up_16  # round_up_16: numDisparities

__all__ = ["opencv_bm", "opencv_sgbm", "opencv_sgbm_hh", "opencv_sgbm_3way", "from_opencv_disparity", "round_up_16"]

_INT16_MAX = 32767  # SGBM keeps costs and penalties in CV_16S
_INT32_MAX = 2**31 - 1  # OpenCV's setters take C ints


def from_opencv_disparity(raw: np.ndarray, min_disp: int, max_disp: int) -> np.ndarray:
    """OpenCV CV_16S fixed-point disparity -> float32, NaN outside [min_disp, min_disp + max_disp) (which includes
    OpenCV's invalid marker (minDisparity - 1) * 16)."""
    if raw.dtype != np.int16:
        raise StereoKitError(f"expected OpenCV's int16 disparity, got {raw.dtype}")
    disp = raw.astype(np.float32) / 16.0
    bad = (raw < min_disp * 16) | (disp >= min_disp + max_disp)
    disp[bad] = np.nan
    return disp


def _int_option(who: str, name: str, value: object, lo: int | None = None, hi: int | None = None,
                odd: bool = False) -> int:
    """`value` as a C int within [lo, hi] (odd if asked), or a StereoKitError naming the option.

    OpenCV's bindings refuse floats with a TypeError, so integral floats (5.0) are converted and others (0.5)
    refused here; bools are refused as they are almost certainly a mix-up of options.
    """
    if isinstance(value, (bool, np.bool_)):
        raise StereoKitError(f"{who}: {name} must be an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        number = int(value)
    elif isinstance(value, numbers.Real) and float(value).is_integer():
        number = int(value)
    else:
        raise StereoKitError(f"{who}: {name} must be an integer, got {value!r}")
    low = -_INT32_MAX - 1 if lo is None else lo
    high = _INT32_MAX if hi is None else hi
    if not low <= number <= high or (odd and number % 2 == 0):
        what = "an odd integer" if odd else "an integer"
        if lo is not None and hi is not None:
            bounds = f" in [{lo}, {hi}]"
        elif lo is not None:
            bounds = f" >= {lo}"
        elif hi is not None:
            bounds = f" <= {hi}"
        else:
            bounds = " that fits a C int"
        raise StereoKitError(f"{who}: {name} must be {what}{bounds} (OpenCV's limit), got {value!r}")
    return number


def _padded_width(width: int, num: int, block: int, min_disp: int) -> int:
    """Width OpenCV gets: narrower images make it read past the row (garbage disparities) or assert."""
    return max(width, num + block + abs(min_disp) + 1)


def _columns(width: int, min_disp: int, num: int, block: int, bm: bool) -> tuple[int, int]:
    """[first, stop): the columns of the answer OpenCV matches with `num` disparities from `min_disp` on an image
    `width` px wide. Measured on OpenCV's output: the left border is min_disp + num columns (StereoBM another
    block // 2 - 1), the right border -min_disp for a negative min_disp; StereoBM also leaves the last block // 2
    columns of the (padded) image invalid."""
    first, stop = max(min_disp + num, 0), width + min(min_disp, 0)
    if bm:
        first = max(min_disp + num - 1, 0) + block // 2
        stop = min(stop, _padded_width(width, num, block, min_disp) - block // 2)
    return first, stop


def _check_rounded_range(who: str, width: int, min_disp: int, max_disp: int, num: int, block: int,
                         bm: bool) -> None:
    """Raise a StereoKitError when the rounded range leaves no column to match: an all-NaN answer would look like
    a failed match, while the cause is OpenCV's rounding of numDisparities to a multiple of 16."""
    def usable(n: int) -> bool:
        first, stop = _columns(width, min_disp, n, block, bm)
        return n < width and first < stop

    if usable(num):
        return
    fits = [n for n in range(num - 16, 0, -16) if usable(n)]
    hint = (f"use max_disp <= {fits[0]} or a wider image" if fits
            else "the image is too narrow for OpenCV's smallest range (16 disparities)")
    border = f" (StereoBM also loses about block_size // 2 = {block // 2} columns at each border)" if bm else ""
    raise StereoKitError(
        f"{who}: OpenCV rounds numDisparities up to a multiple of 16, so max_disp {max_disp} searches "
        f"[{min_disp}, {min_disp + num}) ({num} disparities) on an image {width} px wide, which leaves no column "
        f"that can be matched{border}; {hint}"
    )


def _to_uint8(img: np.ndarray, img_float: np.ndarray) -> np.ndarray:
    """One image as 8 bits: uint8 as is (bit-exact OpenCV results), else from the pair's [0, 1] float image."""
    if img.dtype == np.uint8:
        return img
    return to_uint8(img_float)


def _images(pair: StereoPair, color: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """The pair as OpenCV gets it in every mode: 8-bit, gray (BT.601 via cvtColor) unless `color` and RGB."""
    left, right = _to_uint8(pair.left, pair.left_float), _to_uint8(pair.right, pair.right_float)
    if pair.channels == 3 and not color:
        left = cv2.cvtColor(left, cv2.COLOR_RGB2GRAY)
        right = cv2.cvtColor(right, cv2.COLOR_RGB2GRAY)
    cn = 1 if left.ndim == 2 else 3
    return np.ascontiguousarray(left), np.ascontiguousarray(right), cn


def _pad_right(img: np.ndarray, need: int) -> np.ndarray:
    if img.shape[1] >= need:
        return img
    extra = need - img.shape[1]
    widths = ((0, 0), (0, extra)) + ((0, 0),) * (img.ndim - 2)
    return np.pad(img, widths, mode="edge")


def _run(matcher, left: np.ndarray, right: np.ndarray, num: int, block: int, min_disp: int,
         max_disp: int) -> np.ndarray:
    """compute() on the pair padded on the right to the width OpenCV needs, cropped back."""
    width = left.shape[1]
    need = _padded_width(width, num, block, min_disp)
    raw = matcher.compute(_pad_right(left, need), _pad_right(right, need))
    disp = from_opencv_disparity(raw[:, :width], min_disp, max_disp)
    # A negative disparity in the last -min_disp columns would be matched against the copied columns; OpenCV
    # marks these columns invalid on an unpadded image, so keep them NaN here too.
    disp[:, width + min(min_disp, 0):] = np.nan
    return disp


def _sgbm(who: str, pair: StereoPair, max_disp: int, mode: int, *, min_disp: int = 0, block_size: int = 5,
          P1: int | None = None, P2: int | None = None, disp12_max_diff: int = 0, pre_filter_cap: int = 0,
          uniqueness_ratio: int = 10, speckle_window_size: int = 100, speckle_range: int = 2,
          color: bool = True) -> np.ndarray:
    min_disp, max_disp = check_disparity_range(pair.width, max_disp, min_disp)
    block_size = _int_option(who, "block_size", block_size, lo=1, odd=True)
    # OpenCV silently replaces a negative uniqueness ratio or cap by its default, treats a negative speckle range
    # as "remove everything" and wraps a cap over 127 in its 8-bit table: refuse these instead of answering for
    # parameters nobody asked for. A uniqueness ratio of 100 % or more rejects every pixel (MODE_SGBM_3WAY divides
    # by 100 - ratio and kills the process), and the speckle range, scaled by 16 into 16 bits, wraps beyond 2047.
    disp12_max_diff = _int_option(who, "disp12_max_diff", disp12_max_diff)
    pre_filter_cap = _int_option(who, "pre_filter_cap", pre_filter_cap, lo=0, hi=127)
    uniqueness_ratio = _int_option(who, "uniqueness_ratio", uniqueness_ratio, lo=0, hi=99)
    speckle_window_size = _int_option(who, "speckle_window_size", speckle_window_size, lo=0)
    speckle_range = _int_option(who, "speckle_range", speckle_range, lo=0, hi=_INT16_MAX // 16)
    check_bool(f"{who}: color", color)
    cn = 3 if pair.channels == 3 and color else 1
    p2_given = P2 is not None
    P1 = 8 * cn * block_size**2 if P1 is None else _int_option(who, "P1", P1, lo=0)
    P2 = 32 * cn * block_size**2 if P2 is None else _int_option(who, "P2", P2, lo=0)
    if not P1 < P2:
        raise StereoKitError(f"{who}: OpenCV needs 0 <= P1 < P2, got P1={P1}, P2={P2}")
    if P2 > _INT16_MAX:
        # OpenCV truncates it to 16 bits and silently returns garbage.
        what = f"P2={P2}" if p2_given else f"the default P2 = 32 * {cn} channel(s) * block_size {block_size}**2 = {P2}"
        raise StereoKitError(
            f"{who}: {what} does not fit OpenCV's 16-bit SGBM costs (at most {_INT16_MAX}); pass smaller P1/P2, "
            "a smaller block_size or color=False"
        )
    num = round_up_16(max_disp)
    _check_rounded_range(who, pair.width, min_disp, max_disp, num, block_size, bm=False)
    left, right, _ = _images(pair, bool(color))
    matcher = cv2.StereoSGBM_create(
        minDisparity=min_disp, numDisparities=num, blockSize=block_size, P1=P1, P2=P2,
        disp12MaxDiff=disp12_max_diff, preFilterCap=pre_filter_cap, uniquenessRatio=uniqueness_ratio,
        speckleWindowSize=speckle_window_size, speckleRange=speckle_range, mode=mode,
    )
    return _run(matcher, left, right, num, block_size, min_disp, max_disp)


_SGBM_DOC = """OpenCV StereoSGBM in {mode}: disparity float32 (H, W), NaN invalid.

Options (OpenCV names in snake case; defaults = OpenCV's documented recommendations, as in the issue's
measurements): min_disp 0, block_size 5 (odd, >= 1), P1 = 8 * cn * block_size**2, P2 = 32 * cn * block_size**2
(cn = 3 for colour, 1 for gray; 0 <= P1 < P2 <= 32767), disp12_max_diff 0 (OpenCV forces <= 0 to 1),
pre_filter_cap 0 (0..127; OpenCV uses max(cap, 15) | 1), uniqueness_ratio 10 (%, 0..99), speckle_window_size 100
(>= 0, 0 = off), speckle_range 2 (px, 0..2047), color True. Integer options accept integral floats (5.0). Any image
height works. Bad values raise StereoKitError. See the module docstring for the conversions and OpenCV's quirks
(mandatory 3x3 median, forced left-right check, the range rounded up to a multiple of 16).
"""


_SGBM_OPTIONS = frozenset(
    ("min_disp", "block_size", "P1", "P2", "disp12_max_diff", "pre_filter_cap", "uniqueness_ratio",
     "speckle_window_size", "speckle_range", "color")
)


def opencv_sgbm(pair: StereoPair, max_disp: int, **params) -> np.ndarray:
    reject_unknown("opencv-sgbm", params, _SGBM_OPTIONS)
    return _sgbm("opencv-sgbm", pair, max_disp, cv2.STEREO_SGBM_MODE_SGBM, **params)


def opencv_sgbm_hh(pair: StereoPair, max_disp: int, **params) -> np.ndarray:
    reject_unknown("opencv-sgbm-hh", params, _SGBM_OPTIONS)
    return _sgbm("opencv-sgbm-hh", pair, max_disp, cv2.STEREO_SGBM_MODE_HH, **params)


def opencv_sgbm_3way(pair: StereoPair, max_disp: int, **params) -> np.ndarray:
    reject_unknown("opencv-sgbm-3way", params, _SGBM_OPTIONS)
    return _sgbm("opencv-sgbm-3way", pair, max_disp, cv2.STEREO_SGBM_MODE_SGBM_3WAY, **params)


opencv_sgbm.__doc__ = _SGBM_DOC.format(mode="MODE_SGBM (5 paths, one pass)")
opencv_sgbm_hh.__doc__ = _SGBM_DOC.format(mode="MODE_HH (8 paths, full H*W*D volume)")
opencv_sgbm_3way.__doc__ = _SGBM_DOC.format(mode="MODE_SGBM_3WAY (3 paths in parallel stripes)")


_BM_OPTIONS = frozenset(
    ("min_disp", "block_size", "pre_filter_type", "pre_filter_size", "pre_filter_cap", "texture_threshold",
     "uniqueness_ratio", "speckle_window_size", "speckle_range", "disp12_max_diff")
)


def opencv_bm(pair: StereoPair, max_disp: int, **params) -> np.ndarray:
    """OpenCV StereoBM (SAD block matching on a prefiltered gray image): disparity float32 (H, W), NaN invalid.

    Defaults are OpenCV's (StereoBM_create): block_size 21 (odd, 5..255), XSOBEL prefilter (pre_filter_size 9,
    odd 5..255) capped at pre_filter_cap 31 (1..63) (``pre_filter_type="normalized"`` for the local-mean-normalised
    variant), texture_threshold 10 (>= 0), uniqueness_ratio 15 (%, 0..99), no speckle filter (speckle_window_size 0,
    >= 0; speckle_range 0, in 1/16 px as OpenCV's StereoBM takes it, 0..32767), no left-right check
    (disp12_max_diff -1; < 0 = off; at most 134217727, which OpenCV scales by 16 into 32 bits). Integer options accept
    integral floats (5.0). Colour pairs are converted to gray (StereoBM accepts 8-bit gray only).

    The image must be taller than block_size, as OpenCV requires: StereoBM leaves block_size // 2 rows at the top
    and bottom invalid, so a shorter image has no row it could match, and padding it would only invent
    disparities from copied rows; a StereoKitError names both sizes instead (use a smaller block_size or
    opencv-sgbm, which matches any height). Narrow images are padded on the right as for every mode.
    """
    reject_unknown("opencv-bm", params, _BM_OPTIONS)
    return _bm(pair, max_disp, **params)


def _bm(pair: StereoPair, max_disp: int, *, min_disp: int = 0, block_size: int = 21,
        pre_filter_type: str = "xsobel", pre_filter_size: int = 9, pre_filter_cap: int = 31,
        texture_threshold: int = 10, uniqueness_ratio: int = 15, speckle_window_size: int = 0,
        speckle_range: int = 0, disp12_max_diff: int = -1) -> np.ndarray:
    who = "opencv-bm"
    min_disp, max_disp = check_disparity_range(pair.width, max_disp, min_disp)
    block_size = _int_option(who, "block_size", block_size, lo=5, hi=255, odd=True)
    kinds = {"xsobel": cv2.STEREO_BM_PREFILTER_XSOBEL, "normalized": cv2.STEREO_BM_PREFILTER_NORMALIZED_RESPONSE}
    if not isinstance(pre_filter_type, str) or pre_filter_type not in kinds:
        raise StereoKitError(f"{who}: pre_filter_type must be one of {', '.join(kinds)}, got {pre_filter_type!r}")
    pre_filter_size = _int_option(who, "pre_filter_size", pre_filter_size, lo=5, hi=255, odd=True)
    pre_filter_cap = _int_option(who, "pre_filter_cap", pre_filter_cap, lo=1, hi=63)
    texture_threshold = _int_option(who, "texture_threshold", texture_threshold, lo=0)
    uniqueness_ratio = _int_option(who, "uniqueness_ratio", uniqueness_ratio, lo=0, hi=99)
    speckle_window_size = _int_option(who, "speckle_window_size", speckle_window_size, lo=0)
    # OpenCV skips the speckle filter for a negative range: refuse it rather than silently ignore the window. Both
    # ranges are compared with the 16-bit fixed-point disparities (x16 for the LR check), so larger values wrap.
    speckle_range = _int_option(who, "speckle_range", speckle_range, lo=0, hi=_INT16_MAX)
    disp12_max_diff = _int_option(who, "disp12_max_diff", disp12_max_diff, hi=_INT32_MAX // 16)
    if pair.height <= block_size:
        largest = pair.height - 1 if pair.height % 2 == 0 else pair.height - 2  # odd and < height
        hint = (f"use an odd block_size in [5, {largest}]" if largest >= 5
                else "StereoBM's smallest block is 5: use opencv-sgbm, which matches any height")
        raise StereoKitError(
            f"{who}: block_size {block_size} needs an image taller than {block_size} rows (OpenCV StereoBM), got "
            f"{pair.height} x {pair.width} (height x width); {hint}"
        )
    num = round_up_16(max_disp)
    _check_rounded_range(who, pair.width, min_disp, max_disp, num, block_size, bm=True)
    left, right, _ = _images(pair, color=False)
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
    return _run(matcher, left, right, num, block_size, min_disp, max_disp)
