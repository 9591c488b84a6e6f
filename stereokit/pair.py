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

    def depth(self, disparity: np.ndarray) -> np.ndarray:
        """Depth `f * B / (d + doffs)` in the baseline's unit; NaN where the disparity is invalid or d + doffs <= 0."""
        d = np.asarray(disparity, dtype=np.float64) + self.doffs
        with np.errstate(divide="ignore", invalid="ignore"):
            z = self.focal * self.baseline / d
        z[~(d > 0)] = np.nan
        return z.astype(np.float32)


def _check_image(img: np.ndarray, which: str) -> np.ndarray:
    if img is None:
        raise StereoKitError(f"{which} image is missing")
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise StereoKitError(f"{which} image must be 2-D (gray) or H x W x 3 (RGB), got shape {img.shape}")
    if img.size == 0 or img.shape[0] == 0 or img.shape[1] == 0:
        raise StereoKitError(f"{which} image is empty (shape {img.shape})")
    if img.dtype == np.bool_ or not (img.dtype in (np.uint8, np.uint16) or np.issubdtype(img.dtype, np.floating)):
        raise StereoKitError(f"{which} image has dtype {img.dtype}; expected uint8, uint16 or float")
    if np.issubdtype(img.dtype, np.floating) and not np.all(np.isfinite(img)):
        raise StereoKitError(f"{which} image contains NaN or inf values")
    return img


def _check_mask(mask: np.ndarray | None, shape: tuple[int, int], which: str) -> np.ndarray | None:
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.shape != shape:
        raise StereoKitError(f"{which} mask has shape {mask.shape}, expected {shape} (the images' height x width)")
    return mask.astype(bool)


def to_float(img: np.ndarray) -> np.ndarray:
    """Image as float32: integer types scaled to [0, 1] by their maximum, floats kept as given."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    return img.astype(np.float32)


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

    def __post_init__(self) -> None:
        self.left = _check_image(self.left, "left")
        self.right = _check_image(self.right, "right")
        if self.left.shape[:2] != self.right.shape[:2]:
            raise StereoKitError(
                f"left and right images differ in size: {self.left.shape[:2]} vs {self.right.shape[:2]} (height, width)"
            )
        if self.left.ndim != self.right.ndim:
            raise StereoKitError(
                f"left and right images differ in channels: {self.left.shape} vs {self.right.shape}"
            )
        hw = self.shape
        if self.gt is not None:
            gt = np.asarray(self.gt)
            if gt.shape != hw:
                raise StereoKitError(f"ground truth has shape {gt.shape}, expected {hw} (the images' height x width)")
            gt = gt.astype(np.float32, copy=True)
            gt[~np.isfinite(gt)] = np.nan
            self.gt = gt
        self.nonocc = _check_mask(self.nonocc, hw, "nonocc")
        self.fg = _check_mask(self.fg, hw, "fg")

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
        """Left image as float32 ([0, 1] for integer inputs), gray or RGB as given."""
        return to_float(self.left)

    @cached_property
    def right_float(self) -> np.ndarray:
        return to_float(self.right)

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
