"""`match`: the one-call Python entry point."""

from __future__ import annotations

import os
from collections.abc import Mapping

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
    if isinstance(x, StereoPair):  # match(pair, "sgm") would read "sgm" as the right image's path
        raise StereoKitError(f"{which} image is a StereoPair: call run_matcher(pair, method, max_disp), or "
                             "match(pair.left, pair.right, method)")
    return np.asarray(x)


# Arguments that `match`, `run_matcher` and the comparison runner pass themselves: a matcher parameter of one of these
# names would reach the call twice (a TypeError, or a matcher called with the wrong pair). name -> (command-line
# option, Python argument) to use instead, or None where the name is not a parameter of any kind.
RESERVED_PARAMS: dict[str, tuple[str, str] | None] = {
    "left": None,
    "right": None,
    "pair": None,
    "method": ("--method", "method="),
    "max_disp": ("--max-disp", "max_disp="),
}


def check_param_names(
    params: Mapping[str, object],
    given: str = "parameter {name}",
    *,
    cli: bool = False,
    instead: Mapping[str, tuple[str, str]] | None = None,
) -> None:
    """Raise StereoKitError if a matcher parameter is named after an argument the caller passes itself.

    `given` words the parameter in the message (`{name}` is replaced by its name); `cli` picks the command-line
    option over the Python argument in the advice; `instead` adds or overrides names for one command (e.g.
    `stereokit match`'s --min-disp, `stereokit compare`'s --methods).
    """
    table = {**RESERVED_PARAMS, **(instead or {})}
    for name in params:
        if name in table:
            use = table[name]
            where = given.replace("{name}", name)
            if use is None:
                what = "the stereo pair" if name == "pair" else f"the {name} image"
                raise StereoKitError(f"{where}: {name!r} is {what}, an argument of its own, not a matcher parameter")
            raise StereoKitError(f"{where}: use {use[0] if cli else use[1]} instead")


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
    check_param_names(params)
    pair = StereoPair(_as_image(left, "left"), _as_image(right, "right"), name="match")
    return run_matcher(pair, method, max_disp, **params)
