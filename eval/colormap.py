"""Colour maps for disparities and errors, as the KITTI and Middlebury devkits draw them, and atomic PNG writing.

Every function takes float32 disparities (NaN invalid) and returns an RGB uint8 (H, W, 3) image.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from stereokit.errors import StereoKitError
from stereokit.io import atomic_write_bytes
from stereokit.pair import as_mask

from .metrics import as_ground_truth, estimates_as_scored

# KITTI devkit `writeFalseColors` (io_disp.h): 8 control colours and the relative length of the bin after each.
KITTI_DISP_COLORS = np.array(
    [[0, 0, 0], [0, 0, 1], [1, 0, 0], [1, 0, 1], [0, 1, 0], [0, 1, 1], [1, 1, 0], [1, 1, 1]], dtype=np.float64
)
KITTI_DISP_WEIGHTS = np.array([114, 185, 114, 174, 114, 185, 114, 0], dtype=np.float32)

# KITTI devkit log colour map (log_colormap.h `LC`): [lower, upper) bounds of the normalised error, then RGB.
KITTI_ERROR_COLORS = (
    (0.0, 0.0625, (49, 54, 149)),
    (0.0625, 0.125, (69, 117, 180)),
    (0.125, 0.25, (116, 173, 209)),
    (0.25, 0.5, (171, 217, 233)),
    (0.5, 1.0, (224, 243, 248)),
    (1.0, 2.0, (254, 224, 144)),
    (2.0, 4.0, (253, 174, 97)),
    (4.0, 8.0, (244, 109, 67)),
    (8.0, 16.0, (215, 48, 39)),
    (16.0, np.inf, (165, 0, 38)),
)

# Middlebury-style bad-pixel map colours.
BAD_COLOR = (255, 0, 0)  # bad pixel in a non-occluded region
BAD_OCCLUDED_COLOR = (0, 128, 255)  # bad pixel in an occluded region
NO_GT_COLOR = (0, 0, 0)


def _check_same_shape(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape[:2] != b.shape[:2]:
        raise StereoKitError(f"{what}: shapes differ, {a.shape[:2]} vs {b.shape[:2]}")


def _scored_pair(pred, gt, fill: bool) -> tuple[np.ndarray, np.ndarray]:
    """The prediction as the evaluator scores it (validity, fill) and the checked ground truth, same shape."""
    g = as_ground_truth(gt)
    p, _ = estimates_as_scored(pred, fill)
    _check_same_shape(p, g, "prediction and ground truth")
    return p, g


def kitti_disparity_colors(values: np.ndarray) -> np.ndarray:
    """KITTI devkit false colours of values normalised to [0, 1] (clipped): RGB uint8, same shape + (3,).

    Reproduces `writeFalseColors` bit for bit: the bin search, the weights, the float32 arithmetic and the
    truncating cast to uint8.
    """
    val = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0), 0.0, 1.0).astype(np.float32)
    total = KITTI_DISP_WEIGHTS.sum(dtype=np.float32)
    weights = (total / KITTI_DISP_WEIGHTS[:7]).astype(np.float32)
    cumsum = np.zeros(8, dtype=np.float32)
    for i in range(7):  # accumulated in float32 exactly as the devkit does
        cumsum[i + 1] = np.float32(cumsum[i] + np.float32(KITTI_DISP_WEIGHTS[i] / total))
    # First bin i with val < cumsum[i + 1]; the devkit falls through to i = 7 at val == 1, where w = 1 picks white.
    idx = np.searchsorted(cumsum[1:], val, side="right")
    at_end = idx >= 7
    i = np.minimum(idx, 6)
    # devkit: `float w = 1.0 - (val - cumsum[i]) * weights[i];` the product in float32, the difference in double,
    # then w itself rounded to float32 (keeping it in double flips a truncated channel by 1 now and then)
    x = ((val - cumsum[i]) * weights[i]).astype(np.float32)
    w = (1.0 - x.astype(np.float64)).astype(np.float32).astype(np.float64)
    w = np.where(at_end, 0.0, w)  # devkit: white (map[7]) at the top
    rgb = w[..., None] * KITTI_DISP_COLORS[i] + (1.0 - w[..., None]) * KITTI_DISP_COLORS[i + 1]
    return np.clip(rgb * 255.0, 0, 255).astype(np.uint8)


def colorize_disparity(
    disp: np.ndarray, max_disp: float | None = None, cmap: str = "kitti"
) -> np.ndarray:
    """Disparity as an RGB uint8 image; invalid (NaN, inf, negative) pixels black.

    `max_disp` normalises the colours; pass the ground truth's maximum (the devkit's convention, so a prediction and
    its ground truth share one scale); default: this map's own maximum, at least 1. `cmap` is "kitti" (the devkit's
    8-colour map) or any matplotlib colour map name, e.g. "turbo" or "viridis" (perceptual alternatives).
    """
    d, valid = estimates_as_scored(disp, fill=False, what="disparity")  # the evaluator's rule for a valid estimate
    if max_disp is None or not np.isfinite(max_disp) or max_disp <= 1.0:
        # devkit writeColor: if max_disp <= 1 the scale comes from the map's maximum
        max_disp = max(float(d[valid].max()) if valid.any() else 1.0, 1.0)
    val = np.where(valid, d / np.float32(max_disp), 0.0).astype(np.float32)
    if cmap == "kitti":
        rgb = kitti_disparity_colors(val)
    else:
        import matplotlib

        try:
            lut = matplotlib.colormaps[cmap].resampled(256)(np.arange(256))[:, :3]
        except KeyError as exc:
            raise StereoKitError(f"unknown colour map {cmap!r}: use 'kitti' or a matplotlib name such as 'turbo'") from exc
        rgb = (lut[np.round(np.clip(val, 0, 1) * 255).astype(np.intp)] * 255 + 0.5).astype(np.uint8)
    rgb[~valid] = 0
    return rgb


def kitti_error_colors(n_err: np.ndarray) -> np.ndarray:
    """Devkit log colours of normalised errors (`[lower, upper)` bins of `KITTI_ERROR_COLORS`): RGB uint8."""
    n = np.asarray(n_err, dtype=np.float32)
    lowers = np.array([b[0] for b in KITTI_ERROR_COLORS[1:]], dtype=np.float32)
    table = np.array([b[2] for b in KITTI_ERROR_COLORS], dtype=np.uint8)
    idx = np.searchsorted(lowers, np.nan_to_num(n, nan=np.inf), side="right")
    return table[idx]


def normalized_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """KITTI's normalised error `min(|e| / 3, 20 |e| / |gt|)`: 1 at the D1 outlier threshold (3 px and 5 %)."""
    err = np.abs(pred.astype(np.float32) - gt.astype(np.float32))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = 20.0 * err.astype(np.float64) / np.abs(gt.astype(np.float64))
    # std::min(a, NaN) is a in the devkit (0/0 at gt == 0 with no error)
    return np.fmin(err.astype(np.float64) / 3.0, rel).astype(np.float32)


def error_image(
    pred: np.ndarray,
    gt: np.ndarray,
    nonocc: np.ndarray | None = None,
    fill: bool = True,
    blocks: bool = False,
) -> np.ndarray:
    """KITTI devkit error image (`errorImage` with log colours) as RGB uint8.

    Each pixel with ground truth gets the log colour of `min(|e| / 3, 20 |e| / |gt|)` (blue: small, red: large;
    the 6th colour starts at 1, the D1 outlier threshold); pixels outside `nonocc` (valid only in the occluded
    ground truth) are drawn at half brightness; pixels without ground truth are black. The prediction is drawn as
    the evaluator scores it (`eval.metrics.estimates_as_scored`): NaN, inf and negative estimates are invalid;
    `fill` fills them by the devkit's background interpolation (pixels it cannot reach at -1 px, as in the devkit);
    without `fill` an invalid estimate counts as an infinite error. `blocks` paints each pixel as a 3x3 block as the
    devkit does for sparse (LiDAR) ground truth.
    """
    p, g = _scored_pair(pred, gt, fill)
    has_gt = np.isfinite(g)
    n_err = normalized_error(np.where(np.isnan(p), np.inf, p), np.where(has_gt, g, 0.0))
    colors = kitti_error_colors(n_err)
    nonocc_m = as_mask(nonocc, g.shape, "nonocc", middlebury=True)
    if nonocc_m is not None:
        half = has_gt & ~nonocc_m
        colors[half] = (colors[half] * 0.5).astype(np.uint8)  # the devkit's `val *= 0.5` truncates
    out = np.zeros_like(colors)
    if not blocks:
        out[has_gt] = colors[has_gt]
        return out
    # Devkit: interior pixels (1 <= v < h-1, 1 <= u < w-1) in raster order each paint their 3x3 block, later pixels
    # overwriting earlier ones; painting the 9 source offsets in raster order reproduces that.
    h, w = g.shape
    src = has_gt.copy()
    src[[0, -1], :] = False
    src[:, [0, -1]] = False
    for dv in (-1, 0, 1):
        for du in (-1, 0, 1):
            # target (v, u) painted by source (v + dv, u + du)
            tv = slice(max(0, -dv), h - max(0, dv))
            tu = slice(max(0, -du), w - max(0, du))
            sv = slice(max(0, dv), h + min(0, dv))
            su = slice(max(0, du), w + min(0, du))
            m = src[sv, su]
            out[tv, tu][m] = colors[sv, su][m]
    return out


def gray_image(img: np.ndarray) -> np.ndarray:
    """Any image (uint8/uint16/float, gray or RGB) as uint8 gray (H, W)."""
    from stereokit.pair import to_float, to_gray

    a = np.asarray(img)
    g = to_gray(to_float(a))
    if not np.issubdtype(a.dtype, np.integer):
        lo, hi = float(np.nanmin(g)), float(np.nanmax(g))
        g = (g - lo) / (hi - lo) if hi > lo else np.zeros_like(g)
    return (np.clip(g, 0, 1) * 255 + 0.5).astype(np.uint8)


def bad_pixel_map(
    pred: np.ndarray,
    gt: np.ndarray,
    left: np.ndarray,
    nonocc: np.ndarray | None = None,
    threshold: float = 2.0,
    fill: bool = True,
) -> np.ndarray:
    """Middlebury-style bad-pixel map: bad pixels (|e| > `threshold`) over the dimmed gray left image, RGB uint8.

    Bad pixels in non-occluded regions are red (`BAD_COLOR`), bad pixels in occluded regions (outside `nonocc`)
    blue (`BAD_OCCLUDED_COLOR`), pixels without ground truth black. The prediction is taken as the evaluator scores
    it (validity, `fill`, as in `error_image`); an invalid estimate left unfilled is bad.
    """
    p, g = _scored_pair(pred, gt, fill)
    _check_same_shape(np.asarray(left), g, "left image and ground truth")
    gray = gray_image(left).astype(np.float32)
    base = (64 + gray * 0.5).astype(np.uint8)  # lifted and compressed so red and blue stand out
    out = np.repeat(base[..., None], 3, axis=2)
    has_gt = np.isfinite(g)
    with np.errstate(invalid="ignore"):
        bad = has_gt & ~(np.abs(p - g) <= threshold)
    nonocc_m = as_mask(nonocc, g.shape, "nonocc", middlebury=True)
    occluded = np.zeros_like(has_gt) if nonocc_m is None else ~nonocc_m
    out[~has_gt] = NO_GT_COLOR
    out[bad & ~occluded] = BAD_COLOR
    out[bad & occluded] = BAD_OCCLUDED_COLOR
    return out


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an RGB or gray uint8 image as PNG atomically (`stereokit.io.atomic_write_bytes`)."""
    path = Path(path)
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise StereoKitError(f"write_png expects uint8, got {img.dtype}")
    if img.ndim == 3:
        if img.shape[2] != 3:
            raise StereoKitError(f"write_png expects (H, W) or (H, W, 3), got {img.shape}")
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise StereoKitError(f"cannot encode PNG for {path}")
    return atomic_write_bytes(path, buf.tobytes())
