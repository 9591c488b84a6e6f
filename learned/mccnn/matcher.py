"""`mccnn-fast` / `mccnn-acrt`: the paper's stereo method on the MC-CNN cost volume, from the shared steps.

cost (network, both views from one set of features) -> cross-based cost aggregation x cbca_i1 -> SGM with MC-CNN's
penalties (4 paths, averaged) -> CBCA x cbca_i2 -> winner-takes-all -> left-right check with occlusion / mismatch
interpolation -> subpixel parabola -> 5x5 median -> thresholded Gaussian. Two switches that are not the paper's
(presets.py; its presets keep them off) leave the left-right failures invalid instead of interpolating them and
remove speckles at the end. The right view's disparity (for the check) runs the same aggregation on the
right-reference volume C_R(x, d) = C_L(x + d, d), mirrored so that the shared steps (which match at x - d) apply
unchanged.

Scaling: intensities for SGM's D and CBCA's tau1 are the network's inputs (gray, zero mean / unit std per image);
costs are 1 - similarity (fast: 1 - cosine, acrt: 1 - sigmoid), i.e. the paper's -similarity plus one, so the
paper's absolute penalties (see presets.py) apply as published.
"""

from __future__ import annotations

import numpy as np

from stereokit.cbca import MAX_ITERATIONS, cross_based_aggregation
from stereokit.disparity import left_right_check, winner_takes_all
from stereokit.errors import StereoKitError
from stereokit.postprocess import interpolate_lr, lr_labels, subpixel_parabola, thresholded_gaussian
from stereokit.refine import median_filter, remove_speckles
from stereokit.sgm import check_penalty, sgm_mccnn
from stereokit.validation import check_bool, check_disparity_range, reject_unknown

from ..common import check_number, weights_fingerprint
from .model import mccnn_cost_volume, normalize_image
from .presets import PRESETS, preset_params
from .weights import load_model, shipped_weights

_PARAM_KEYS = set(next(iter(PRESETS.values())))


# Each hyperparameter is checked here, under the name the user passed and before the network runs, by the rule of the
# step using it: the steps' own checks name their arguments (P1, not sgm_P1), skip the CBCA options when CBCA is off,
# and a string crashes inside NumPy. SGM's values (positive: the divisors) by SGM's own penalty check; the others by
# kind: (integer, positive, maximum), else >= 0.
_PENALTIES = dict(sgm_P1=False, sgm_P2=False, sgm_Q1=True, sgm_Q2=True, sgm_V=True, sgm_D=False)
_NUMERIC = dict(cbca_L1=(True, False, None), cbca_tau1=(False, False, None), cbca_i1=(True, False, MAX_ITERATIONS),
                cbca_i2=(True, False, MAX_ITERATIONS), blur_sigma=(False, True, None), blur_t=(False, True, None),
                speckle_size=(True, False, None), speckle_diff=(False, False, None))
assert set(_PENALTIES) | set(_NUMERIC) | {"lr_interpolate"} == _PARAM_KEYS


def check_params(p: dict) -> dict:
    """A copy of the full hyperparameter dict `p` with every value checked (StereoKitError naming the first bad
    one); integer options given as whole floats (3.0) become ints."""
    out = dict(p)
    for key, positive in _PENALTIES.items():
        out[key] = check_penalty(key, p[key], positive)
    for key, (integer, positive, maximum) in _NUMERIC.items():
        out[key] = check_number(key, p[key], integer=integer, positive=positive, maximum=maximum)
    out["lr_interpolate"] = check_bool("lr_interpolate", p["lr_interpolate"])
    return out


def right_cost_volume(cost_left: np.ndarray, min_disp: int = 0) -> np.ndarray:
    """Right-reference volume from a left-reference one: C_R(y, x, k) = C_L(y, x + min_disp + k, k), +inf outside."""
    H, W, D = cost_left.shape
    out = np.full_like(cost_left, np.inf)
    for k in range(D):
        d = min_disp + k
        if d >= 0:
            out[:, : W - d, k] = cost_left[:, d:, k]
        else:
            out[:, -d:, k] = cost_left[:, : W + d, k]
    return out


def aggregate(vol: np.ndarray, ref: np.ndarray, other: np.ndarray, p: dict, min_disp: int = 0) -> np.ndarray:
    """CBCA x i1 -> SGM (MC-CNN penalties, 4 paths averaged) -> CBCA x i2, for a volume matching ref x to other x - d."""
    if p["cbca_i1"] > 0:
        vol = cross_based_aggregation(vol, ref, other, p["cbca_L1"], p["cbca_tau1"], p["cbca_i1"])
    vol = sgm_mccnn(vol, ref, other, p["sgm_P1"], p["sgm_P2"], p["sgm_Q1"], p["sgm_Q2"], p["sgm_D"], p["sgm_V"],
                    paths=4, min_disp=min_disp)
    if p["cbca_i2"] > 0:
        vol = cross_based_aggregation(vol, ref, other, p["cbca_L1"], p["cbca_tau1"], p["cbca_i2"])
    return vol


def mccnn_pipeline(pair, max_disp: int, arch: str, *, min_disp: int = 0, preset: str = "middlebury",
                   weights=None, device=None, lr_check: bool = True, lr_border: bool = True, return_cost: bool = False,
                   **overrides):
    """The paper's stereo method with network `arch`; `overrides` replace preset hyperparameters by name.

    lr_check=False skips the left-right check and interpolation; lr_border=False applies the paper's occlusion rule
    (fill from the left) in the left border band too. return_cost=True also returns the final aggregated volume.
    """
    min_disp, max_disp = check_disparity_range(pair.width, max_disp, min_disp)
    reject_unknown(f"mccnn-{arch}", overrides,
                   [*_PARAM_KEYS, "min_disp", "preset", "weights", "device", "lr_check", "lr_border"])
    lr_check, lr_border = check_bool("lr_check", lr_check), check_bool("lr_border", lr_border)
    return_cost = check_bool("return_cost", return_cost)
    p = preset_params(preset, arch)
    p.update(overrides)
    p = check_params(p)  # before the network runs; stereo_method checks again for its direct callers
    model = load_model(arch, weights, device)
    left = normalize_image(pair.left_gray)
    right = normalize_image(pair.right_gray)
    vol = mccnn_cost_volume(model, left, right, max_disp, min_disp, device=device, normalize=False)
    return stereo_method(vol, left, right, p, min_disp, lr_check=lr_check, lr_border=lr_border,
                         return_cost=return_cost)


def stereo_method(vol: np.ndarray, left: np.ndarray, right: np.ndarray, p: dict, min_disp: int = 0, *,
                  lr_check: bool = True, lr_border: bool = True, return_cost: bool = False):
    """The paper's stereo method after the network: `vol` the left-reference network cost volume (H, W, D),
    `left` / `right` the normalised gray images, `p` a full parameter dict (see presets.py). Exposed so that the
    hyperparameters can be searched over a cached cost volume (benchmarks/tune_mccnn_preset.py)."""
    p = check_params(p)
    max_disp = vol.shape[2]
    disp_right = None
    if lr_check:  # the right view first, so that at most three volumes are alive at once
        vol_right = np.ascontiguousarray(right_cost_volume(vol, min_disp)[:, ::-1])
        agg_right = aggregate(vol_right, np.ascontiguousarray(right[:, ::-1]), np.ascontiguousarray(left[:, ::-1]),
                              p, min_disp)
        del vol_right
        disp_right = np.ascontiguousarray(winner_takes_all(agg_right, min_disp, subpixel=None)[:, ::-1])
        del agg_right
    vol_left = aggregate(vol, left, right, p, min_disp)
    disp = winner_takes_all(vol_left, min_disp, subpixel=None)
    if disp_right is not None:
        if p["lr_interpolate"]:
            # Occlusions in the left band whose range the image edge cuts are filled from the right (interpolate_lr).
            border = min_disp + max_disp - 1 if lr_border else 0
            disp = interpolate_lr(disp, lr_labels(disp, disp_right, min_disp=min_disp), border=border)
        else:  # sgm's check: the failures invalid, with no need to tell occlusions from mismatches
            disp = left_right_check(disp, disp_right)
    disp = subpixel_parabola(disp, vol_left, min_disp)
    disp = median_filter(disp, 5)  # NaN-aware: invalid pixels neither vote nor get filled
    disp = thresholded_gaussian(disp, p["blur_sigma"], p["blur_t"])
    if p["speckle_size"] > 0:
        disp = remove_speckles(disp, p["speckle_size"], p["speckle_diff"])
    return (disp, vol_left) if return_cost else disp


def mccnn_fast(pair, max_disp: int, *, min_disp: int = 0, preset: str = "middlebury", weights=None, device=None,
               **params) -> np.ndarray:
    """MC-CNN-fst disparity (float32 (H, W), NaN invalid). preset: "middlebury" | "kitti" | "kitti2012" (the paper's) |
    "tuned" (for the shipped weights, see presets.py);
    weights: a weights file (default: the shipped learned/weights/mccnn_fast.pt); device: cpu / cuda (default:
    CUDA when available); other keyword arguments override the preset's hyperparameters (see presets.py)."""
    return _matcher("fast", pair, max_disp, min_disp, preset, weights, device, params)


def mccnn_acrt(pair, max_disp: int, *, min_disp: int = 0, preset: str = "middlebury", weights=None, device=None,
               **params) -> np.ndarray:
    """MC-CNN-acrt disparity; as `mccnn_fast` with the accurate network (raises StereoKitError when no weights are
    shipped and none are given)."""
    return _matcher("acrt", pair, max_disp, min_disp, preset, weights, device, params)


def _matcher(arch: str, pair, max_disp, min_disp, preset, weights, device, params: dict) -> np.ndarray:
    if "return_cost" in params:  # a registered matcher returns the disparity map alone
        raise StereoKitError(f"mccnn-{arch}: return_cost is not a matcher option (a matcher returns the disparity "
                             "alone); call learned.mccnn.matcher.mccnn_pipeline(..., return_cost=True) for the volume")
    return mccnn_pipeline(pair, max_disp, arch, min_disp=min_disp, preset=preset, weights=weights, device=device,
                          **params)


def _acrt_unavailable() -> str | None:
    if shipped_weights("acrt").is_file():
        return None
    return ("no MC-CNN-acrt weights are shipped (too slow to train on the build machine's CPU); train them with "
            "`stereokit train mccnn --arch acrt ...` and pass weights=PATH")


mccnn_acrt.unavailable_reason = _acrt_unavailable

# stereokit compare's cache key: the hash of the weights file in use
mccnn_fast.fingerprint = weights_fingerprint(shipped_weights("fast"))
mccnn_acrt.fingerprint = weights_fingerprint(shipped_weights("acrt"))
