"""StereoKit: dense stereo matching behind one rectified-pair API."""

from .jit_cache import drop_stale_jit_cache

drop_stale_jit_cache()  # before any kernel loads its cache (see stereokit.jit_cache)

from .api import match, run_matcher
from .errors import StereoKitError
from .pair import Calibration, StereoPair
from .registry import matchers

__all__ = ["StereoPair", "Calibration", "StereoKitError", "match", "run_matcher", "matchers"]
__version__ = "0.1.0"
