"""Reading and writing images and disparity maps (PFM, KITTI PNG, Middlebury PNG, NumPy)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .errors import StereoKitError


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as uint8/uint16, gray (H, W) or RGB (H, W, 3); a missing or undecodable file raises."""
    path = Path(path)
    if not path.is_file():
        raise StereoKitError(f"image file not found: {path}")
    if path.stat().st_size == 0:
        raise StereoKitError(f"image file is empty: {path}")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise StereoKitError(f"cannot decode image (unreadable, truncated or unsupported format): {path}")
    if img.ndim == 3:
        img = img[:, :, :3]
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img
