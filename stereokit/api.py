"""`match`: the one-call Python entry point."""

from __future__ import annotations

import os

import numpy as np

from .errors import StereoKitError
from .pair import StereoPair
from .registry import matchers
from .validation import check_disparity, check_disparity_range

DEFAULT_METHOD = "sgm"


def _as_image(x: np.ndarray | str | os.PathLike, which: str) -> np.ndarray:
    if isinstance(x, (str, os.PathLike)):
        from .io import read_image

        return read_image(x)
    if x is None:
        raise StereoKitError(f"{which} image is missing")
    return np.asarray(x)


def run_matcher(pair: StereoPair, method: str, max_disp: int, **params) -> np.ndarray:
    """Run the registered matcher `method` on `pair` and return a checked float32 disparity (NaN invalid)."""
    func = matchers[method]
    _, max_disp = check_disparity_range(pair.width, max_disp, params.get("min_disp", 0))
    try:
        disp = func(pair, max_disp, **params)
    except MemoryError as exc:
        raise StereoKitError(
            f"matcher {method!r} ran out of memory on {pair.width}x{pair.height} with max_disp {max_disp} ({exc}); "
            "reduce max_disp or downscale the pair"
        ) from exc
    return check_disparity(disp, pair.shape, who=f"matcher {method!r}")


def match(
    left: np.ndarray | str | os.PathLike,
    right: np.ndarray | str | os.PathLike,
    method: str = DEFAULT_METHOD,
    max_disp: int = 64,
    **params,
) -> np.ndarray:
    """Disparity of the left view, float32 (H, W) with NaN invalid.

    `left` and `right` are arrays (uint8, uint16 or float; gray or RGB) or image paths; `method` names a matcher
    of `stereokit.matchers`; `max_disp` is the number of disparities searched, `[min_disp, min_disp + max_disp)`.
    Extra keyword arguments go to the matcher.
    """
    pair = StereoPair(_as_image(left, "left"), _as_image(right, "right"), name="match")
    return run_matcher(pair, method, max_disp, **params)
