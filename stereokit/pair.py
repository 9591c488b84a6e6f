"""`StereoPair`: a validated rectified image pair with optional ground truth and calibration."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .errors import StereoKitError

# ITU-R BT.601 luma, the weights OpenCV's cvtColor uses, so gray images agree with the baselines.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class Calibration:
    """Rectified-pair calibration: focal length (px), baseline (any unit) and the principal-point offset doffs (px)."""

    focal: float
    baseline: float
    doffs: float = 0.0

    def __post_init__(self) -> None:
        # a zero, negative or non-finite focal or baseline would give NaN or infinite depths without a word
        for name, positive in (("focal", True), ("baseline", True), ("doffs", False)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not np.isfinite(v) \
                    or (positive and v <= 0):
                hint = " (the distance between the cameras; OpenCV's P2[0, 3] is -focal * baseline)" \
                    if name == "baseline" else ""
                raise StereoKitError(f"calibration {name} must be a finite{' positive' if positive else ''} number, "
                                     f"got {v!r}{hint}")

    def depth(self, disparity: np.ndarray) -> np.ndarray:
        """Depth `f * B / (d + doffs)` in the baseline's unit; NaN where the disparity is invalid or d + doffs <= 0."""
        d = np.asarray(disparity, dtype=np.float64) + self.doffs
        with np.errstate(divide="ignore", invalid="ignore"):
            z = self.focal * self.baseline / d
        z[~(d > 0)] = np.nan
        return z.astype(np.float32)


def check_ground_truth(gt) -> np.ndarray:
    """Ground truth as a float32 copy in pixels, NaN where unknown (NaN or +-inf in the input). Integer arrays (a raw
    KITTI PNG holds 256 x the disparity) and negative values (a -1 sentinel) are refused: convert at I/O."""
    raw = np.asarray(gt)
    if raw.dtype.kind in "iub":
        raise StereoKitError(
            f"ground truth is {raw.dtype}, a raw encoding rather than disparities in pixels: convert it at I/O "
            "(stereokit.io.read_disparity turns a KITTI PNG into float32 / 256 with NaN for invalid)"
        )
    if raw.dtype.kind != "f":
        raise StereoKitError(f"ground truth has dtype {raw.dtype}; expected a float disparity map")
    g = raw.astype(np.float32, copy=True)
    g[~np.isfinite(g)] = np.nan
    with np.errstate(invalid="ignore"):
        neg = g < 0
    if neg.any():
        raise StereoKitError(
            f"ground truth has {int(neg.sum())} negative values (min {float(g[neg].min()):g}): disparities are "
            ">= 0 and unknown pixels must be NaN, not -1 or another sentinel"
        )
    return g


def check_image_dtype(img: np.ndarray, which: str) -> None:
    """Refuse image types other than uint8, uint16 and real floats: their intensity scale is unknown (an int32
    image would be compared 255 times too coarsely) or meaningless (bool, complex, object)."""
    if not (img.dtype in (np.uint8, np.uint16) or img.dtype.kind == "f"):
        raise StereoKitError(f"{which} image has dtype {img.dtype}; expected uint8, uint16 or float")


def check_image(img: np.ndarray, which: str, any_range: bool = False) -> np.ndarray:
    """`img` as an array of the image conventions (gray or RGB, non-empty, uint8 / uint16 / finite float), else
    StereoKitError naming it; floats must be in [0, 1] unless `any_range` (transforms that use only the order)."""
    if img is None:
        raise StereoKitError(f"{which} image is missing")
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise StereoKitError(f"{which} image must be 2-D (gray) or H x W x 3 (RGB), got shape {img.shape}")
    if img.size == 0 or img.shape[0] == 0 or img.shape[1] == 0:
        raise StereoKitError(f"{which} image is empty (shape {img.shape})")
    check_image_dtype(img, which)
    if np.issubdtype(img.dtype, np.floating):
        if not np.all(np.isfinite(img)):
            raise StereoKitError(f"{which} image contains NaN or inf values")
        if not any_range:
            check_float_range(img, which)
    return img


def as_mask(mask, shape: tuple[int, ...], what: str, middlebury: bool = False) -> np.ndarray | None:
    """Boolean (H, W) mask, or None. `middlebury`: booleans, 0/1, or Middlebury's 0/128/255 encoding, where only 255
    (non-occluded) is True; otherwise any non-zero value is True (KITTI's obj_map ids). NaN is refused."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.shape != shape:
        raise StereoKitError(f"{what} mask has shape {m.shape}, expected {shape} (height x width)")
    if m.dtype == bool:
        return m
    if m.dtype.kind not in "iuf":
        raise StereoKitError(f"{what} mask has dtype {m.dtype}; expected booleans or numbers")
    if m.dtype.kind == "f" and np.isnan(m).any():
        raise StereoKitError(f"{what} mask contains NaN")
    if middlebury:
        values = set(np.unique(m).tolist())
        if values <= {0, 1}:
            return m != 0
        if values <= {0, 128, 255}:
            return m == 255
        shown = ", ".join(f"{v:g}" for v in sorted(values)[:6])
        raise StereoKitError(
            f"{what} mask has values {shown}{', ...' if len(values) > 6 else ''}: expected booleans, 0/1, or "
            "Middlebury's 0/128/255 (255 = non-occluded)"
        )
    return m != 0


# Bit depths that uint16 camera data comes in; the smallest one holding the data sets its full scale.
_UINT16_BITS = (8, 10, 12, 14, 16)
# Float images must be in [0, 1]; overshoot this small (resampling ringing) is clipped rather than refused.
_FLOAT_SLACK = 0.01


def full_scale(*images: np.ndarray) -> float:
    """The intensity that maps to 1.0, common to `images` (all of one dtype): 255 for uint8; for uint16 the full
    scale of the smallest bit depth (8, 10, 12, 14 or 16) that holds every image's maximum, so 12-bit camera data
    is not squeezed into 1/16 of the range; 1 for floats."""
    kinds = {np.asarray(im).dtype for im in images}
    if kinds == {np.dtype(np.uint8)}:
        return 255.0
    if kinds == {np.dtype(np.uint16)}:
        top = max(int(np.asarray(im).max(initial=0)) for im in images)
        bits = next(b for b in _UINT16_BITS if top < (1 << b))
        return float((1 << bits) - 1)
    return 1.0


def check_float_range(img: np.ndarray, which: str) -> None:
    """Refuse a float image outside [0, 1] (beyond a small slack), naming its range: 0..255 data stored as float
    would otherwise be clipped to white without a word."""
    lo, hi = (float(img.min()), float(img.max())) if img.size else (0.0, 0.0)
    if lo < -_FLOAT_SLACK or hi > 1 + _FLOAT_SLACK:
        hint = " (8-bit data? divide by 255 or pass the uint8 array)" if 2 < hi <= 255 + _FLOAT_SLACK else ""
        raise StereoKitError(f"{which} image has values in [{lo:g}, {hi:g}]; float images must be in [0, 1]{hint}")


def to_float(img: np.ndarray, scale: float | None = None, which: str = "float") -> np.ndarray:
    """Image as float32 in [0, 1]: integers divided by `scale` (default `full_scale(img)`); floats must already be
    in [0, 1] (a StereoKitError names the range otherwise, e.g. 0..255 data stored as float)."""
    img = np.asarray(img)
    if np.issubdtype(img.dtype, np.floating):
        check_float_range(img, which)
        return np.clip(img, 0.0, 1.0).astype(np.float32)
    if scale is None:
        scale = full_scale(img)
    return img.astype(np.float32) / np.float32(scale)


def to_uint8(img_float: np.ndarray) -> np.ndarray:
    """A [0, 1] float image as uint8: x 255, rounded (half to even), clipped to [0, 255]."""
    return np.clip(np.rint(img_float * 255.0), 0, 255).astype(np.uint8)


def common_scale(left: np.ndarray, right: np.ndarray) -> float:
    """The `full_scale` both views share, after refusing a pair stored in two types (`check_same_dtype`)."""
    check_same_dtype(left, right)
    return full_scale(left, right)


def check_same_dtype(left: np.ndarray, right: np.ndarray) -> None:
    """Refuse a pair whose images are stored differently (uint8 vs uint16, integer vs float): their intensities
    would be compared on different scales."""
    lk = "float" if np.issubdtype(left.dtype, np.floating) else str(left.dtype)
    rk = "float" if np.issubdtype(right.dtype, np.floating) else str(right.dtype)
    if lk != rk:
        raise StereoKitError(
            f"left image is {left.dtype} but right image is {right.dtype}: both must have the same type "
            "(uint8, uint16 or float in [0, 1])"
        )


def to_gray(img_float: np.ndarray) -> np.ndarray:
    """Float image to float32 gray (BT.601 luma of RGB; gray returned as is)."""
    if img_float.ndim == 2:
        return img_float
    return np.ascontiguousarray(img_float @ _LUMA)


@dataclass(eq=False)
class StereoPair:
    """A rectified stereo pair; `left` is the reference view.

    `gt` is float32 disparity with NaN invalid; `nonocc` marks non-occluded pixels, `fg` foreground (KITTI object map).
    Images are validated on construction; `left_float`, `left_gray` (and right) are computed once and cached.
    """

    left: np.ndarray
    right: np.ndarray
    gt: np.ndarray | None = None
    nonocc: np.ndarray | None = None
    fg: np.ndarray | None = None
    calib: Calibration | None = None
    name: str = "pair"
    meta: dict = field(default_factory=dict)
    _scale: float = field(default=1.0, init=False, repr=False)

    def __post_init__(self) -> None:
        self.left = check_image(self.left, "left")
        self.right = check_image(self.right, "right")
        if self.left.shape[:2] != self.right.shape[:2]:
            raise StereoKitError(
                f"left and right images differ in size: {self.left.shape[:2]} vs {self.right.shape[:2]} (height, width)"
            )
        if self.left.ndim != self.right.ndim:
            raise StereoKitError(
                f"left and right images differ in channels: {self.left.shape} vs {self.right.shape}"
            )
        self._scale = common_scale(self.left, self.right)
        hw = self.shape
        if self.gt is not None:
            gt = np.asarray(self.gt)
            if gt.shape != hw:
                raise StereoKitError(f"ground truth has shape {gt.shape}, expected {hw} (the images' height x width)")
            self.gt = check_ground_truth(gt)
        self.nonocc = as_mask(self.nonocc, hw, "nonocc", middlebury=True)
        self.fg = as_mask(self.fg, hw, "fg")

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return (int(self.left.shape[0]), int(self.left.shape[1]))

    @property
    def height(self) -> int:
        return self.shape[0]

    @property
    def width(self) -> int:
        return self.shape[1]

    @property
    def channels(self) -> int:
        return 1 if self.left.ndim == 2 else 3

    @cached_property
    def left_float(self) -> np.ndarray:
        """Left image as float32 in [0, 1] (integers scaled by the pair's `full_scale`), gray or RGB as given."""
        return to_float(self.left, self._scale)

    @cached_property
    def right_float(self) -> np.ndarray:
        return to_float(self.right, self._scale)

    @cached_property
    def left_gray(self) -> np.ndarray:
        """Left image as float32 gray."""
        return to_gray(self.left_float)

    @cached_property
    def right_gray(self) -> np.ndarray:
        return to_gray(self.right_float)

    def depth(self, disparity: np.ndarray) -> np.ndarray:
        """Depth from disparity with this pair's calibration."""
        if self.calib is None:
            raise StereoKitError(f"pair {self.name!r} has no calibration; depth needs focal length and baseline")
        return self.calib.depth(disparity)

    def __repr__(self) -> str:
        extras = [k for k in ("gt", "nonocc", "fg", "calib") if getattr(self, k) is not None]
        return f"StereoPair(name={self.name!r}, shape={self.shape}, channels={self.channels}, with={extras})"
