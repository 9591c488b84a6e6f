"""Checks shared by every matcher, so bad ranges fail the same way everywhere."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .errors import StereoKitError
from .pair import to_gray


def check_number(name: str, value, *, integer: bool = False, positive: bool = False,
                 maximum: float | None = None) -> float | int:
    """`value` as a finite number >= 0 (> 0 when `positive`; an int when `integer`; at most `maximum` when given),
    else StereoKitError naming `name`: a string such as "x" from the command line would otherwise fail deep inside
    NumPy, Numba or torch."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer:
        ok = float(value).is_integer()
    if ok and (value > 0 if positive else value >= 0):
        if maximum is None or value <= maximum:
            return int(value) if integer else float(value)
        raise StereoKitError(f"{name} must be at most {maximum:g}, got {value!r}")
    kind = ("a positive " if positive else "a non-negative ") + ("integer" if integer else "number")
    raise StereoKitError(f"{name} must be {kind}, got {value!r}")


def check_bool(name: str, value) -> bool:
    """`value` if it is True or False, else StereoKitError naming `name`: a string such as "no" would read as True."""
    if not isinstance(value, (bool, np.bool_)):
        raise StereoKitError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_min_disp(min_disp) -> int:
    """`min_disp` as an int (integral floats such as 2.0 accepted), else StereoKitError: 1.5 or "2" would shift or
    break the disparities silently."""
    if isinstance(min_disp, bool) or not isinstance(min_disp, numbers.Real) or not float(min_disp).is_integer():
        raise StereoKitError(f"min_disp must be an integer, got {min_disp!r}")
    if abs(min_disp) > 2**31:
        raise StereoKitError(f"min_disp {min_disp} is out of range")
    return int(min_disp)


def check_disparity_range(width: int, max_disp: int, min_disp: int = 0) -> tuple[int, int]:
    """Validate a disparity search range `[min_disp, min_disp + max_disp)` for an image `width` pixels wide.

    Returns `(min_disp, num_disp)`. Raises `StereoKitError` if the range is empty or wider than the image.
    """
    if not isinstance(max_disp, numbers.Integral) or isinstance(max_disp, bool):
        if isinstance(max_disp, float) and float(max_disp).is_integer():
            max_disp = int(max_disp)
        else:
            raise StereoKitError(f"max_disp must be a positive integer, got {max_disp!r}")
    min_disp = check_min_disp(min_disp)
    max_disp = int(max_disp)
    if max_disp <= 0:
        raise StereoKitError(f"max_disp must be a positive integer, got {max_disp}")
    if max_disp >= width:
        raise StereoKitError(
            f"disparity range [{min_disp}, {min_disp + max_disp}) is wider than the image ({width} px): "
            f"max_disp must be smaller than the width"
        )
    if min_disp <= -width or min_disp + max_disp - 1 >= width:
        # a disparity d matches somewhere only if |d| < width
        raise StereoKitError(
            f"disparity range [{min_disp}, {min_disp + max_disp}) reaches beyond the image ({width} px): "
            f"every disparity d must satisfy |d| < {width}"
        )
    return min_disp, max_disp


def reject_unknown(name: str, given, known=None) -> None:
    """Raise the one "unknown option" error of every matcher for the names in `given` that are not in `known`
    (all of them when `known` is None), listing the known ones when there are."""
    unknown = set(given) - set(known or ())
    if unknown:
        listed = f"; known: {', '.join(sorted(known))}" if known else ""
        raise StereoKitError(f"{name}: unknown option(s) {', '.join(sorted(unknown))}{listed}")


def check_disparity(disp: np.ndarray, shape: tuple[int, int], who: str = "matcher") -> np.ndarray:
    """Coerce a matcher's output to the disparity convention (float32, H x W, NaN invalid) or raise."""
    disp = np.asarray(disp)
    if disp.shape != tuple(shape):
        raise StereoKitError(f"{who} returned a disparity of shape {disp.shape}, expected {tuple(shape)}")
    disp = disp.astype(np.float32, copy=False)
    if np.isinf(disp).any():
        disp = disp.copy()
        disp[np.isinf(disp)] = np.nan
    return disp


def check_cost_volume(cost_volume: np.ndarray, *, scan_values: bool = False) -> np.ndarray:
    """A cost volume as every pipeline step expects it (float32, (H, W, D), non-empty, C-contiguous) or raise.

    scan_values: also refuse NaN and -inf (only +inf may mark an invalid cost); one pass over the volume, so steps
    whose kernels already inspect every cost (SGM) leave it off.
    """
    vol = np.asarray(cost_volume)
    if vol.ndim != 3:
        raise StereoKitError(f"cost volume must be 3-D (H, W, D), got shape {vol.shape}")
    if vol.dtype != np.float32:
        raise StereoKitError(f"cost volume must be float32, got {vol.dtype} (convert with .astype(np.float32))")
    if min(vol.shape) == 0:
        raise StereoKitError(f"cost volume is empty (shape {vol.shape})")
    vol = np.ascontiguousarray(vol)
    if scan_values and not vol.min() > -np.inf:  # one pass, no temporaries: the min is NaN or -inf if any is
        raise StereoKitError("cost volume contains NaN or -inf (only +inf may mark invalid costs)")
    return vol


def round_up_16(value: float) -> int:
    """Smallest positive multiple of 16 that is >= value."""
    return max(16, int(math.ceil(value / 16.0)) * 16)


def max_disp_from_gt(max_gt: float, width: int) -> int:
    """Disparities to search for a dataset whose largest finite ground truth is `max_gt`: the next multiple of 16
    above it (a disparity equal to the max must be searchable), kept below the image width."""
    d = round_up_16(math.floor(max_gt) + 1 if math.isfinite(max_gt) else 64)
    limit = (width - 1) // 16 * 16
    return max(16, min(d, limit)) if limit >= 16 else max(1, width - 1)


def check_guide_image(name: str, img, shape: tuple[int, int] | None = None) -> np.ndarray:
    """`img` (gray, RGB or RGBA, any real dtype, kept in its own units) as float32 (H, W): BT.601 luma of RGB, alpha
    ignored; else StereoKitError naming `name`. For the images that steer SGM's penalties and CBCA's crosses."""
    a = np.asarray(img)
    # the dtype first: astype(float32) would drop a complex image's imaginary part (a warning, no error), turn
    # booleans into numbers and fail on strings with a bare ValueError
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise StereoKitError(f"{name} must be numeric, got {a.dtype}")
    if a.ndim == 3 and a.shape[2] in (3, 4):
        a = to_gray(a[..., :3].astype(np.float32))
    if a.ndim != 2 or a.size == 0:
        raise StereoKitError(f"{name} must be a non-empty (H, W) image, got shape {np.shape(img)}")
    if shape is not None and a.shape != tuple(shape):
        raise StereoKitError(f"{name} has shape {np.shape(img)}, expected {tuple(shape)} (the cost volume's H, W)")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.all(np.isfinite(a)):
        raise StereoKitError(f"{name} contains NaN or inf")
    return a
