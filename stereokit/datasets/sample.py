"""The `sample` dataset: the Middlebury 2014 Motorcycle pair bundled with scikit-image (offline)."""

from __future__ import annotations

import numpy as np

from ..pair import Calibration, StereoPair
from .base import Dataset

# From skimage.data.stereo_motorcycle's docstring: calibration of the 4x down-sampled images
# (Middlebury 2014 Motorcycle: f 3979.911 px, doffs 124.343 px, baseline 193.001 mm at full size).
MOTORCYCLE_CALIB = Calibration(focal=994.978, baseline=193.001, doffs=31.086)
MOTORCYCLE_MAX_DISP = 64  # GT spans about 7.2-59.9 px


def load_motorcycle() -> StereoPair:
    """`skimage.data.stereo_motorcycle()` as a `StereoPair` named "motorcycle" (GT NaN where unknown, baseline in mm)."""
    import skimage.data

    left, right, disp = skimage.data.stereo_motorcycle()
    gt = np.asarray(disp, dtype=np.float32).copy()
    gt[~np.isfinite(gt)] = np.nan
    return StereoPair(
        left=left,
        right=right,
        gt=gt,
        calib=MOTORCYCLE_CALIB,
        name="motorcycle",
        meta={"max_disp": MOTORCYCLE_MAX_DISP, "source": "skimage.data.stereo_motorcycle (Middlebury 2014)"},
    )


def sample_dataset() -> Dataset:
    return Dataset("sample", ["motorcycle"], _load)


def _load(i: int) -> StereoPair:
    return load_motorcycle()
