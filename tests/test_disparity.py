"""Winner-takes-all, subpixel fits, uniqueness, right disparity from the same volume, left-right check."""

from __future__ import annotations

import numpy as np
import pytest

from stereokit import StereoKitError
from stereokit.cost import cost_volume
from stereokit.disparity import disparity_with_lr_check, left_right_check, right_disparity, winner_takes_all

# Numba flags the inlined pixel-cost overload when compiling (see stereokit/cost.py): a known false alarm.
pytestmark = pytest.mark.filterwarnings("ignore:variable '_pix_overload")



def test_wta_argmin_ties_offset_and_all_inf():
    vol = np.array([[[3, 1, 1, 2], [np.inf, np.inf, np.inf, np.inf], [np.inf, 5, 4, np.inf]]], np.float32)
    d = winner_takes_all(vol, min_disp=-2, subpixel=None)
    assert d.dtype == np.float32
    assert d[0, 0] == -1  # tie between k=1 and k=2 goes to the smaller disparity
    assert np.isnan(d[0, 1])
    assert d[0, 2] == 0


@pytest.mark.parametrize("true", [3.3, 5.0, 6.5, 7.85])
def test_subpixel_fits_are_exact_on_their_model(true):
    k = np.arange(12, dtype=np.float64)
    para = ((k - true) ** 2).astype(np.float32)[None, None, :]
    vee = np.abs(k - true).astype(np.float32)[None, None, :]
    assert winner_takes_all(para, 0, subpixel="parabola")[0, 0] == pytest.approx(true, abs=1e-5)
    assert winner_takes_all(vee, 0, subpixel="equiangular")[0, 0] == pytest.approx(true, abs=1e-5)
    assert winner_takes_all(para, 0, subpixel=None)[0, 0] == np.floor(true + 0.5 - 1e-9)


def test_subpixel_offsets_are_computed_in_float64():
    # float32 costs whose differences float32 would round: the offset is taken from the exact (float64) differences
    rng = np.random.default_rng(3)
    vol = np.empty((1, 200, 3), np.float32)
    vol[0, :, 1] = (rng.random(200) * 1e-3).astype(np.float32)
    vol[0, :, 0] = (1.0 + rng.random(200)).astype(np.float32)
    vol[0, :, 2] = (1.0 + rng.random(200)).astype(np.float32)
    cm, best, cp = (vol[0, :, j].astype(np.float64) for j in range(3))
    expect = {"parabola": (cm - cp) / (2.0 * (cm - 2.0 * best + cp)),
              "equiangular": (cm - cp) / (2.0 * np.maximum(cm - best, cp - best))}
    for method, delta in expect.items():
        np.testing.assert_array_equal(winner_takes_all(vol, 0, subpixel=method)[0], (1.0 + delta).astype(np.float32))


def test_subpixel_skipped_at_range_ends_and_next_to_inf():
    vol = np.array([[[0, 1, 2], [np.inf, 0, 1], [2, 1, 0]]], np.float32)
    assert winner_takes_all(vol, 0, subpixel="parabola").tolist() == [[0.0, 1.0, 2.0]]


def smooth_shifted_pair(shift: float, h: int = 40, w: int = 96):
    """Band-limited texture sampled analytically: right(x - shift) = left(x) exactly, shift fractional."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    left = np.zeros((h, w))
    right = np.zeros((h, w))
    for _ in range(24):
        fx, fy = rng.uniform(0.05, 0.6), rng.uniform(0.0, 0.5)
        ph, amp = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.0)
        left += amp * np.sin(fx * x + fy * y + ph)
        right += amp * np.sin(fx * (x + shift) + fy * y + ph)
    lo, hi = left.min(), left.max()
    return ((left - lo) / (hi - lo)).astype(np.float32), ((right - lo) / (hi - lo)).astype(np.float32)


@pytest.mark.parametrize("shift", [4.25, 6.5, 7.75])
def test_subpixel_accuracy_on_subpixel_shift(shift):
    left, right = smooth_shifted_pair(shift)
    vol = cost_volume(left, right, 16, cost="ssd", window=7)
    inner = (slice(6, -6), slice(20, -6))
    d_int = winner_takes_all(vol, 0, subpixel=None)[inner]
    d_sub = winner_takes_all(vol, 0, subpixel="parabola")[inner]
    err_int = np.abs(d_int - shift).mean()
    err_sub = np.abs(d_sub - shift).mean()
    assert err_sub < 0.1
    assert err_sub < err_int / 2


def test_uniqueness_rejects_ambiguous_minima():
    vol = np.full((1, 2, 10), 10.0, np.float32)
    vol[0, 0, 2] = 1.0
    vol[0, 0, 7] = 1.05  # a second, distant minimum within 10 %
    vol[0, 1, 2] = 1.0
    vol[0, 1, 3] = 1.01  # the neighbour does not count
    d = winner_takes_all(vol, 0, subpixel=None, uniqueness=10)
    assert np.isnan(d[0, 0]) and d[0, 1] == 2
    assert winner_takes_all(vol, 0, subpixel=None, uniqueness=0)[0, 0] == 2
    assert winner_takes_all(vol, 0, subpixel=None, uniqueness=3)[0, 0] == 2


def test_right_disparity_matches_brute_force():
    rng = np.random.default_rng(2)
    vol = rng.random((5, 30, 8)).astype(np.float32)
    min_disp = -2
    for x in range(30):  # make it a proper volume: +inf outside the right image
        for k in range(8):
            if not 0 <= x - (min_disp + k) < 30:
                vol[:, x, k] = np.inf
    dr = right_disparity(vol, min_disp)
    for y in range(5):
        for xr in range(30):
            cands = [(vol[y, xr + min_disp + k, k], k) for k in range(8) if 0 <= xr + min_disp + k < 30]
            best = min(cands)
            assert dr[y, xr] == min_disp + best[1]


def occlusion_scene(h=40, w=120, d_bg=4, d_fg=12, a=50, b=80, seed=5):
    """Background at d_bg, a foreground band of columns [a, b) at d_fg; left columns [a - (d_fg - d_bg), a) see
    background that the foreground hides in the right view: the occluded pixels."""
    rng = np.random.default_rng(seed)
    bg = rng.random((h, w + 40)).astype(np.float32)
    fg = rng.random((h, w + 40)).astype(np.float32)
    left = bg[:, :w].copy()
    left[:, a:b] = fg[:, a:b]
    right = np.empty_like(left)
    for xr in range(w):  # render the right view: foreground in front
        x_fg = xr + d_fg
        right[:, xr] = fg[:, x_fg] if a <= x_fg < b else bg[:, xr + d_bg]
    gt = np.full((h, w), float(d_bg), np.float32)
    gt[:, a:b] = d_fg
    occluded = np.zeros((h, w), bool)
    occluded[:, a - (d_fg - d_bg) : a] = True
    return left, right, gt, occluded


@pytest.mark.parametrize("cost,window", [("census", 5), ("sad", 5), ("ncc", 5)])
def test_left_right_check_removes_occluded_pixels(cost, window):
    left, right, gt, occluded = occlusion_scene()
    vol = cost_volume(left, right, 20, cost=cost, window=window, census_window=(5, 5))
    dl = winner_takes_all(vol, 0, subpixel=None)
    checked = left_right_check(dl, right_disparity(vol, 0), threshold=1.0)
    inner = np.zeros_like(occluded)
    inner[3:-3, 20:-3] = True  # beyond the max disparity and the window borders
    removed = np.isnan(checked)
    # Windows fatten the neighbouring surfaces into the band's first and last columns: score its middle.
    core = occluded & np.roll(occluded, 2, axis=1) & np.roll(occluded, -2, axis=1)
    assert removed[core & inner].mean() >= 0.98
    assert removed[occluded & inner].mean() >= 0.6
    visible = inner & ~occluded
    assert removed[visible].mean() <= 0.1
    kept = visible & ~removed
    assert (checked[kept] == gt[kept]).mean() >= 0.995


def test_left_right_check_rule():
    dl = np.array([[np.nan, 1.0, 1.4, 2.0, 0.0]], np.float32)
    dr = np.array([[1.0, 1.0, 3.0, 0.0, np.nan]], np.float32)
    # x=1 -> xr=0 (dr 1: ok); x=2 -> round(0.6)=1 (dr 1, |0.4| ok); x=3 -> xr=1 (dr 1: off by 1, ok at 1, not 0.5);
    # x=4 -> xr=4 (dr NaN: invalid)
    out = left_right_check(dl, dr, threshold=1.0)
    assert np.isnan(out[0, 0]) and out[0, 1] == 1.0 and out[0, 2] == pytest.approx(1.4) and out[0, 3] == 2.0
    assert np.isnan(out[0, 4])
    assert np.isnan(left_right_check(dl, dr, threshold=0.5)[0, 3])
    dl2 = np.array([[3.0, 0.0]], np.float32)  # match left of the image
    assert np.isnan(left_right_check(dl2, np.zeros_like(dl2), 1.0)[0, 0])


def test_bad_arguments():
    vol = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(StereoKitError, match="subpixel"):
        winner_takes_all(vol, 0, subpixel="cubic")
    with pytest.raises(StereoKitError, match="uniqueness"):
        winner_takes_all(vol, 0, uniqueness=100)
    with pytest.raises(StereoKitError, match="shape"):
        winner_takes_all(np.zeros((3, 4), np.float32))
    with pytest.raises(StereoKitError, match="one shape"):
        left_right_check(np.zeros((2, 3)), np.zeros((2, 4)))


@pytest.mark.parametrize("bad, msg", [(np.nan, "NaN"), (-np.inf, "-inf")])
def test_volume_values_refused_like_sgm(bad, msg):
    from stereokit.disparity import disparity_with_lr_check

    vol = np.zeros((2, 3, 4), np.float32)
    vol[1, 1, 2] = bad
    for step in (winner_takes_all, right_disparity, disparity_with_lr_check):
        with pytest.raises(StereoKitError, match=msg):
            step(vol)


def test_volume_dtype_is_the_convention():
    with pytest.raises(StereoKitError, match="float32"):
        winner_takes_all(np.zeros((2, 3, 4), np.float64))


@pytest.mark.parametrize("subpixel,uniqueness,min_disp", [("parabola", 0.0, 0), ("equiangular", 10.0, -3), (None, 5.0, 2)])
def test_fused_lr_pass_equals_composition(subpixel, uniqueness, min_disp):
    from stereokit.disparity import disparity_with_lr_check

    left, right, _, _ = occlusion_scene()
    vol = cost_volume(left, right, 20, min_disp, cost="sad", window=3)
    composed = left_right_check(winner_takes_all(vol, min_disp, subpixel, uniqueness), right_disparity(vol, min_disp), 1.0)
    fused = disparity_with_lr_check(vol, min_disp, subpixel, uniqueness, 1.0)
    assert np.array_equal(fused, composed, equal_nan=True)


def reference_wta(vol, min_disp, subpixel, uniqueness):
    h, w, nd = vol.shape
    out = np.full((h, w), np.nan, np.float32)
    for y in range(h):
        for x in range(w):
            c = vol[y, x].astype(np.float64)
            if not np.isfinite(c).any():
                continue
            k = int(np.argmin(c))
            far = np.abs(np.arange(nd) - k) > 1
            if uniqueness > 0 and far.any() and c[far].min() < vol[y, x, k] * np.float32(100 / (100 - uniqueness)):
                continue
            delta = 0.0
            if subpixel and 0 < k < nd - 1 and np.isfinite(c[k - 1]) and np.isfinite(c[k + 1]):
                cm, c0, cp = c[k - 1], c[k], c[k + 1]
                den = cm - 2 * c0 + cp if subpixel == "parabola" else max(cm - c0, cp - c0)
                if den > 0:
                    delta = float(np.clip((cm - cp) / (2 * den), -0.5, 0.5))
            out[y, x] = min_disp + k + delta
    return out


@pytest.mark.parametrize("subpixel", ["parabola", "equiangular", None])
@pytest.mark.parametrize("uniqueness", [0.0, 15.0])
def test_wta_matches_reference_on_random_volume(subpixel, uniqueness):
    rng = np.random.default_rng(7)
    vol = rng.random((6, 25, 9)).astype(np.float32)
    vol[rng.random(vol.shape) < 0.1] = np.inf
    vol[0, 0] = np.inf
    got = winner_takes_all(vol, -2, subpixel, uniqueness)
    np.testing.assert_allclose(got, reference_wta(vol, -2, subpixel, uniqueness), atol=1e-6)


def test_uniqueness_limit_is_strict_and_exact_ties_are_ambiguous():
    # exactly at the limit best * 100 / (100 - u) is not "less than" it: kept (OpenCV SGBM's strict test)
    assert winner_takes_all(np.array([[[1, 5, 2]]], np.float32), 0, None, 50)[0, 0] == 0
    # an exact tie with the best cost more than one disparity away: ambiguous, whatever the ratio
    flat = np.zeros((1, 1, 6), np.float32)
    assert np.isnan(winner_takes_all(flat, 0, None, 10)[0, 0])
    assert np.isnan(winner_takes_all(np.array([[[3, 9, 3]]], np.float32), 0, None, 1)[0, 0])


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda v: winner_takes_all(v, 1.5), "min_disp"),
        (lambda v: winner_takes_all(v, "2"), "min_disp"),
        (lambda v: winner_takes_all(v, None), "min_disp"),
        (lambda v: right_disparity(v, 0.5), "min_disp"),
        (lambda v: winner_takes_all(v, 0, uniqueness="a"), "uniqueness"),
        (lambda v: winner_takes_all(v, 0, subpixel=["parabola"]), "subpixel"),
        (lambda v: left_right_check(v[..., 0], v[..., 0], "a"), "threshold"),
    ],
)
def test_bad_options_name_themselves(call, words):
    vol = np.random.default_rng(0).random((3, 6, 4), dtype=np.float32)
    with pytest.raises(StereoKitError, match=words):
        call(vol)
    assert winner_takes_all(vol, 2.0)[0, 0] >= 2  # an integral float is an integer


def _flat_volume(w, nd, min_disp=0, value=1.0):
    """One row, all-equal costs, +inf where x - d leaves the right image."""
    x = np.arange(w)[None, :, None]
    d = min_disp + np.arange(nd)[None, None, :]
    return np.where(x - d < 0, np.float32(np.inf), np.float32(value)).astype(np.float32)


def test_right_disparity_ties_go_to_the_smallest_disparity():
    # every candidate C(y, xr + d, d) of every right pixel costs the same: the smallest disparity wins
    assert right_disparity(_flat_volume(6, 3), 0).tolist() == [[0.0] * 6]
    # min_disp 2: xr + 2 + k must lie inside the 6 px image: xr 0..3 -> 2, xr 4, 5 have no candidate -> NaN
    got = right_disparity(_flat_volume(6, 3, 2), 2)[0]
    assert got[:4].tolist() == [2.0] * 4 and np.isnan(got[4:]).all()


def test_left_right_check_rounds_the_match_to_the_nearest_column():
    # x = 3, d = 1.4: x - d = 1.6 rounds to column 2 (dr 1: |1.4 - 1| = 0.4 <= 1, kept);
    # truncating to column 1 would compare with dr 5 and reject it
    dl = np.array([[np.nan, np.nan, np.nan, 1.4]], np.float32)
    dr = np.array([[np.nan, 5.0, 1.0, np.nan]], np.float32)
    assert left_right_check(dl, dr, threshold=1.0)[0, 3] == np.float32(1.4)


def test_fused_check_rounds_the_match_to_the_nearest_column():
    # left pixel x = 4: costs (d - 1.4)^2 at d = 0, 1, 2 = 1.96, 0.16, 0.36 -> parabola minimum d = 1.4,
    # match x - d = 2.6 -> column 3. Every other cell costs 9, so right pixel 3's best is C(4, 1) = 0.16 (d_R 1)
    # and right pixel 2's is C(4, 2) = 0.36 (d_R 2). Rounded: |1.4 - 1| = 0.4 <= 0.5 kept;
    # truncated (column 2): |1.4 - 2| = 0.6 > 0.5 rejected.
    vol = _flat_volume(6, 3, value=9.0)
    vol[0, 4] = [1.96, 0.16, 0.36]
    out = disparity_with_lr_check(vol, 0, "parabola", 0.0, 0.5)
    assert abs(float(out[0, 4]) - 1.4) < 1e-5


def test_left_right_check_match_beyond_the_right_border_is_invalid():
    # x = 1, d = -1 (negative disparities: min_disp < 0): the match x - d = 2 lies beyond the 2 px row, so the
    # pixel is invalid; reading one column too far would land on the next row's first right disparity (-1: agrees)
    dl = np.array([[np.nan, -1.0], [np.nan, np.nan]], np.float32)
    dr = np.array([[np.nan, np.nan], [-1.0, np.nan]], np.float32)
    assert np.isnan(left_right_check(dl, dr, threshold=1.0)).all()


def test_uniqueness_zero_keeps_distant_ties():
    # uniqueness 0 disables the test (documented): an exact tie far from the best is then resolved to the smallest
    # disparity, not refused as ambiguous
    vol = np.array([[[1, 5, 1], [2, 7, 7]]], np.float32)
    assert winner_takes_all(vol, 0, None, 0.0).tolist() == [[0.0, 0.0]]
    assert disparity_with_lr_check(_flat_volume(6, 3, value=1.0), 0, None, 0.0, 1.0)[0, 5] == 0.0


def test_fused_lr_threshold_zero_requires_exact_agreement():
    # left pixel 4: costs (9, 1, 9) -> d 1, match column 3. Right pixel 3's candidates C(3, 0) = 9, C(4, 1) = 1,
    # C(5, 2) = 0.5 -> d_R 2. |1 - 2| = 1: kept at threshold 1, refused at 0 (exact agreement only).
    # Left pixel 5: costs (9, 9, 0.5) -> d 2, match column 3 too, d_R 2: agrees exactly, kept at 0.
    vol = _flat_volume(6, 3, value=9.0)
    vol[0, 4] = [9.0, 1.0, 9.0]
    vol[0, 5] = [9.0, 9.0, 0.5]
    exact = disparity_with_lr_check(vol, 0, None, 0.0, 0.0)
    assert np.isnan(exact[0, 4]) and exact[0, 5] == 2.0
    assert disparity_with_lr_check(vol, 0, None, 0.0, 1.0)[0, 4] == 1.0
    composed = left_right_check(winner_takes_all(vol, 0, None), right_disparity(vol), 0.0)
    assert np.array_equal(exact, composed, equal_nan=True)


@pytest.mark.parametrize("threshold", [-1.0, "1", float("nan")])
def test_fused_lr_threshold_is_checked(threshold):
    # a negative threshold would silently switch the check off inside the kernel
    vol = _flat_volume(6, 3)
    with pytest.raises(StereoKitError, match="threshold"):
        disparity_with_lr_check(vol, 0, None, 0.0, threshold)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4)])
def test_left_right_check_refuses_non_2d_maps(shape):
    with pytest.raises(StereoKitError, match="2-D"):
        left_right_check(np.zeros(shape, np.float32), np.zeros(shape, np.float32))


def test_subpixel_none_may_be_spelled_as_a_string():
    # "none" (as the command line passes it) means no subpixel fit, like None
    k = np.arange(8, dtype=np.float64)
    para = ((k - 3.3) ** 2).astype(np.float32)[None, None, :]
    assert winner_takes_all(para, 0, subpixel="none")[0, 0] == 3.0
    vol = _flat_volume(8, 8, value=99.0)
    vol[0, 7] = para[0, 0]  # x = 7: best d 3 -> right pixel 4, whose best is C(7, 3) too: consistent
    assert disparity_with_lr_check(vol, 0, "none", 0.0, 1.0)[0, 7] == 3.0


def test_left_right_check_halfway_match_goes_to_the_smaller_disparity():
    # x = 3, d = 1.5 (a subpixel fit between two tied disparities 1 and 2): x - d = 1.5 lies halfway between
    # columns 1 and 2; it is rounded up, to column 2 = x - floor(d), the smaller disparity's match (as ties go to the
    # smaller disparity in the winner-takes-all). dr there is 1: |1.5 - 1| = 0.5 <= 0.5 kept; column 1 (dr 9) would
    # reject it.
    dl = np.array([[np.nan, np.nan, np.nan, 1.5]], np.float32)
    dr = np.array([[np.nan, 9.0, 1.0, np.nan]], np.float32)
    assert left_right_check(dl, dr, threshold=0.5)[0, 3] == np.float32(1.5)
