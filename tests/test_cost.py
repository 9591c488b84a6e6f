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
