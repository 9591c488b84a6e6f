"""Cost volumes: exact recovery on a shifted texture, agreement with brute force, invariances, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from stereokit import StereoKitError
from stereokit.cost import census_transform, cost_volume, hamming

# Numba flags the inlined pixel-cost overload when compiling (see stereokit/cost.py): a known false alarm.
pytestmark = pytest.mark.filterwarnings("ignore:variable '_pix_overload")



def shifted_pair(d: int, h: int = 32, w: int = 64, seed: int = 0, channels: int = 0):
    """Random float texture; right(x - d) = left(x) for every x, i.e. a fronto-parallel scene at disparity d."""
    rng = np.random.default_rng(seed)
    shape = (h, w + abs(d)) + ((channels,) if channels else ())
    tex = rng.random(shape).astype(np.float32)
    if d >= 0:
        return tex[:, :w], tex[:, d : d + w]
    return tex[:, -d : -d + w], tex[:, :w]


def brute_force(left, right, min_disp, num_disp, radius, cost):
    """Window cost by explicit loops over windows (replicated borders), float64."""
    h, w = left.shape
    lp = np.pad(left.astype(np.float64), radius, mode="edge")
    out = np.full((h, w, num_disp), np.inf)
    for k in range(num_disp):
        d = min_disp + k
        cols = np.clip(np.arange(-radius, w + radius) - d, 0, w - 1)
        rp = np.pad(right.astype(np.float64), ((radius, radius), (0, 0)), mode="edge")[:, cols]
        for y in range(h):
            for x in range(w):
                if not 0 <= x - d < w:
                    continue
                a = lp[y : y + 2 * radius + 1, x : x + 2 * radius + 1]
                b = rp[y : y + 2 * radius + 1, x : x + 2 * radius + 1]
                if cost == "sad":
                    out[y, x, k] = np.abs(a - b).mean()
                elif cost == "ssd":
                    out[y, x, k] = ((a - b) ** 2).mean()
                else:
                    a, b = a - a.mean(), b - b.mean()
                    out[y, x, k] = 1.0 - (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())
    return out


COSTS = [
    ("ad", {}),
    ("sd", {}),
    ("census", {}),
    ("census", {"census_window": 5}),
    ("census", {"window": 5, "census_window": (5, 5)}),
    ("sad", {"window": 5}),
    ("ssd", {"window": 7}),
    ("ncc", {"window": 5}),
]


@pytest.mark.parametrize("d,min_disp", [(5, 0), (-3, -6), (9, 4)])
@pytest.mark.parametrize("cost,kw", COSTS)
def test_exact_integer_disparity_every_cost(cost, kw, d, min_disp):
    left, right = shifted_pair(d)
    vol = cost_volume(left, right, 12, min_disp, cost=cost, **kw)
    assert vol.dtype == np.float32 and vol.shape == (32, 64, 12)
    margin = 4  # away from the borders, where windows are clamped
    lo, hi = max(d, 0) + margin, 64 + min(d, 0) - margin
    inner = vol[:, lo:hi]
    # the true disparity is always a minimiser ...
    assert np.array_equal(inner[:, :, d - min_disp], inner.min(axis=2))
    # ... and the unique one, except for census ties (a local intensity minimum has an all-zero code in both views)
    wta = min_disp + np.argmin(inner, axis=2)
    assert (wta == d).mean() >= (0.97 if cost == "census" else 1.0)


@pytest.mark.parametrize("min_disp", [-4, 0, 3])
def test_out_of_image_matches_are_inf(min_disp):
    left, right = shifted_pair(2)
    vol = cost_volume(left, right, 10, min_disp, cost="sad", window=3)
    x = np.arange(64)[:, None]
    k = np.arange(10)[None, :]
    outside = (x - (min_disp + k) < 0) | (x - (min_disp + k) >= 64)
    assert np.array_equal(np.isinf(vol), np.broadcast_to(outside, vol.shape))
    assert np.all(np.isfinite(vol[:, ~outside]))


@pytest.mark.parametrize("cost", ["sad", "ssd", "ncc"])
@pytest.mark.parametrize("min_disp", [0, -3])
def test_window_costs_match_brute_force(cost, min_disp):
    rng = np.random.default_rng(1)
    left = rng.random((12, 20)).astype(np.float32)
    right = rng.random((12, 20)).astype(np.float32)
    vol = cost_volume(left, right, 6, min_disp, cost=cost, window=5)
    ref = brute_force(left, right, min_disp, 6, 2, cost)
    assert np.array_equal(np.isinf(vol), np.isinf(ref))
    fin = np.isfinite(ref)
    np.testing.assert_allclose(vol[fin], ref[fin], atol=2e-6)


def test_pixel_costs_are_plain_differences_and_colour_is_channel_mean():
    left, right = shifted_pair(3, channels=3)
    ad = cost_volume(left, right, 8, cost="ad")
    sd = cost_volume(left, right, 8, cost="sd")
    k = 6  # disparity 6: left x against right x - 6
    np.testing.assert_allclose(ad[:, 6:, k], np.abs(left[:, 6:] - right[:, :-6]).mean(axis=2), atol=1e-6)
    np.testing.assert_allclose(sd[:, 6:, k], ((left[:, 6:] - right[:, :-6]) ** 2).mean(axis=2), atol=1e-6)


def test_ncc_invariant_to_gain_and_bias():
    left, right = shifted_pair(4)
    base = cost_volume(left, right, 10, cost="ncc", window=7)
    changed = cost_volume(left, 0.6 * right + 0.3, 10, cost="ncc", window=7)  # gain and bias, inside [0, 1]
    fin = np.isfinite(base)
    np.testing.assert_allclose(changed[fin], base[fin], atol=1e-4)
    assert np.array_equal(np.isinf(changed), ~fin)
    assert base[fin].min() >= -1e-5 and base[fin].max() <= 2 + 1e-5


def test_ncc_textureless_window_costs_one():
    flat = np.full((16, 24), 0.5, np.float32)
    vol = cost_volume(flat, flat, 4, cost="ncc", window=3)
    assert np.all(vol[:, 4:] == 1.0)


def test_census_invariant_to_monotonic_intensity_change():
    left, right = shifted_pair(4)
    base = cost_volume(left, right, 10, cost="census")
    warped = cost_volume(np.sqrt(left) * 0.5 + 0.1, right**3 * 0.9, 10, cost="census")
    assert np.array_equal(base, warped)
    u8 = (left * 200).astype(np.uint8)
    lut = np.arange(256, dtype=np.uint16) * 200 + 7  # strictly increasing, uint16 output
    assert np.array_equal(census_transform(u8), census_transform(lut[u8]))


def test_census_transform_bits():
    img = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], np.float32)
    c = census_transform(img, 3)
    assert c.dtype == np.uint64
    # centre 5: neighbours in row order 1 2 3 4 | 6 7 8 9 -> darker ones set, first neighbour in the top bit
    assert int(c[1, 1]) == 0b11110000
    # corner (0, 0), value 1, borders replicated: nothing darker
    assert int(c[0, 0]) == 0
    big = census_transform(np.random.default_rng(0).random((10, 12)), (9, 7))
    assert int(big.max()) < 2**62


def test_hamming():
    a = np.array([[0b1011, 0]], np.uint64)
    b = np.array([[0b0001, np.uint64(2**64 - 1)]], np.uint64)
    assert hamming(a, b).tolist() == [[2, 64]]


def test_bad_input():
    left, right = shifted_pair(2)
    with pytest.raises(StereoKitError, match="wider than the image"):
        cost_volume(left, right, 64)
    with pytest.raises(StereoKitError, match="differ in size"):
        cost_volume(left, right[:, :-1], 8)
    bad = left.copy()
    bad[3, 3] = np.nan
    with pytest.raises(StereoKitError, match="NaN"):
        cost_volume(bad, right, 8)
    with pytest.raises(StereoKitError, match="unknown cost"):
        cost_volume(left, right, 8, cost="zncc")
    with pytest.raises(StereoKitError, match="neighbours"):
        census_transform(left, (11, 7))
    with pytest.raises(StereoKitError, match="odd"):
        cost_volume(left, right, 8, cost="sad", window=4)


@pytest.mark.parametrize("window", ["3_3", " 9", "+9", "9x", "x9", "9x7x5", (3.5, 3), (True, 3), (3, 3, 3), None,
                                    3.5, "nine"])
def test_malformed_windows_are_refused_not_truncated(window):
    # int("3_3") is 33, int(" 9") 9 and int(3.5) 3: each would silently pick a window nobody asked for
    with pytest.raises(StereoKitError, match="census window must be an odd integer, a \\(width, height\\) pair"):
        census_transform(np.zeros((9, 11), np.float32), window)


def test_whole_float_windows_and_window_strings_are_accepted():
    img = np.random.default_rng(0).random((9, 11)).astype(np.float32)
    ref = census_transform(img, (5, 3))
    for form in ((5.0, 3.0), "5x3", "5X3", np.array([5, 3])):
        np.testing.assert_array_equal(census_transform(img, form), ref)


def test_a_window_reaching_beyond_the_image_is_refused():
    from stereokit.blockmatch import block_match

    left, right = shifted_pair(2)  # 32 rows x 64 columns
    h, w = left.shape[:2]
    # a radius up to the image's size is fine (the replicated border is weighed in); one beyond it adds nothing new
    assert cost_volume(left, right, 8, cost="sad", window=2 * h + 1).shape == (h, w, 8)
    for big in (2 * h + 3, 10**12 + 1):
        for cost in ("sad", "ncc", "census"):
            with pytest.raises(StereoKitError, match=f"window {big}x{big} has a radius beyond the {w}x{h} image"):
                cost_volume(left, right, 8, cost=cost, window=big)
        with pytest.raises(StereoKitError, match="has a radius beyond"):
            block_match((left * 255).astype(np.uint8), (right * 255).astype(np.uint8), 8, window=big)


def test_census_window_forms():
    img = np.random.default_rng(0).random((9, 11)).astype(np.float32)
    assert np.array_equal(census_transform(img, "9x7"), census_transform(img, (9, 7)))
    assert np.array_equal(census_transform(img, "5"), census_transform(img, 5))
    assert int(census_transform(img, (3, 1)).max()) < 4  # 3 wide, 1 high: 2 bits
    with pytest.raises(StereoKitError):
        census_transform(img, "9by7")


def test_windowed_costs_do_not_depend_on_the_thread_count():
    import numba

    rng = np.random.default_rng(5)
    left = rng.random((200, 80), dtype=np.float32)
    right = np.roll(left, -3, axis=1)
    top = numba.config.NUMBA_NUM_THREADS
    try:
        numba.set_num_threads(1)
        one = cost_volume(left, right, 16, cost="ncc", window=7)
        numba.set_num_threads(top)
        many = cost_volume(left, right, 16, cost="ncc", window=7)
    finally:
        numba.set_num_threads(top)
    assert np.array_equal(one, many)  # bit for bit: the bands follow the height, not the threads


def test_unsupported_image_types_and_options_are_refused():
    a = np.array([[10, 20, 30, 40]], np.uint8)
    b = a + 10
    for dtype in (np.int32, np.int16, np.bool_, np.complex64):
        with pytest.raises(StereoKitError, match="dtype"):
            cost_volume(a.astype(dtype), b.astype(dtype), 1, cost="ad")
    with pytest.raises(StereoKitError, match="window"):
        cost_volume(a, b, 1, cost="sad", window=True)
    with pytest.raises(StereoKitError, match="unknown cost"):
        cost_volume(a, b, 1, cost=["ad"])
    with pytest.raises(StereoKitError, match="unsigned"):
        hamming(np.array([[1.9, np.nan]]), np.zeros((1, 2), np.uint64))


def test_census_window_is_width_by_height():
    # centre 4: left neighbour 9 (brighter), right 0 (darker); up 0 (darker), down 9 (brighter)
    img = np.array([[0, 0, 0], [9, 4, 0], [9, 9, 9]], np.float32)
    # 3 wide x 1 high: neighbours left, right in raster order, first in the top bit -> 0b01
    assert int(census_transform(img, (3, 1))[1, 1]) == 0b01
    # 1 wide x 3 high: neighbours up, down -> 0b10
    assert int(census_transform(img, (1, 3))[1, 1]) == 0b10
    # the string form "WxH" likewise
    assert int(census_transform(img, "3x1")[1, 1]) == 0b01


@pytest.mark.parametrize("seed", [0, 1, 3])
@pytest.mark.parametrize("window", [3, 7])
def test_ncc_flat_window_beside_texture_costs_one(seed, window):
    # a window with no texture in one image costs 1 whatever the other window holds, even inside a textured image
    # (its variance is then float rounding noise, ~1e-17, not an exact 0); every cost stays in [0, 2]
    rng = np.random.default_rng(seed)
    left = rng.random((24, 48)).astype(np.float32)
    right = rng.random((24, 48)).astype(np.float32)
    left[:, 24:] = np.float32(rng.random())  # flat right half in the left image
    right[:, :20] = np.float32(rng.random())  # flat left part in the right image
    vol = cost_volume(left, right, 8, cost="ncc", window=window)
    r = window // 2
    fin = np.isfinite(vol)
    assert vol[fin].min() >= 0.0 and vol[fin].max() <= 2.0
    flat_left = vol[:, 24 + r :]
    np.testing.assert_allclose(flat_left[np.isfinite(flat_left)], 1.0, atol=1e-6)
    x = np.arange(48)[:, None] - np.arange(8)[None, :]  # the match x - d
    flat_right = (x >= 0) & (x < 20 - r)
    np.testing.assert_allclose(vol[:, flat_right], 1.0, atol=1e-6)


def test_ncc_of_a_low_contrast_texture_equals_brute_force():
    # ZNCC is invariant to gain: a texture of amplitude 1e-4 (a dim 16-bit or float image) is correlated as usual,
    # not treated as textureless
    rng = np.random.default_rng(4)
    base = rng.random((12, 24)).astype(np.float32)
    left = (np.float32(0.5) + np.float32(1e-4) * base).astype(np.float32)
    right = np.roll(left, -2, axis=1)
    vol = cost_volume(left, right, 5, cost="ncc", window=5)
    ref = brute_force(left, right, 0, 5, 2, "ncc")
    fin = np.isfinite(ref)
    np.testing.assert_array_equal(np.isfinite(vol), fin)
    np.testing.assert_allclose(vol[fin], ref[fin], atol=1e-4)
    assert np.all(np.argmin(vol[:, 6:-4], axis=2) == 2)


def test_ncc_refuses_a_window_of_one():
    # a 1x1 window has no variance: every cost would be 1 (no information), so the call is refused
    left, right = shifted_pair(2)
    for window in (1, "1", (1, 1)):
        with pytest.raises(StereoKitError, match="ncc needs a window of at least 3"):
            cost_volume(left, right, 8, cost="ncc", window=window)


def test_documented_defaults_windows():
    # sad / ssd / ncc average over 9x9 by default, ad / sd / census are pixel-wise, and the census transform is 9x7
    # (width x height, 62 bits)
    left, right = shifted_pair(3, h=20, w=30)
    for cost, window in (("sad", 9), ("ssd", 9), ("ncc", 9), ("ad", 1), ("sd", 1), ("census", 1)):
        np.testing.assert_array_equal(cost_volume(left, right, 6, cost=cost),
                                      cost_volume(left, right, 6, cost=cost, window=window, census_window=(9, 7)))
    assert not np.array_equal(cost_volume(left, right, 6, cost="sad"), cost_volume(left, right, 6, cost="sad",
                                                                                    window=7))
    codes = census_transform(left)
    np.testing.assert_array_equal(codes, census_transform(left, (9, 7)))
    assert not np.array_equal(codes, census_transform(left, (7, 9)))
    # a pixel brighter than all its 62 neighbours (every neighbour darker) has all 62 bits set
    peak = np.zeros((7, 9), np.float32)
    peak[3, 4] = 1.0
    assert int(census_transform(peak)[3, 4]) == 2**62 - 1


def test_census_window_with_exactly_64_neighbours_uses_every_bit():
    # 13x5 = 65 pixels: 64 neighbours fill the uint64 exactly
    peak = np.zeros((5, 13), np.float32)
    peak[2, 6] = 1.0
    codes = census_transform(peak, (13, 5))
    assert int(codes[2, 6]) == 2**64 - 1
    # the Hamming cost of that pixel against a flat right image is all 64 bits
    vol = cost_volume(peak, np.zeros_like(peak), 2, cost="census", census_window=(13, 5))
    assert vol[2, 6, 0] == 64.0
    # the next odd window, 15x5, has 74 neighbours: refused
    with pytest.raises(StereoKitError, match="74 neighbours; at most 64 fit"):
        census_transform(peak, (15, 5))


@pytest.mark.parametrize("window", [(3, 4), (4, 3), "3x4", (5, 2)])
def test_census_window_sides_must_both_be_odd(window):
    # an even height would be silently widened to the next odd one (2 * (h // 2) + 1 rows)
    with pytest.raises(StereoKitError, match="sides must be odd"):
        census_transform(np.zeros((9, 11), np.float32), window)


def test_colour_against_gray_compares_luma():
    # a colour left image and a gray right one: both are compared as BT.601 luma (not the channel mean)
    rng = np.random.default_rng(2)
    left = rng.random((6, 10, 3)).astype(np.float32)
    right = rng.random((6, 10)).astype(np.float32)
    luma = left[..., 0] * 0.299 + left[..., 1] * 0.587 + left[..., 2] * 0.114
    for cost, f in (("ad", np.abs), ("sd", np.square)):
        vol = cost_volume(left, right, 3, cost=cost)
        for d in range(3):
            np.testing.assert_allclose(vol[:, d:, d], f(luma[:, d:] - right[:, : 10 - d]), atol=1e-6)


@pytest.mark.parametrize("cost", ["sad", "ncc"])
def test_window_costs_match_brute_force_across_row_bands(cost):
    # images taller than cost.ROWS_PER_BAND (64) are cut into bands that each restart their running column sums
    from stereokit.cost import ROWS_PER_BAND

    rng = np.random.default_rng(6)
    h = 2 * ROWS_PER_BAND + 3
    left = rng.random((h, 9)).astype(np.float32)
    right = rng.random((h, 9)).astype(np.float32)
    vol = cost_volume(left, right, 3, -1, cost=cost, window=5)
    ref = brute_force(left, right, -1, 3, 2, cost)
    assert np.array_equal(np.isinf(vol), np.isinf(ref))
    fin = np.isfinite(ref)
    np.testing.assert_allclose(vol[fin], ref[fin], atol=2e-6)


def test_hamming_refuses_signed_codes():
    # -1 cast to uint64 would become 64 set bits
    with pytest.raises(StereoKitError, match="unsigned"):
        hamming(np.array([[-1]], np.int64), np.zeros((1, 1), np.uint64))
    with pytest.raises(StereoKitError, match="unsigned"):
        hamming(np.zeros((1, 1), np.uint64), np.array([[3]], np.int32))
    assert hamming(np.array([[7]], np.uint8), np.array([[1]], np.uint16)).tolist() == [[2]]


def test_disparity_range_limits_are_exact():
    # every disparity d searched must satisfy |d| < width: [-(w-1), ...) and [..., w-1] are the widest ends
    left, right = shifted_pair(0, h=4, w=16)
    vol = cost_volume(left, right, 4, -15, cost="ad")  # [-15, -11): column 0 matches x + 15 = 15
    assert np.isfinite(vol[:, 0, 0]).all() and np.isinf(vol[:, 1:, 0]).all()
    vol = cost_volume(left, right, 4, 12, cost="ad")  # [12, 16): column 15 matches x - 15 = 0
    assert np.isfinite(vol[:, 15, 3]).all() and np.isinf(vol[:, :15, 3]).all()
    for max_disp, min_disp in ((4, -16), (4, 13), (16, 0), (15, 2)):
        with pytest.raises(StereoKitError, match="wider than the image|reaches beyond the image"):
            cost_volume(left, right, max_disp, min_disp, cost="ad")
    assert cost_volume(left, right, 15, 0, cost="ad").shape == (4, 16, 15)


def test_max_disp_from_gt_searches_the_largest_disparity():
    from stereokit.validation import max_disp_from_gt

    # the next multiple of 16 strictly above the largest GT (a disparity of exactly 32 needs [0, 48)) ...
    assert [max_disp_from_gt(g, 1000) for g in (0.0, 15.9, 16.0, 31.5, 32.0, 47.99)] == [16, 16, 32, 32, 48, 48]
    assert max_disp_from_gt(float("nan"), 1000) == 64 and max_disp_from_gt(float("inf"), 1000) == 64
    # ... kept below the width (max_disp must be smaller than the image): a multiple of 16 when one fits
    assert max_disp_from_gt(100.0, 64) == 48 and max_disp_from_gt(100.0, 65) == 64 and max_disp_from_gt(5.0, 33) == 16
    assert max_disp_from_gt(100.0, 12) == 11


def test_check_number_bounds():
    from stereokit.validation import check_number

    assert check_number("x", 0) == 0.0
    assert check_number("x", 5, maximum=5) == 5.0 and check_number("x", 3.0, integer=True) == 3
    with pytest.raises(StereoKitError, match="x must be a positive number, got 0"):
        check_number("x", 0, positive=True)
    with pytest.raises(StereoKitError, match="x must be at most 5, got 5.5"):
        check_number("x", 5.5, maximum=5)
    for bad in (-1, float("nan"), float("inf"), True, "1", 2.5):
        with pytest.raises(StereoKitError, match="x must be a non-negative integer"):
            check_number("x", bad, integer=True)


def test_check_disparity_turns_every_infinity_into_nan():
    from stereokit.validation import check_disparity

    out = check_disparity(np.array([[1.5, np.inf, -np.inf]], np.float64), (1, 3))
    assert out.dtype == np.float32 and out[0, 0] == 1.5 and np.isnan(out[0, 1:]).all()
    with pytest.raises(StereoKitError, match="shape"):
        check_disparity(np.zeros((2, 3)), (3, 2))


def test_ncc_of_exact_and_inverted_matches_stays_within_0_and_2():
    # 1 - ZNCC of a perfect match is 0 and of an inverted one 2; rounding must not push them outside [0, 2]
    left, right = shifted_pair(5, seed=2)
    vol = cost_volume(left, right, 8, cost="ncc", window=5)
    inv = cost_volume(left, 1 - right, 8, cost="ncc", window=5)
    for v in (vol, inv):
        fin = np.isfinite(v)
        assert v[fin].min() >= 0.0 and v[fin].max() <= 2.0
    inner = slice(5 + 2, 64 - 2)  # windows clamped at the borders differ
    np.testing.assert_allclose(vol[:, inner, 5], 0.0, atol=1e-6)
    np.testing.assert_allclose(inv[:, inner, 5], 2.0, atol=1e-6)
