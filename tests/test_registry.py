"""The matcher registry: lazy discovery, run-time registration, availability, clear errors."""

import subprocess
import sys

import numpy as np
import pytest

import stereokit
from stereokit import StereoKitError, StereoPair, matchers


def test_builtin_and_entry_point_matchers_are_listed():
    names = set(matchers)
    assert {"sgm", "bm-sad", "bm-ssd", "bm-ncc", "bm-census"} <= names
    assert {"opencv-bm", "opencv-sgbm", "opencv-sgbm-hh", "opencv-sgbm-3way", "mccnn-fast", "gcnet"} <= names


def test_unknown_matcher_names_the_choices():
    with pytest.raises(StereoKitError, match="unknown matcher 'nope'.*sgm"):
        matchers["nope"]


def test_runtime_registration_and_unavailable_reason():
    def shift(pair, max_disp, **params):
        return np.full(pair.shape, 2.0, np.float32)

    shift.unavailable_reason = lambda: "needs a licence"
    matchers.register("test-shift", shift)
    try:
        assert "test-shift" in matchers
        assert matchers.unavailable_reason("test-shift") == "needs a licence"
        assert matchers.unavailable_reason("sgm") is None
        left = np.random.default_rng(0).integers(0, 255, (8, 20), dtype=np.uint8)
        out = stereokit.match(left, left, method="test-shift", max_disp=4)
        assert out.dtype == np.float32 and np.all(out == 2.0)
    finally:
        matchers.unregister("test-shift")
    assert "test-shift" not in matchers


def test_matcher_returning_wrong_shape_is_an_error():
    matchers.register("test-bad", lambda pair, max_disp, **p: np.zeros((2, 2), np.float32))
    try:
        img = np.zeros((8, 20), np.uint8)
        with pytest.raises(StereoKitError, match="shape"):
            stereokit.run_matcher(StereoPair(img, img), "test-bad", 4)
    finally:
        matchers.unregister("test-bad")


def test_importing_stereokit_and_classical_matchers_does_not_load_torch():
    code = (
        "import sys, numpy as np, stereokit\n"
        "img = np.random.default_rng(0).integers(0, 255, (16, 40), dtype=np.uint8)\n"
        "stereokit.match(img, img, method='bm-sad', max_disp=8)\n"
        "list(stereokit.matchers)\n"
        "assert 'torch' not in sys.modules and 'eval' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
