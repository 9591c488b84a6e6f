"""StereoKit: dense stereo matching behind one rectified-pair API."""

from .api import match, run_matcher
from .errors import StereoKitError
from .pair import Calibration, StereoPair
from .registry import matchers

__all__ = ["StereoPair", "Calibration", "StereoKitError", "match", "run_matcher", "matchers"]
__version__ = "0.1.0"
