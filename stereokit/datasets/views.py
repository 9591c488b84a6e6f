"""Other views of a pair with ground truth: the scene seen from its right camera, as a left-referenced pair.

Learned matchers train on left-referenced pairs only; where a dataset also gives the right view's disparity
(``meta["gt_right"]``: Middlebury's ``disp6`` / ``disp5`` / ``disp1.pfm``, the synthetic generator), mirroring both
images left-right and swapping them turns the right-referenced pair into one more left-referenced pair with the
convention ``d = x_left - x_right >= 0`` intact: a right pixel x with disparity d matches the left pixel x + d, and
after the mirror (x -> W - 1 - x) the new reference pixel x' matches x' - d in the new target image.
"""

from __future__ import annotations

import numpy as np

from ..pair import StereoPair
from .middlebury import lr_consistent


def _mirror(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else np.ascontiguousarray(np.asarray(a)[:, ::-1])


def right_reference(pair: StereoPair) -> StereoPair | None:
    """The pair from its right camera, mirrored (see the module docstring); None without ``meta["gt_right"]``.

    Its `nonocc` is ``meta["nonocc_right"]`` where the dataset has it (the synthetic generator, exact from its
    geometry), else the left-right consistency of the two GT maps (as the Middlebury loader computes it), its
    ``meta["gt_right"]`` the original left GT, mirrored, so that applying this twice gives the original pair back;
    other per-view arrays in `meta`, and the calibration (`calib`, ``meta["calib"]``), are dropped.
    """
    gt_r = pair.meta.get("gt_right")
    if gt_r is None:
        return None
    gt = _mirror(np.asarray(gt_r, np.float32))
    other = _mirror(pair.gt)
    exact = pair.meta.get("nonocc_right")  # the synthetic generator's, from the geometry itself
    if exact is not None:
        nonocc = _mirror(exact)
    else:
        nonocc = lr_consistent(gt, other) if other is not None else None
    # per-view maps and the calibration of the original reference camera do not carry over
    meta = {k: v for k, v in pair.meta.items() if not isinstance(v, np.ndarray) and k not in ("calib", "nonocc_source")}
    if other is not None:
        meta["gt_right"] = other
        meta["nonocc_source"] = "geometry" if exact is not None else "lr-check"
    if exact is not None and pair.nonocc is not None:
        meta["nonocc_right"] = _mirror(pair.nonocc)  # so that applying this twice gives the original pair back
    meta["view"] = "right" if pair.meta.get("view") != "right" else "left"
    name = pair.name[:-2] if pair.name.endswith("-R") else pair.name + "-R"
    return StereoPair(left=_mirror(pair.right), right=_mirror(pair.left), gt=gt, nonocc=nonocc, name=name, meta=meta)
