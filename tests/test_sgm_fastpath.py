"""The `sgm` matcher's fast path (census counts -> int16 SGM -> row-by-row winner-takes-all) against the public
float32 pipeline."""

import numpy as np
import pytest

from stereokit.classical import SGM_DEFAULTS, SGM_REFINE_DEFAULTS, disparity_from_volume, sgm_matcher
from stereokit.cost import census_counts, cost_volume
from stereokit.disparity import disparity_with_lr_check, winner_takes_all
from stereokit.pair import StereoPair
from stereokit.sgm import sgm, sgm_census_disparity


def _reference_matcher(pair, max_disp, min_disp=0, p2_gamma=SGM_DEFAULTS["p2_gamma"], paths=8):
    """The sgm matcher as composed from the public functions (float32 census volume)."""
    vol = cost_volume(pair.left_gray, pair.right_gray, max_disp, min_disp, cost="census",
                      census_window=SGM_DEFAULTS["census_window"])
    guide = None if p2_gamma is None else pair.left_gray
    agg = sgm(vol, SGM_DEFAULTS["P1"], SGM_DEFAULTS["P2"], paths, guide=guide,
              p2_gamma=8.0 / 255.0 if p2_gamma is None else p2_gamma)
    return disparity_from_volume(agg, min_disp, **SGM_REFINE_DEFAULTS)


def _random_pair(seed, h=37, w=53, shift=5):
    rng = np.random.default_rng(seed)
    base = rng.random((h, w + shift)).astype(np.float32)
    return StereoPair(base[:, shift:], base[:, :-shift] * 0.9 + 0.05 * rng.random((h, w)).astype(np.float32))


def _sample_small():
    skimage = pytest.importorskip("skimage")
    left, right, _ = skimage.data.stereo_motorcycle()
    return StereoPair(left[::4, ::4], right[::4, ::4])


def _same(a, b):
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_array_equal(a, b)  # NaN where the other is NaN, every other value exactly


@pytest.mark.parametrize("min_disp", [0, 3, -2])
def test_census_counts_match_the_float_volume(min_disp):
    pair = _random_pair(1)
    ref = cost_volume(pair.left_gray, pair.right_gray, 12, min_disp, cost="census", census_window=(9, 7))
    vol, hi = census_counts(pair.left_gray, pair.right_gray, 12, min_disp, census_window=(9, 7))
    assert vol.dtype == hi.dtype == np.uint8
    inf = np.isinf(ref)
    np.testing.assert_array_equal(vol == 255, inf)
    np.testing.assert_array_equal(vol[~inf], ref[~inf])
    has_inf = inf.any(axis=2)
    assert np.all(hi[~has_inf] == 255)
    expect = np.where(inf, -1, ref).max(axis=2).clip(min=0)
    np.testing.assert_array_equal(hi[has_inf], expect[has_inf])


def _disparity(agg, min_disp=0, subpixel="parabola", uniqueness=0.0, lr_threshold=1.0):
    """The composition sgm_census_disparity fuses."""
    if lr_threshold is None:
        return winner_takes_all(agg, min_disp, subpixel, uniqueness)
    return disparity_with_lr_check(agg, min_disp, subpixel, uniqueness, lr_threshold)


@pytest.mark.parametrize("guided", [False, True])
@pytest.mark.parametrize("paths", [4, 8, 16])
@pytest.mark.parametrize("wta", [dict(), dict(lr_threshold=None), dict(subpixel="equiangular", uniqueness=5.0),
                                 dict(subpixel=None, lr_threshold=0.0), dict(min_disp=3), dict(min_disp=-2)])
def test_sgm_census_disparity_equals_the_composition(guided, paths, wta):
    pair = _random_pair(2)
    min_disp = wta.pop("min_disp", 0)
    ref_vol = cost_volume(pair.left_gray, pair.right_gray, 12, min_disp, cost="census", census_window=(9, 7))
    vol, hi = census_counts(pair.left_gray, pair.right_gray, 12, min_disp, census_window=(9, 7))
    guide = pair.left_gray if guided else None
    ref = _disparity(sgm(ref_vol, 8, 120, paths, guide=guide), min_disp, **wta)
    got = sgm_census_disparity(vol, hi, 62, 8, 120, paths, guide=guide, min_disp=min_disp, **wta)
    assert np.isfinite(ref).mean() > 0.2
    assert np.isnan(ref).any() == (wta.get("lr_threshold", 1.0) is not None)  # the check's holes are compared too
    _same(got, ref)


def test_sgm_census_disparity_falls_back_for_penalties_int16_cannot_take():
    pair = _random_pair(2)
    ref_vol = cost_volume(pair.left_gray, pair.right_gray, 12, cost="census", census_window=(9, 7))
    vol, hi = census_counts(pair.left_gray, pair.right_gray, 12, census_window=(9, 7))
    for lr in (1.0, None):
        _same(sgm_census_disparity(vol, hi, 62, 8.5, 120.25, 4, lr_threshold=lr),
              _disparity(sgm(ref_vol, 8.5, 120.25, 4), lr_threshold=lr))


@pytest.mark.parametrize("seed", [3, 4])
def test_matcher_fast_path_identical_on_random_pairs(seed):
    pair = _random_pair(seed)
    _same(sgm_matcher(pair, 12), _reference_matcher(pair, 12))
    _same(sgm_matcher(pair, 12, min_disp=2, p2_gamma=None, paths=4),
          _reference_matcher(pair, 12, min_disp=2, p2_gamma=None, paths=4))


def test_matcher_fast_path_identical_on_sample():
    pair = _sample_small()
    got = sgm_matcher(pair, 16)
    _same(got, _reference_matcher(pair, 16))
    assert np.isfinite(got).mean() > 0.5


def test_sgm_census_disparity_large_p2_falls_back_instead_of_overflowing():
    # 8 paths: lim = 32767 // 4 - P2 = 30 is below the census bound 62, so the int16 sums could overflow: with
    # P1 = P2 = 8161 and costs (0, 62, 62) everywhere, L(p, d >= 1) grows by 62 per step up to 62 + P2 = 8223 and
    # a sweep's 4 directions sum to 32892 > 32767 far enough from the borders. The call must fall back to float32.
    H, W = 140, 280
    vol = np.empty((H, W, 3), np.uint8)
    vol[...] = np.array([0, 62, 62], np.uint8)
    hi = np.full((H, W), 255, np.uint8)  # no invalid cost
    ref_vol = sgm(vol.astype(np.float32), 8161, 8161, 8)
    # bottom row, x = 139: the 4 forward paths (and the leftward one) have run >= 139 steps and saturate at 8223,
    # the 3 other backward paths start there (62): the forward sweep alone sums 4 * 8223 = 32892 > 32767
    assert ref_vol[H - 1, 139, 1] == 5 * (62 + 8161) + 3 * 62
    ref = _disparity(ref_vol, lr_threshold=None)
    np.testing.assert_array_equal(ref, 0.0)  # wrapped int16 sums would make disparity 1 or 2 the cheapest
    _same(sgm_census_disparity(vol, hi, 62, 8161, 8161, 8, lr_threshold=None), ref)


def test_sgm_census_disparity_fallback_keeps_the_guide():
    pair = _random_pair(5)
    ref_vol = cost_volume(pair.left_gray, pair.right_gray, 12, cost="census", census_window=(9, 7))
    vol, hi = census_counts(pair.left_gray, pair.right_gray, 12, census_window=(9, 7))
    guided = _disparity(sgm(ref_vol, 8.5, 120.25, 4, guide=pair.left_gray))
    assert not np.array_equal(guided, _disparity(sgm(ref_vol, 8.5, 120.25, 4)))  # the guide matters here
    _same(sgm_census_disparity(vol, hi, 62, 8.5, 120.25, 4, guide=pair.left_gray), guided)


def test_sgm_census_disparity_refuses_bad_options():
    pair = _random_pair(2)
    vol, hi = census_counts(pair.left_gray, pair.right_gray, 12, census_window=(9, 7))
    for kwargs, match in [(dict(subpixel="cubic"), "subpixel"), (dict(uniqueness=100), "uniqueness"),
                          (dict(lr_threshold=float("nan")), "left-right"), (dict(P2=4.0), "P2")]:
        args = dict(P1=8, P2=120)
        args.update(kwargs)
        p1, p2 = args.pop("P1"), args.pop("P2")
        with pytest.raises(ValueError, match=match):
            sgm_census_disparity(vol, hi, 62, p1, p2, 8, **args)


def test_sgm_census_disparity_takes_uint8_counts_only():
    pair = _random_pair(2)
    vol, hi = census_counts(pair.left_gray, pair.right_gray, 12, census_window=(9, 7))
    with pytest.raises(ValueError, match="uint8"):
        sgm_census_disparity(vol.astype(np.int16), hi, 62, 8, 120)  # 255 would no longer mark out-of-image cells
    with pytest.raises(ValueError, match="below 255"):
        sgm_census_disparity(vol, hi, 300, 8, 120)
