"""The evaluator against hand-computed references on small arrays (every expected number is written by hand)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from eval import (
    METRIC_KEYS,
    DatasetResult,
    Metrics,
    PairResult,
    evaluate_dataset,
    evaluate_pair,
    format_table,
    save_json,
)
from eval.metrics import Tally, error_histogram
from stereokit.errors import StereoKitError

nan = np.nan

# --- scene A: every estimate valid, every GT valid (3 x 4) -----------------------------------------------------
GT_A = np.array(
    [
        [10, 20, 30, 100],
        [10, 20, 30, 40],
        [5, 5, 5, 5],
    ],
    dtype=np.float32,
)
ERR_A = np.array(
    [
        [0, 0.5, -1, 4],  # 4 px off gt 100: within 5 % of gt -> NOT a D1 outlier
        [3.5, 0, 2, -0.25],  # 3.5 px off gt 10 -> outlier
        [1, -4, 0.75, 0],  # 4 px off gt 5 -> outlier
    ],
    dtype=np.float32,
)
PRED_A = GT_A + ERR_A
# |e| sorted: 0 0 0 0.25 0.5 0.75 1 1 2 3.5 4 4 ; sum 17 ; sum of squares 51.125
EXPECTED_A = {
    "D1-all": 100 * 2 / 12,
    "D1-bg": 100 * 2 / 12,  # no fg mask: every pixel is background
    "D1-fg": None,
    "EPE": 17 / 12,
    "bad-0.5": 100 * 7 / 12,  # 0.5 itself is not > 0.5
    "bad-1.0": 100 * 4 / 12,
    "bad-2.0": 100 * 3 / 12,
    "bad-4.0": 0.0,  # 4 itself is not > 4
    "RMS": math.sqrt(51.125 / 12),
    "A50": 0.875,  # rank 5.5 of 0..11: (0.75 + 1) / 2
    "A90": 3.95,  # rank 9.9: 3.5 + 0.9 * (4 - 3.5)
    "A95": 4.0,
    "A99": 4.0,
    "density": 100.0,
}


def assert_metrics(actual: dict, expected: dict) -> None:
    assert list(actual) == list(METRIC_KEYS)
    for key in METRIC_KEYS:
        exp, got = expected[key], actual[key]
        if exp is None:
            assert got is None, f"{key}: expected None, got {got}"
        else:
            assert got == pytest.approx(exp, rel=1e-9, abs=1e-9), f"{key}: expected {exp}, got {got}"


def test_scene_a_every_metric():
    r = evaluate_pair(PRED_A, GT_A)
    assert_metrics(r.all.to_dict(), EXPECTED_A)
    assert r.noc is None
    assert r.to_dict().keys() == {"all"}


def test_d1_relative_clause():
    gt = np.array([[100.0, 100.0, 10.0, 0.0]], dtype=np.float32)
    pred = np.array([[104.0, 106.0, 13.5, 4.0]], dtype=np.float32)
    # 4 off 100: > 3 px but only 4 % -> no; 6 off 100: 6 % -> yes; 3.5 off 10 -> yes; 4 off 0 -> yes
    r = evaluate_pair(pred, gt)
    assert r.all["D1-all"] == pytest.approx(75.0)
    # exactly 3 px is not an outlier (strict >)
    r = evaluate_pair(np.array([[13.0]], np.float32), np.array([[10.0]], np.float32))
    assert r.all["D1-all"] == 0.0


def test_fg_bg_split():
    fg = np.array(
        [
            [0, 0, 0, 0],
            [1, 1, 0, 0],
            [1, 1, 0, 0],
        ],
        dtype=bool,
    )
    # fg pixels' errors: 3.5 (outlier), 0, 1, 4 (outlier) -> 2 / 4; bg: 8 pixels, 0 outliers
    r = evaluate_pair(PRED_A, GT_A, fg=fg)
    assert r.all["D1-fg"] == pytest.approx(50.0)
    assert r.all["D1-bg"] == pytest.approx(0.0)
    assert r.all["D1-all"] == pytest.approx(100 * 2 / 12)
    # the mask may be an obj_map-like integer array: non-zero = foreground
    r2 = evaluate_pair(PRED_A, GT_A, fg=fg.astype(np.uint8) * 7)
    assert r2.all.to_dict() == r.all.to_dict()


def test_empty_fg_mask_gives_nan_not_none():
    r = evaluate_pair(PRED_A, GT_A, fg=np.zeros(GT_A.shape, bool))
    assert math.isnan(r.all.d1_fg)
    assert r.all.to_dict()["D1-fg"] is None
    assert r.all["D1-bg"] == pytest.approx(100 * 2 / 12)


# --- scene B: NaN ground truth, invalid estimates, fill and noc (2 x 5) ----------------------------------------
GT_B = np.array(
    [
        [nan, 10, 10, 10, 10],
        [8, 8, 8, 8, nan],
    ],
    dtype=np.float32,
)
PRED_B = np.array(
    [
        [12, nan, nan, 3, 11],
        [nan, 9, nan, 7, 8],
    ],
    dtype=np.float32,
)
# Filled by background interpolation:
#   row 0: the gap (cols 1-2) between 12 and 3 takes the smaller, 3 -> [12, 3, 3, 3, 11]
#   row 1: col 0 extrapolated from 9, the gap at col 2 between 9 and 7 takes 7 -> [9, 9, 7, 7, 8]
# |e| on valid GT: row 0 cols 1-4: 7 7 7 1 ; row 1 cols 0-3: 1 1 1 1
# valid estimates among the 8 valid-GT pixels (before filling): (0,3) (0,4) (1,1) (1,3) -> density 50 %
NONOCC_B = np.array(
    [
        [1, 1, 0, 1, 1],
        [0, 1, 1, 1, 1],
    ],
    dtype=bool,
)


def test_nan_gt_and_fill():
    r = evaluate_pair(PRED_B, GT_B)
    # sorted |e|: 1 1 1 1 1 7 7 7
    expected = {
        "D1-all": 37.5,
        "D1-bg": 37.5,
        "D1-fg": None,
        "EPE": 26 / 8,
        "bad-0.5": 100.0,
        "bad-1.0": 37.5,
        "bad-2.0": 37.5,
        "bad-4.0": 37.5,
        "RMS": math.sqrt((3 * 49 + 5) / 8),
        "A50": 1.0,  # rank 3.5
        "A90": 7.0,  # rank 6.3
        "A95": 7.0,
        "A99": 7.0,
        "density": 50.0,
    }
    assert_metrics(r.all.to_dict(), expected)
    assert r.filled


def test_no_fill_scores_only_valid_estimates():
    r = evaluate_pair(PRED_B, GT_B, fill=False)
    # scored: (0,3) 7, (0,4) 1, (1,1) 1, (1,3) 1 ; sorted 1 1 1 7
    expected = {
        "D1-all": 25.0,
        "D1-bg": 25.0,
        "D1-fg": None,
        "EPE": 2.5,
        "bad-0.5": 100.0,
        "bad-1.0": 25.0,
        "bad-2.0": 25.0,
        "bad-4.0": 25.0,
        "RMS": math.sqrt(13.0),  # (49 + 3) / 4
        "A50": 1.0,  # rank 1.5
        "A90": 1 + 0.7 * 6,  # rank 2.7
        "A95": 1 + 0.85 * 6,
        "A99": 1 + 0.97 * 6,
        "density": 50.0,
    }
    assert_metrics(r.all.to_dict(), expected)
    assert not r.filled


def test_noc_region():
    r = evaluate_pair(PRED_B, GT_B, nonocc=NONOCC_B)
    # noc = valid GT & nonocc: (0,1) 7, (0,3) 7, (0,4) 1, (1,1) 1, (1,2) 1, (1,3) 1 ; valid estimates (0,3) (0,4) (1,1) (1,3)
    noc = r.to_dict()["noc"]
    assert noc["D1-all"] == pytest.approx(100 * 2 / 6)
    assert noc["EPE"] == pytest.approx(18 / 6)
    assert noc["bad-1.0"] == pytest.approx(100 * 2 / 6)
    assert noc["RMS"] == pytest.approx(math.sqrt((2 * 49 + 4) / 6))
    assert noc["A50"] == pytest.approx(1.0)
    assert noc["A90"] == pytest.approx(7.0)  # rank 4.5 of 1 1 1 1 7 7
    assert noc["density"] == pytest.approx(100 * 4 / 6)
    assert r.to_dict()["all"]["D1-all"] == pytest.approx(37.5)  # the all region is unchanged by the mask


def test_empty_noc_mask_gives_null_metrics():
    r = evaluate_pair(PRED_B, GT_B, nonocc=np.zeros(GT_B.shape, bool))
    noc = r.to_dict()["noc"]
    assert list(noc) == list(METRIC_KEYS)
    assert all(v is None for v in noc.values())
    assert all(math.isnan(getattr(r.noc, f)) for f in ("d1_all", "epe", "a50", "density"))


def test_no_valid_gt_gives_nan_not_crash():
    gt = np.full((3, 4), nan, np.float32)
    for fill in (True, False):
        r = evaluate_pair(PRED_A, gt, nonocc=np.ones((3, 4), bool), fill=fill)
        for region in ("all", "noc"):
            assert all(v is None for v in r.to_dict()[region].values())


def test_all_invalid_estimate_counts_against_the_matcher():
    pred = np.full(GT_A.shape, nan, np.float32)
    r = evaluate_pair(pred, GT_A)
    # nothing to interpolate from: every estimate keeps the devkit's -1, so |e| = gt + 1:
    # 11 21 31 101 11 21 31 41 6 6 6 6
    expected = {
        "D1-all": 100.0,
        "D1-bg": 100.0,
        "D1-fg": None,
        "EPE": 292 / 12,
        "bad-0.5": 100.0,
        "bad-1.0": 100.0,
        "bad-2.0": 100.0,
        "bad-4.0": 100.0,
        "RMS": math.sqrt((2 * 121 + 2 * 441 + 2 * 961 + 10201 + 1681 + 4 * 36) / 12),
        "A50": 16.0,  # sorted 6 6 6 6 11 11 21 21 31 31 41 101, rank 5.5
        "A90": 31.0 + 0.9 * 10.0,  # rank 9.9
        "A95": 41.0 + 0.45 * 60.0,  # rank 10.45
        "A99": 41.0 + 0.89 * 60.0,  # rank 10.89
        "density": 0.0,
    }
    assert_metrics(r.all.to_dict(), expected)
    # unfilled: nothing is scored, only the density says so
    r = evaluate_pair(pred, GT_A, fill=False)
    d = r.all.to_dict()
    assert d["density"] == 0.0
    assert all(d[k] is None for k in METRIC_KEYS if k != "density")


def test_interior_row_the_fill_cannot_reach_scores_as_the_devkits_minus_one():
    gt = np.full((3, 3), 2.5, np.float32)
    pred = np.array([[2.5, 2.5, 2.5], [nan, nan, nan], [2.5, 2.5, 2.5]], np.float32)
    r = evaluate_pair(pred, gt)
    # the devkit's fill leaves an interior all-invalid row at its invalid value -1 and scores it so:
    # |e| = 3.5 > 3 px and > 5 % of 2.5 (with 0 instead, |e| = 2.5 would not be a D1 outlier)
    assert r.all["D1-all"] == pytest.approx(100 * 3 / 9)
    assert r.all["EPE"] == pytest.approx(3 * 3.5 / 9)
    assert r.all["density"] == pytest.approx(100 * 6 / 9)


def test_negative_estimates_are_invalid_as_in_the_devkit():
    gt = np.full((2, 5), 10.0, np.float32)
    pred = np.where(np.arange(10).reshape(2, 5) % 2, 10.0, -1.0).astype(np.float32)
    r = evaluate_pair(pred, gt)
    # -1 is invalid (devkit isValid: d >= 0): filled from the valid 10s, so nothing is wrong
    assert r.all["density"] == pytest.approx(50.0)
    assert r.all["D1-all"] == 0.0 and r.all["EPE"] == 0.0
    unfilled = evaluate_pair(pred, gt, fill=False)
    assert unfilled.all["EPE"] == 0.0 and unfilled.all["density"] == pytest.approx(50.0)


def test_float64_prediction_is_scored_as_float32_whatever_else_is_invalid():
    gt = np.array([[10.0, 10.0, 10.0]])
    near = 13.0000001  # rounds to exactly 13 in float32: 3 px off is not a D1 outlier
    dense = evaluate_pair(np.array([[near, 10.0, 10.0]]), gt)
    holey = evaluate_pair(np.array([[near, 10.0, nan]]), gt)
    assert dense.all["D1-all"] == holey.all["D1-all"] == 0.0
    assert dense.all["bad-2.0"] == holey.all["bad-2.0"] == pytest.approx(100 / 3)


@pytest.mark.parametrize(
    "gt, words",
    [
        (np.full((2, 3), 2560, np.uint16), ["uint16", "read_disparity"]),
        (np.array([[5.0, -1.0, 5.0]], np.float32), ["1 negative", "-1", "NaN"]),
    ],
)
def test_ground_truth_in_a_raw_encoding_is_refused(gt, words):
    with pytest.raises(StereoKitError) as exc:
        evaluate_pair(np.zeros(gt.shape, np.float32), gt)
    for w in words:
        assert w in str(exc.value)


def test_middlebury_mask_encoding_counts_only_255_as_nonoccluded():
    gt = np.full((2, 5), 10.0, np.float32)
    mask = np.where(np.arange(10).reshape(2, 5) % 2, 255, 128).astype(np.uint8)
    pred = gt + 5 * (mask == 128)  # wrong only where occluded
    assert evaluate_pair(pred, gt, nonocc=mask).noc["D1-all"] == 0.0
    assert evaluate_pair(pred, gt, nonocc=mask == 255).noc["D1-all"] == 0.0
    assert evaluate_pair(pred, gt, nonocc=(mask == 255).astype(np.uint8)).noc["D1-all"] == 0.0
    with pytest.raises(StereoKitError, match="0/128/255"):
        evaluate_pair(pred, gt, nonocc=mask // 2 + 3)
    with pytest.raises(StereoKitError, match="NaN"):
        evaluate_pair(pred, gt, nonocc=np.full(gt.shape, nan))
    # fg is KITTI's obj_map: any non-zero id is foreground
    obj_map = np.array([[0, 1, 2, 0, 3], [0, 0, 0, 0, 0]], np.uint8)
    r = evaluate_pair(gt + 5 * (obj_map > 0), gt, fg=obj_map)
    assert r.all["D1-fg"] == 100.0 and r.all["D1-bg"] == 0.0


def test_infinite_estimates_are_invalid():
    gt = np.array([[5.0, 5.0, 5.0]], np.float32)
    pred = np.array([[5.0, np.inf, 6.0]], np.float32)
    r = evaluate_pair(pred, gt)
    # inf is invalid: filled with min(5, 6) = 5
    assert r.all["density"] == pytest.approx(100 * 2 / 3)
    assert r.all["EPE"] == pytest.approx(1 / 3)


def test_inputs_are_not_modified():
    pred, gt = PRED_B.copy(), GT_B.copy()
    evaluate_pair(pred, gt, nonocc=NONOCC_B)
    np.testing.assert_array_equal(pred, PRED_B)
    np.testing.assert_array_equal(gt, GT_B)


@pytest.mark.parametrize(
    "pred, gt, kwargs, words",
    [
        (np.zeros((3, 4)), np.zeros((3, 5)), {}, ["(3, 4)", "(3, 5)"]),
        (np.zeros((4, 3)), np.zeros((3, 4)), {}, ["(4, 3)", "(3, 4)"]),
        (np.zeros((3, 4, 3)), np.zeros((3, 4)), {}, ["2-D", "(3, 4, 3)"]),
        (np.zeros((3, 4)), np.zeros((3, 4)), {"nonocc": np.ones((4, 3), bool)}, ["nonocc", "(4, 3)"]),
        (np.zeros((3, 4)), np.zeros((3, 4)), {"fg": np.ones((2, 2), bool)}, ["fg", "(2, 2)"]),
    ],
)
def test_shape_errors(pred, gt, kwargs, words):
    with pytest.raises(StereoKitError) as info:
        evaluate_pair(pred, gt, **kwargs)
    for word in words:
        assert word in str(info.value)


def test_to_dict_keys_and_values():
    assert METRIC_KEYS == (
        "D1-all", "D1-bg", "D1-fg", "EPE", "bad-0.5", "bad-1.0", "bad-2.0", "bad-4.0",
        "RMS", "A50", "A90", "A95", "A99", "density",
    )  # fmt: skip
    m = Metrics()
    assert list(m.to_dict()) == list(METRIC_KEYS)
    assert all(v is None for v in m.to_dict().values())
    r = evaluate_pair(PRED_A, GT_A, nonocc=np.ones(GT_A.shape, bool), fg=np.zeros(GT_A.shape, bool))
    d = r.to_dict()
    assert list(d) == ["all", "noc"]
    for region in d.values():
        assert list(region) == list(METRIC_KEYS)
        assert all(v is None or type(v) is float for v in region.values())
    assert r.all["EPE"] == r.all.epe
    with pytest.raises(KeyError):
        r.all["D1"]


# --- dataset aggregation ---------------------------------------------------------------------------------------


def _two_images() -> dict[str, PairResult]:
    # image 1 (1 x 4): gt 10, errors 5 0 0 0 ; fg = first pixel ; nonocc = first three
    gt1 = np.full((1, 4), 10.0, np.float32)
    pred1 = np.array([[15, 10, 10, 10]], np.float32)
    r1 = evaluate_pair(pred1, gt1, nonocc=np.array([[1, 1, 1, 0]], bool), fg=np.array([[1, 0, 0, 0]], bool))
    # image 2 (2 x 6): gt 10, exact, but two estimates missing (filled from their exact neighbours)
    gt2 = np.full((2, 6), 10.0, np.float32)
    pred2 = gt2.copy()
    pred2[0, 2:4] = nan
    r2 = evaluate_pair(pred2, gt2)
    return {"one": r1, "two": r2}


def test_aggregations_differ_kitti_pooled_vs_middlebury_mean():
    res = evaluate_dataset("crafted", _two_images())
    assert isinstance(res, DatasetResult)
    kitti = res.to_dict()["aggregate"]["kitti"]["all"]
    mb = res.to_dict()["aggregate"]["middlebury"]["all"]
    # pooled: 1 outlier in 16 pixels; mean of per-image figures: (25 + 0) / 2
    assert kitti["D1-all"] == pytest.approx(100 / 16)
    assert mb["D1-all"] == pytest.approx(12.5)
    assert kitti["EPE"] == pytest.approx(5 / 16)
    assert mb["EPE"] == pytest.approx((5 / 4 + 0) / 2)
    assert kitti["bad-4.0"] == pytest.approx(100 / 16)
    assert mb["bad-4.0"] == pytest.approx(12.5)
    assert kitti["RMS"] == pytest.approx(math.sqrt(25 / 16))
    assert mb["RMS"] == pytest.approx((math.sqrt(25 / 4) + 0) / 2)
    assert kitti["density"] == pytest.approx(100 * 14 / 16)
    assert mb["density"] == pytest.approx((100 + 100 * 10 / 12) / 2)
    # pooled |e|: fifteen 0 and one 5 -> ranks 7.5, 13.5, 14.25, 14.85
    assert kitti["A50"] == 0.0
    assert kitti["A90"] == 0.0
    assert kitti["A95"] == pytest.approx(0.25 * 5)
    assert kitti["A99"] == pytest.approx(0.85 * 5)
    # image 1 sorted 0 0 0 5: A90 rank 2.7 -> 3.5, A95 -> 4.25, A99 -> 4.85; image 2 all 0
    assert mb["A50"] == 0.0
    assert mb["A90"] == pytest.approx(3.5 / 2)
    assert mb["A95"] == pytest.approx(4.25 / 2)
    assert mb["A99"] == pytest.approx(4.85 / 2)
    # fg only in image 1 (its one fg pixel is the outlier); image 2 without a mask counts as background
    assert kitti["D1-fg"] == pytest.approx(100.0)
    assert kitti["D1-bg"] == pytest.approx(0.0)
    assert mb["D1-fg"] == pytest.approx(100.0)
    assert mb["D1-bg"] == pytest.approx(0.0)


def test_noc_aggregate_covers_pairs_with_a_mask():
    res = evaluate_dataset("crafted", _two_images()).to_dict()
    assert set(res["pairs"]["one"]) == {"all", "noc"}
    assert set(res["pairs"]["two"]) == {"all"}
    # only image 1 has a mask: noc errors 5 0 0
    assert res["aggregate"]["kitti"]["noc"]["D1-all"] == pytest.approx(100 / 3)
    assert res["aggregate"]["middlebury"]["noc"]["D1-all"] == pytest.approx(100 / 3)
    assert res["aggregate"]["kitti"]["noc"]["density"] == pytest.approx(100.0)
    # without any mask there is no noc aggregate
    only_two = evaluate_dataset("d", {"two": _two_images()["two"]}).to_dict()
    assert set(only_two["aggregate"]["kitti"]) == {"all"}
    assert set(only_two["aggregate"]["middlebury"]) == {"all"}


def test_dataset_to_dict_shape():
    res = evaluate_dataset("crafted", _two_images()).to_dict()
    assert list(res) == ["dataset", "aggregate", "pairs"]
    assert res["dataset"] == "crafted"
    assert list(res["aggregate"]) == ["kitti", "middlebury"]
    assert list(res["pairs"]) == ["one", "two"]
    for agg in res["aggregate"].values():
        for region in agg.values():
            assert list(region) == list(METRIC_KEYS)


def test_aggregate_skips_images_with_nothing_to_score():
    empty = evaluate_pair(PRED_A, np.full(GT_A.shape, nan, np.float32))
    full = evaluate_pair(PRED_A, GT_A)
    res = evaluate_dataset("d", {"empty": empty, "full": full})
    # the empty image adds no pixel to the pool and no figure to the mean
    assert res.kitti["all"].to_dict()["D1-all"] == pytest.approx(EXPECTED_A["D1-all"])
    assert res.middlebury["all"].to_dict()["D1-all"] == pytest.approx(EXPECTED_A["D1-all"])
    assert res.kitti["all"]["D1-fg"] is None and res.middlebury["all"]["D1-fg"] is None
    with pytest.raises(StereoKitError, match="no scored pairs"):
        evaluate_dataset("none", {})


def test_pooling_one_pair_reproduces_its_figures():
    r = evaluate_pair(PRED_B, GT_B, nonocc=NONOCC_B)
    res = evaluate_dataset("one", {"b": r})
    for region in ("all", "noc"):
        pair = r.to_dict()[region]
        for agg in ("kitti", "middlebury"):
            got = res.to_dict()["aggregate"][agg][region]
            for key in METRIC_KEYS:
                if pair[key] is None:
                    assert got[key] is None
                else:
                    # pooled quantiles come from the histogram: within its 0.5 % bin width
                    assert got[key] == pytest.approx(pair[key], rel=6e-3)


def test_pooled_quantiles_match_the_pooled_errors():
    rng = np.random.default_rng(3)
    results, errors = {}, []
    for i in range(3):
        gt = rng.uniform(5, 60, size=(20, 30)).astype(np.float32)
        pred = np.maximum(gt + rng.standard_t(2, size=gt.shape).astype(np.float32) * (i + 1), 0)  # all valid
        results[f"p{i}"] = evaluate_pair(pred, gt)
        errors.append(np.abs(pred.astype(np.float64) - gt))
    pooled = np.concatenate([e.ravel() for e in errors])
    res = evaluate_dataset("rand", results)
    for key, q in zip(("A50", "A90", "A95", "A99"), (0.5, 0.9, 0.95, 0.99)):
        assert res.kitti["all"][key] == pytest.approx(np.quantile(pooled, q), rel=6e-3)
    assert res.kitti["all"]["EPE"] == pytest.approx(pooled.mean(), rel=1e-9)
    assert res.kitti["all"]["RMS"] == pytest.approx(np.sqrt((pooled**2).mean()), rel=1e-9)


def test_error_histogram_bins():
    e = np.array([0.0, 0.0, 1e-6, 1.0, 1.0, 3.0, 1e9])
    h, s = error_histogram(e)
    assert h.sum() == e.size and s.sum() == pytest.approx(e.sum())
    assert h[0] == 2 and h[1] == 1 and h[-1] == 1
    t = Tally(n=e.size, err_min=0.0, err_max=1e9, hist=h, hist_sum=s)
    # extremes exact; a bin holding one repeated value (1.0, 3.0) gives it exactly
    assert t.histogram_quantiles((0.0, 3 / 6, 4 / 6, 5 / 6, 1.0)) == [0.0, 1.0, 1.0, 3.0, 1e9]
    assert t.histogram_quantiles((1 / 12,)) == [0.0]  # halfway between two exact zeros


def test_mixed_fill_settings_cannot_be_aggregated():
    with pytest.raises(StereoKitError):
        evaluate_dataset("d", {"a": evaluate_pair(PRED_A, GT_A), "b": evaluate_pair(PRED_A, GT_A, fill=False)})


# --- output ----------------------------------------------------------------------------------------------------


def test_save_json_atomic_and_null_for_nan(tmp_path):
    res = evaluate_dataset("crafted", _two_images() | {"empty": evaluate_pair(PRED_A, np.full(GT_A.shape, nan))})
    out = tmp_path / "sub" / "results.json"
    assert save_json(out, res) == out
    text = out.read_text()
    assert "NaN" not in text
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert data == json.loads(json.dumps(res.to_dict()))
    assert data["pairs"]["empty"]["all"]["EPE"] is None
    assert [p.name for p in out.parent.iterdir()] == ["results.json"]  # no temp file left
    # overwriting works, and a failure leaves the previous file intact and no temp file
    save_json(out, {"x": 1.5, "y": float("nan")})
    assert json.loads(out.read_text()) == {"x": 1.5, "y": None}
    with pytest.raises(TypeError):
        save_json(out, {"x": object()})
    assert json.loads(out.read_text()) == {"x": 1.5, "y": None}
    assert [p.name for p in out.parent.iterdir()] == ["results.json"]


def test_format_table():
    res = evaluate_dataset("crafted", _two_images())
    text = format_table(res)
    lines = text.splitlines()
    assert "crafted" in lines[0] and "2 pairs" in lines[0]
    header = next(line for line in lines if line.startswith("all"))
    assert header.split()[1:] == list(METRIC_KEYS)
    row = next(line for line in lines if line.startswith("one "))
    cells = row.split()
    assert cells[1] == "25.00"  # D1-all
    assert cells[3] == "100.00"  # D1-fg
    assert cells[4] == "1.250"  # EPE
    assert any(line.startswith("[kitti") and line.split()[2] == "6.25" for line in lines)
    assert any(line.startswith("[middlebury") and line.split()[2] == "12.50" for line in lines)
    assert any(line.startswith("noc") for line in lines)
    two = next(line for line in lines if line.startswith("two "))
    assert two.split()[3] == "-"  # no fg mask
    assert "0.00" in format_table(evaluate_pair(GT_A, GT_A))
    assert "one " not in format_table(res, pairs=False)


def devkit_d1_and_density(gts, preds, obj_maps):
    """Port of the KITTI devkit's pixel loop (disparityErrorsOutlier + density), pooled over images.

    Estimates are filled by stereokit.fill (checked against the devkit's interpolateBackground in test_fill.py)."""
    from stereokit.fill import fill_invalid_background

    n = {"all": 0, "bg": 0, "fg": 0}
    err = {"all": 0, "bg": 0, "fg": 0}
    n_result = 0
    for gt, pred, obj in zip(gts, preds, obj_maps):
        ipol = fill_invalid_background(pred)
        for v in range(gt.shape[0]):
            for u in range(gt.shape[1]):
                if np.isnan(gt[v, u]):
                    continue
                d_gt, d_est = float(gt[v, u]), float(ipol[v, u])
                d_err = abs(d_gt - d_est) > 3.0 and abs(d_gt - d_est) / abs(d_gt) > 0.05
                region = "bg" if obj[v, u] == 0 else "fg"
                n[region] += 1
                err[region] += d_err
                n["all"] += 1
                err["all"] += d_err
                n_result += not np.isnan(pred[v, u])
    return {f"D1-{k}": 100.0 * err[k] / n[k] for k in n} | {"density": 100.0 * n_result / n["all"]}


def test_pooled_d1_equals_the_devkit_loop():
    rng = np.random.default_rng(11)
    gts, preds, objs, results = [], [], [], {}
    for i in range(3):
        h, w = 9, 13
        gt = rng.uniform(4, 80, size=(h, w)).astype(np.float32)
        gt[rng.random((h, w)) < 0.2] = nan
        pred = (gt + rng.normal(0, 4, size=(h, w))).astype(np.float32)
        pred[np.isnan(pred)] = 20.0
        pred[rng.random((h, w)) < 0.3] = nan
        obj = (rng.random((h, w)) < 0.3).astype(np.uint8) * (i + 1)
        gts.append(gt), preds.append(pred), objs.append(obj)
        results[str(i)] = evaluate_pair(pred, gt, fg=obj)
    reference = devkit_d1_and_density(gts, preds, objs)
    pooled = evaluate_dataset("rand", results).kitti["all"]
    assert 0 < reference["D1-all"] < 100
    for key, value in reference.items():
        assert pooled[key] == pytest.approx(value, rel=1e-12), key


@pytest.mark.parametrize(
    "pred, expected",
    [
        # gt 100, estimate 95.125: |e| = 4.875 > 3 px but < 5 % of gt (5.0) -> not an outlier
        # (5 % of the estimate would be 4.756 < 4.875: an outlier if the rule used the estimate)
        (95.125, 0.0),
        # gt 100, estimate 105.125: |e| = 5.125 > 5 % of gt (5.0) -> an outlier
        # (5 % of the estimate would be 5.256 > 5.125: not an outlier if the rule used the estimate)
        (105.125, 100.0),
    ],
)
def test_d1_relative_threshold_is_five_percent_of_the_ground_truth(pred, expected):
    gt = np.array([[100.0]], np.float32)
    r = evaluate_pair(np.array([[pred]], np.float32), gt)
    assert r.all["D1-all"] == expected


def test_an_estimate_of_exactly_zero_is_valid():
    # d = 0 (a point at infinity) is a valid disparity for the devkit (isValid: d >= 0), in the estimate as in the GT
    gt = np.array([[0.0, 5.0]], np.float32)
    r = evaluate_pair(gt.copy(), gt)
    assert r.all["density"] == 100.0 and r.all["EPE"] == 0.0 and r.all["D1-all"] == 0.0


# errors 1, 1 + 1/1024, 1 + 3/1024 (exact in float32) share one bin of the pooled-quantile histogram
GT_Q = np.full((1, 3), 16.0, np.float32)
PRED_Q = GT_Q + np.array([[1.0, 1.0 + 1 / 1024, 1.0 + 3 / 1024]], np.float32)


def test_per_pair_quantiles_are_exact_not_histogram_bins():
    r = evaluate_pair(PRED_Q, GT_Q, nonocc=np.ones(GT_Q.shape, bool))
    # sorted |e| = 1, 1 + 1/1024, 1 + 3/1024: rank 1 is the middle one; A90 rank 1.8 -> + 0.8 * 2/1024 ...
    expected = {"A50": 1 + 1 / 1024, "A90": 1 + 2.6 / 1024, "A95": 1 + 2.8 / 1024, "A99": 1 + 2.96 / 1024}
    for region in (r.all, r.noc):
        for key, value in expected.items():
            assert region[key] == pytest.approx(value, rel=1e-12, abs=0), key


def test_pooled_quantiles_take_the_pooled_extremes_exactly():
    # two one-pixel pairs, errors 1 and 1 + 3/1024 in one histogram bin: the order statistics 0 and n - 1 are the
    # pooled minimum and maximum, not the bin's mean
    a = evaluate_pair(PRED_Q[:, :1], GT_Q[:, :1])
    b = evaluate_pair(PRED_Q[:, 2:], GT_Q[:, 2:])
    pooled = evaluate_dataset("two", {"a": a, "b": b}).kitti["all"]
    for key, q in (("A50", 0.5), ("A90", 0.9), ("A95", 0.95), ("A99", 0.99)):
        assert pooled[key] == pytest.approx(1 + q * 3 / 1024, rel=1e-12, abs=0), key


@pytest.mark.parametrize("pred, expected", [(84.0, 100.0), (76.0, 100.0), (83.99609375, 0.0), (84.0078125, 100.0)])
def test_d1_at_exactly_five_percent_is_an_outlier_as_in_the_devkit(pred, expected):
    # gt 80, |e| = 4 > 3 px and exactly 5 % of gt. The devkit's C++ divides floats: fabs(float) / fabs(float) =
    # 4.f / 80.f = 0.05f = 0.0500000007..., which exceeds its double REL_THRESH 0.05: an outlier. 4 - 1/256 px is not.
    r = evaluate_pair(np.array([[pred]], np.float32), np.array([[80.0]], np.float32))
    assert r.all["D1-all"] == expected


def test_d1_outliers_equal_a_per_pixel_port_of_the_devkit_on_kitti_quantised_values():
    # the devkit's expression with numpy float32 scalars for its C++ floats and Python floats for its #defines,
    # one pixel at a time, on values of KITTI's 1/256 grid, many of them exactly 5 % off
    rng = np.random.default_rng(5)
    gt = (rng.integers(1, 256 * 120, 4000) / 256).astype(np.float32)
    est = (rng.integers(0, 256 * 130, 4000) / 256).astype(np.float32)
    gt[:1000] = (rng.integers(256 * 61, 256 * 120, 1000) / 256).astype(np.float32)  # 5 % of it is over 3 px
    est[:1000] = gt[:1000] + gt[:1000] / np.float32(20)  # 5 % off, rounded to float32
    from eval.metrics import d1_outliers

    def devkit(d_gt, d_est):
        e = np.float32(abs(np.float32(d_gt - d_est)))
        return float(e) > 3.0 and float(np.float32(e / np.float32(abs(d_gt)))) > 0.05

    err = np.abs(gt - est)
    want = np.array([devkit(g, d) for g, d in zip(gt, est)])
    np.testing.assert_array_equal(d1_outliers(err, gt), want)
    ratio = np.abs(gt[:1000].astype(np.float64) - est[:1000]) / gt[:1000]
    assert (ratio == 0.05).sum() > 100 and want[:1000][ratio == 0.05].all()  # exactly 5 %: outliers, as in the devkit


def test_infinite_ground_truth_is_unknown_not_refused():
    gt = np.array([[np.inf, -np.inf, 10.0]], np.float32)
    r = evaluate_pair(np.array([[1.0, 1.0, 10.0]], np.float32), gt)
    assert r.all["density"] == 100.0 and r.all["EPE"] == 0.0  # one scored pixel


def test_fill_false_splits_fg_and_bg_over_the_scored_pixels():
    gt = np.full((1, 4), 10.0, np.float32)
    pred = np.array([[15.0, nan, 10.0, 20.0]], np.float32)
    fg = np.array([[1, 1, 0, 0]], np.uint8)
    r = evaluate_pair(pred, gt, fg=fg, fill=False)
    # scored: (0,0) fg 5 px off (outlier), (0,2) bg exact, (0,3) bg 10 px off (outlier)
    assert r.all["D1-fg"] == 100.0 and r.all["D1-bg"] == 50.0
    assert r.all["D1-all"] == pytest.approx(200 / 3) and r.all["density"] == 75.0
    filled = evaluate_pair(pred, gt, fg=fg)
    # (0,1) filled with min(15, 10) = 10: a correct fg pixel
    assert filled.all["D1-fg"] == 50.0 and filled.all["D1-bg"] == 50.0


def test_nan_in_the_fg_mask_is_refused():
    fg = np.zeros(GT_A.shape)
    fg[0, 0] = nan
    with pytest.raises(StereoKitError, match="NaN"):
        evaluate_pair(PRED_A, GT_A, fg=fg)


def test_dataset_mean_of_empty_fg_regions_is_nan_not_none():
    # every pair has a fg mask, all empty: D1-fg is "nothing to score" (NaN), not "not applicable" (None)
    pairs = {k: evaluate_pair(PRED_A, GT_A, fg=np.zeros(GT_A.shape, bool)) for k in ("a", "b")}
    res = evaluate_dataset("d", pairs)
    assert math.isnan(res.middlebury["all"].d1_fg) and math.isnan(res.kitti["all"].d1_fg)
    no_mask = evaluate_dataset("d", {"a": evaluate_pair(PRED_A, GT_A)})
    assert no_mask.middlebury["all"].d1_fg is None and no_mask.kitti["all"].d1_fg is None
