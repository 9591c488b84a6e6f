"""The paper's stereo-method hyperparameters (Zbontar & LeCun 2016, tables of the reference code), as named presets.

Keys: sgm_P1, sgm_P2 (= pi1 * pi2), sgm_Q1 (= q1), sgm_Q2 (= q1 * q2), sgm_V (alpha1), sgm_D (tau_so), cbca_L1,
cbca_tau1, cbca_i1, cbca_i2 (0 = no cross-based aggregation), blur_sigma, blur_t; and three refinement switches
that are not the paper's (its presets keep them at the paper's behaviour): lr_interpolate (True: the paper's
occlusion / mismatch interpolation; False: pixels failing the left-right check stay invalid, NaN, as `sgm` leaves
them), speckle_size / speckle_diff (stereokit.refine.remove_speckles after the filters; 0 = off).
Intensity thresholds (sgm_D, cbca_tau1) apply to the images as fed to the network: gray, each normalised to zero
mean and unit std. SGM penalties are in the network's cost units: fast 1 - cosine (range 0..2, the paper's -cosine
shifted by one), acrt 1 - sigmoid (0..1, the paper's -sigmoid shifted by one); SGM averages its 4 paths as the paper.
"middlebury"/"kitti" pick the fast or acrt column by architecture; "kitti" is the KITTI 2015 column, "kitti2012"
the KITTI 2012 fast column.

"tuned" (fast only) is not the paper's: the paper tuned its values for its own networks, and ours, trained far shorter,
gives costs of another shape. It is the result of benchmarks/tune_mccnn_preset.py, a coordinate descent on the eight
shared training scenes only (the search never sees the held-out scenes; they informed its rule twice, as
benchmarks/README.md records: sessions 13 and 20). For the shipped learned/weights/mccnn_fast.pt it ran
from the previous weights' tuned values (--start tuned; mean bad-2.0 there 5.034 -> 5.023: P2 changed); the search from
"middlebury" for the same weights ended higher (5.172), as for the 160,000 + 16,000-iteration ones (5.29 vs 5.14). It
turns on the cross-based aggregation that the paper's fast column leaves off (after SGM only), leaves the left-right
failures invalid and removes speckles. Since session 20 the rule scores the mean of bad-2.0 and D1-all (the two
figures of the target) instead of bad-2.0 alone; under it, the search from these values kept nothing (4.517) and the
one from "middlebury" ended higher (4.641), so the values stayed. With other weights, re-run that script (from
"middlebury" and with --start tuned) and keep the lower.
"""

from __future__ import annotations

from stereokit.errors import StereoKitError

PRESETS: dict[tuple[str, str], dict] = {
    ("middlebury", "fast"): dict(sgm_P1=2.3, sgm_P2=55.9, sgm_Q1=4.0, sgm_Q2=8.0, sgm_V=1.5, sgm_D=0.08,
                                 cbca_L1=0, cbca_tau1=0.0, cbca_i1=0, cbca_i2=0, blur_sigma=6.0, blur_t=2.0,
                                 lr_interpolate=True, speckle_size=0, speckle_diff=1.0),
    ("middlebury", "acrt"): dict(sgm_P1=1.3, sgm_P2=18.1, sgm_Q1=4.5, sgm_Q2=9.0, sgm_V=2.75, sgm_D=0.13,
                                 cbca_L1=14, cbca_tau1=0.02, cbca_i1=2, cbca_i2=16, blur_sigma=1.67, blur_t=2.0,
                                 lr_interpolate=True, speckle_size=0, speckle_diff=1.0),
    ("kitti", "fast"): dict(sgm_P1=2.3, sgm_P2=42.3, sgm_Q1=3.0, sgm_Q2=6.0, sgm_V=1.25, sgm_D=0.08,
                            cbca_L1=0, cbca_tau1=0.0, cbca_i1=0, cbca_i2=0, blur_sigma=4.64, blur_t=5.0,
                            lr_interpolate=True, speckle_size=0, speckle_diff=1.0),
    ("kitti", "acrt"): dict(sgm_P1=2.3, sgm_P2=55.8, sgm_Q1=3.0, sgm_Q2=6.0, sgm_V=1.75, sgm_D=0.08,
                            cbca_L1=5, cbca_tau1=0.03, cbca_i1=2, cbca_i2=4, blur_sigma=5.99, blur_t=5.0,
                            lr_interpolate=True, speckle_size=0, speckle_diff=1.0),
    ("tuned", "fast"): dict(sgm_P1=2.254, sgm_P2=27.391, sgm_Q1=3.375, sgm_Q2=60.75, sgm_V=1.5, sgm_D=0.08,
                            cbca_L1=14, cbca_tau1=0.08, cbca_i1=0, cbca_i2=2, blur_sigma=3.0, blur_t=4.0,
                            lr_interpolate=False, speckle_size=100, speckle_diff=1.0),
    ("kitti2012", "fast"): dict(sgm_P1=4.0, sgm_P2=222.9, sgm_Q1=3.0, sgm_Q2=7.5, sgm_V=1.5, sgm_D=0.02,
                                cbca_L1=0, cbca_tau1=0.0, cbca_i1=0, cbca_i2=0, blur_sigma=7.74, blur_t=5.0,
                                lr_interpolate=True, speckle_size=0, speckle_diff=1.0),
}


def preset_params(preset: str, arch: str) -> dict:
    """A copy of the hyperparameters of `preset` ("middlebury", "kitti", "kitti2012", "tuned") for `arch`
    ("fast"/"acrt")."""
    key = (preset, arch)
    if not isinstance(preset, str) or key not in PRESETS:  # isinstance first: a list is unhashable
        known = sorted({p for p, a in PRESETS if a == arch})
        raise StereoKitError(f"unknown MC-CNN-{arch} preset {preset!r}; known: {known}")
    return dict(PRESETS[key])
