"""The one scorer of every disparity map: KITTI D1, EPE, Middlebury bad-x, RMS, error quantiles and density.

Rules (the same for every caller: `stereokit eval`, the comparison runner, the benchmarks):

- Ground truth: disparities in pixels (float, NaN or +-inf unknown); a pixel is scored when its ground truth is
  finite. Integer arrays (a raw KITTI PNG's uint16 is 256 x the disparity) and negative values (a -1 or 0-as-invalid
  encoding) are refused with a StereoKitError: convert at I/O (`stereokit.io.read_disparity`). Region `all` is every
  scored pixel; region `noc` adds the non-occlusion mask and exists only when a mask is given.
- Masks: `nonocc` is boolean, 0/1, or Middlebury's encoding (255 non-occluded, 128 occluded, 0 unknown: only 255
  counts); `fg` is KITTI's obj_map or any array whose non-zero pixels are foreground. NaN in a mask is refused.
- Estimates: valid where finite and >= 0, the devkit's `isValid` (negatives cannot be stored in its PNG format;
  `colorize_disparity` draws them as invalid too). Estimates are scored as float32, the convention's dtype.
  `density` is the share (%) of valid-GT pixels that have a valid estimate, counted BEFORE filling.
- fill=True (default, the KITTI devkit's way): invalid estimates are filled by
  `stereokit.fill.fill_invalid_background` before scoring, so a matcher cannot look better by abstaining. Pixels the
  background interpolation cannot reach (an all-invalid map, an interior row with no valid pixel) keep the devkit's
  in-memory invalid value `INVALID_ESTIMATE` = -1 px and are scored against it, as the devkit scores them.
- fill=False: only pixels with a valid estimate are scored (like the devkit's "result" statistics); density is the
  only figure that shows what was left out. MiddEval3's SDK (`evaldisp`) instead divides its bad-x count by all
  masked ground-truth pixels and reports the invalid share apart: its `bad` is this bad-x times density / 100, its
  `invalid` is 100 - density, and its `totbad` their sum.
- D1 outlier: |d - gt| > 3 px AND |d - gt| / |gt| > 5 % (so 4 px off a ground truth of 100 px is not an outlier),
  in float32 as the devkit's C++ computes it (`d1_outliers`): exactly 5 % (4 px off 80) is an outlier, 0.05f > 0.05.
  D1-bg / D1-fg split by the foreground mask (KITTI obj_map != 0). Without a mask every pixel is background:
  D1-bg equals D1-all and D1-fg is None (not applicable). bad-x: |d - gt| > x px. EPE: mean |d - gt|.
  RMS: sqrt(mean (d - gt)^2). A50..A99: quantiles of |d - gt| (numpy's default linear interpolation).
- Empty region (no valid ground truth, an empty mask, or nothing scored with fill=False): the figures are NaN,
  written as null in JSON.
- Percentages are 0-100; EPE, RMS and A* are in pixels.

Dataset aggregation, both reported and labelled:

- "kitti": counts and error sums are pooled over all pixels of all images (pixel-weighted, as the KITTI devkit).
  The pooled quantiles are read from a per-pair histogram of errors (count and sum per bin; a bin for exact zeros,
  one for (0, 2^-10) px, bins of 1/128 octave up to 2^12 px, one above), so memory stays fixed per pair (90 KB)
  however large the images: each order statistic is its bin's mean error, so they are accurate to the bin width
  (0.54 % relative, 0.001 px absolute below 0.001 px), exact where a bin holds one repeated value (zeros, integer
  errors), and the extremes are the pooled minimum and maximum. Per-pair quantiles are exact.
  The `noc` aggregate pools the pairs that have a non-occlusion mask; D1-fg pools the pairs that have a fg mask.
- "middlebury": the mean of the per-image figures; images whose figure is NaN (nothing to score) or None are left
  out of that figure's mean.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from stereokit.errors import StereoKitError
from stereokit.fill import fill_invalid_background
from stereokit.pair import as_mask, check_ground_truth

METRIC_KEYS: tuple[str, ...] = (
    "D1-all",
    "D1-bg",
    "D1-fg",
    "EPE",
    "bad-0.5",
    "bad-1.0",
    "bad-2.0",
    "bad-4.0",
    "RMS",
    "A50",
    "A90",
    "A95",
    "A99",
    "density",
)
PERCENT_KEYS = frozenset({"D1-all", "D1-bg", "D1-fg", "bad-0.5", "bad-1.0", "bad-2.0", "bad-4.0", "density"})
BAD_THRESHOLDS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
QUANTILES: tuple[float, ...] = (0.50, 0.90, 0.95, 0.99)
D1_ABS_THRESH = 3.0  # px
D1_REL_THRESH = 0.05  # of |gt|
INVALID_ESTIMATE = -1.0  # the devkit's value for pixels its background fill cannot reach

# Error histogram for pooled quantiles: bin 0 = exactly 0, bin 1 = (0, 2^LO), then BINS_PER_OCTAVE bins per octave
# up to 2^HI, then one overflow bin [2^HI, inf). Bin b spans [HIST_EDGES[b], HIST_EDGES[b + 1]].
HIST_LO_EXP = -10
HIST_HI_EXP = 12
HIST_BINS_PER_OCTAVE = 128
_N_LOG_BINS = (HIST_HI_EXP - HIST_LO_EXP) * HIST_BINS_PER_OCTAVE
HIST_SIZE = _N_LOG_BINS + 3
HIST_EDGES = np.concatenate(
    ([0.0, 0.0], np.exp2(HIST_LO_EXP + np.arange(_N_LOG_BINS + 1) / HIST_BINS_PER_OCTAVE), [np.inf])
)

# field name of Metrics -> JSON key
_FIELD_KEYS = dict(
    zip(
        ("d1_all", "d1_bg", "d1_fg", "epe", "bad_0_5", "bad_1_0", "bad_2_0", "bad_4_0", "rms", "a50", "a90", "a95", "a99", "density"),
        METRIC_KEYS,
    )
)
_KEY_FIELDS = {v: k for k, v in _FIELD_KEYS.items()}


def _clean(value: float | None) -> float | None:
    """JSON-ready number: NaN and None become None."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


@dataclass
class Metrics:
    """The figures of one region (`all` or `noc`) of one pair or one aggregate.

    NaN means nothing to score (empty region); None means not applicable (D1-fg without a foreground mask).
    `m["D1-all"]` reads a figure by its JSON key.
    """

    d1_all: float = math.nan
    d1_bg: float = math.nan
    d1_fg: float | None = None
    epe: float = math.nan
    bad_0_5: float = math.nan
    bad_1_0: float = math.nan
    bad_2_0: float = math.nan
    bad_4_0: float = math.nan
    rms: float = math.nan
    a50: float = math.nan
    a90: float = math.nan
    a95: float = math.nan
    a99: float = math.nan
    density: float = math.nan

    def __getitem__(self, key: str) -> float | None:
        try:
            return getattr(self, _KEY_FIELDS[key])
        except KeyError:
            raise KeyError(f"unknown metric {key!r}; known: {', '.join(METRIC_KEYS)}") from None

    def to_dict(self) -> dict[str, float | None]:
        """{JSON key: value} in METRIC_KEYS order; NaN and None become None (JSON null)."""
        return {key: _clean(getattr(self, name)) for name, key in _FIELD_KEYS.items()}


@dataclass
class Tally:
    """Everything a region contributes to a pooled (KITTI-style) aggregate: counts, error sums, a histogram."""

    n_gt: int = 0  # valid-GT pixels in the region
    n_est: int = 0  # of those, with a valid estimate before filling
    n: int = 0  # pixels scored (n_gt with fill, n_est without)
    n_bg: int = 0
    n_fg: int = 0
    has_fg: bool = False
    d1: int = 0
    d1_bg: int = 0
    d1_fg: int = 0
    bad: tuple[int, ...] = (0,) * len(BAD_THRESHOLDS)
    sum_abs: float = 0.0
    sum_sq: float = 0.0
    err_min: float = math.inf
    err_max: float = -math.inf
    hist: np.ndarray = field(default_factory=lambda: np.zeros(HIST_SIZE, dtype=np.int64), repr=False)
    hist_sum: np.ndarray = field(default_factory=lambda: np.zeros(HIST_SIZE, dtype=np.float64), repr=False)

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            n_gt=self.n_gt + other.n_gt,
            n_est=self.n_est + other.n_est,
            n=self.n + other.n,
            n_bg=self.n_bg + other.n_bg,
            n_fg=self.n_fg + other.n_fg,
            has_fg=self.has_fg or other.has_fg,
            d1=self.d1 + other.d1,
            d1_bg=self.d1_bg + other.d1_bg,
            d1_fg=self.d1_fg + other.d1_fg,
            bad=tuple(a + b for a, b in zip(self.bad, other.bad)),
            sum_abs=self.sum_abs + other.sum_abs,
            sum_sq=self.sum_sq + other.sum_sq,
            err_min=min(self.err_min, other.err_min),
            err_max=max(self.err_max, other.err_max),
            hist=self.hist + other.hist,
            hist_sum=self.hist_sum + other.hist_sum,
        )

    def _order_statistic(self, cum: np.ndarray, k: int) -> float:
        """Estimate of the k-th smallest error (0-based): the mean error of its bin (exact for repeated values)."""
        if k <= 0:
            return self.err_min
        if k >= self.n - 1:
            return self.err_max
        b = int(np.searchsorted(cum, k, side="right"))
        value = self.hist_sum[b] / self.hist[b]
        return float(min(max(value, self.err_min), self.err_max))

    def histogram_quantiles(self, qs: tuple[float, ...] = QUANTILES) -> list[float]:
        """Quantiles of the tallied errors from the histogram, interpolated between order statistics as numpy's
        default (linear) quantile does."""
        if self.n == 0:
            return [math.nan] * len(qs)
        cum = np.cumsum(self.hist)
        out = []
        for q in qs:
            pos = q * (self.n - 1)
            k = math.floor(pos)
            v = self._order_statistic(cum, k)
            if pos > k:
                v += (pos - k) * (self._order_statistic(cum, k + 1) - v)
            out.append(v)
        return out

    def metrics(self, quantiles: list[float] | None = None) -> Metrics:
        """Figures of this tally; `quantiles` exact if given, else read from the histogram."""

        def pct(k: int, n: int) -> float:
            return 100.0 * k / n if n else math.nan

        if quantiles is None:
            quantiles = self.histogram_quantiles()
        n = self.n
        return Metrics(
            d1_all=pct(self.d1, n),
            d1_bg=pct(self.d1_bg, self.n_bg),
            d1_fg=pct(self.d1_fg, self.n_fg) if self.has_fg else None,
            epe=self.sum_abs / n if n else math.nan,
            bad_0_5=pct(self.bad[0], n),
            bad_1_0=pct(self.bad[1], n),
            bad_2_0=pct(self.bad[2], n),
            bad_4_0=pct(self.bad[3], n),
            rms=math.sqrt(self.sum_sq / n) if n else math.nan,
            a50=quantiles[0],
            a90=quantiles[1],
            a95=quantiles[2],
            a99=quantiles[3],
            density=pct(self.n_est, self.n_gt),
        )


def _histogram_index(errors: np.ndarray) -> np.ndarray:
    """Bin of each absolute error in HIST_EDGES."""
    e = np.asarray(errors, dtype=np.float64).ravel()
    idx = np.where(e > 0, 1, 0).astype(np.int64)
    inside = e >= HIST_EDGES[2]
    k = np.floor((np.log2(e[inside]) - HIST_LO_EXP) * HIST_BINS_PER_OCTAVE).astype(np.int64) + 2
    idx[inside] = np.clip(k, 2, HIST_SIZE - 1)
    return idx


def error_histogram(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(count, sum of errors) per HIST_EDGES bin: int64 and float64 arrays of HIST_SIZE."""
    e = np.asarray(errors, dtype=np.float64).ravel()
    idx = _histogram_index(e)
    return (
        np.bincount(idx, minlength=HIST_SIZE).astype(np.int64),
        np.bincount(idx, weights=e, minlength=HIST_SIZE).astype(np.float64),
    )


@dataclass
class PairResult:
    """Scores of one predicted disparity: `all` always, `noc` when a non-occlusion mask was given."""

    all: Metrics
    noc: Metrics | None = None
    filled: bool = True
    tally_all: Tally = field(default_factory=Tally, repr=False)
    tally_noc: Tally | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """{"all": {metric: value}, "noc": {...}} (noc only when a non-occlusion mask existed)."""
        out = {"all": self.all.to_dict()}
        if self.noc is not None:
            out["noc"] = self.noc.to_dict()
        return out


def _as_disparity(arr, what: str) -> np.ndarray:
    try:
        a = np.asarray(arr)
        a = a.astype(np.float32) if a.dtype != np.float32 else a
    except (TypeError, ValueError) as exc:
        raise StereoKitError(f"{what} is not a numeric array: {exc}") from None
    if a.ndim != 2:
        raise StereoKitError(f"{what} must be a 2-D (H, W) disparity map, got shape {a.shape}")
    return a


def as_ground_truth(gt) -> np.ndarray:
    """Ground truth as float32 (H, W), NaN where unknown (`stereokit.pair.check_ground_truth`: raw integer
    encodings and negative sentinels are refused)."""
    g = check_ground_truth(gt)
    if g.ndim != 2:
        raise StereoKitError(f"ground truth must be a 2-D (H, W) disparity map, got shape {g.shape}")
    return g


def estimates_as_scored(pred, fill: bool = True, *, what: str = "prediction") -> tuple[np.ndarray, np.ndarray]:
    """The estimates the evaluator scores (float32 (H, W)) and the mask of valid ones before filling.

    Valid: finite and >= 0. With `fill` the rest are filled by the devkit's background interpolation and pixels it
    cannot reach get INVALID_ESTIMATE; without, they are NaN. The error maps draw exactly these values. `what`
    names the array in error messages.
    """
    p = _as_disparity(pred, what)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(p) & (p >= 0)
    p = np.where(valid, p, np.float32(np.nan)).astype(np.float32)
    if fill:
        if p.size and valid.any() and not valid.all():
            p = fill_invalid_background(p)
        p = np.where(np.isnan(p), np.float32(INVALID_ESTIMATE), p).astype(np.float32)
    return p, valid


def d1_outliers(err: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """KITTI's D1 outliers, bit for bit as the devkit's C++ decides them: `fabs(d_gt-d_est)>ABS_THRESH &&
    fabs(d_gt-d_est)/fabs(d_gt)>REL_THRESH` with float disparities, so |e| and |e| / |gt| are float32 and compared
    with the double constants 3.0 and 0.05. An error of exactly 5 % is an outlier: 4.f / 80.f = 0.05f > 0.05."""
    e = np.asarray(err, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = e / np.abs(np.asarray(gt, dtype=np.float32))
    return (e.astype(np.float64) > D1_ABS_THRESH) & (ratio.astype(np.float64) > D1_REL_THRESH)


def _tally(err: np.ndarray, gt: np.ndarray, fg: np.ndarray | None, n_gt: int, n_est: int) -> tuple[Tally, list[float]]:
    """Tally of the scored pixels (1-D arrays of |d - gt|, gt, fg) and their exact quantiles."""
    outlier = d1_outliers(err, gt)
    n = int(err.size)
    if fg is None:
        n_fg = d1_fg = 0
    else:
        n_fg = int(fg.sum())
        d1_fg = int(outlier[fg].sum())
    d1 = int(outlier.sum())
    tally = Tally(
        n_gt=n_gt,
        n_est=n_est,
        n=n,
        n_bg=n - n_fg,
        n_fg=n_fg,
        has_fg=fg is not None,
        d1=d1,
        d1_bg=d1 - d1_fg,
        d1_fg=d1_fg,
        bad=tuple(int((err > t).sum()) for t in BAD_THRESHOLDS),
        sum_abs=float(err.sum()),
        sum_sq=float(np.dot(err, err)),
        err_min=float(err.min()) if n else math.inf,
        err_max=float(err.max()) if n else -math.inf,
    )
    tally.hist, tally.hist_sum = error_histogram(err)
    quantiles = [float(q) for q in np.quantile(err, QUANTILES)] if n else [math.nan] * len(QUANTILES)
    return tally, quantiles


def evaluate_pair(
    pred: np.ndarray,
    gt: np.ndarray,
    nonocc: np.ndarray | None = None,
    fg: np.ndarray | None = None,
    fill: bool = True,
) -> PairResult:
    """Score a predicted disparity against the ground truth (both (H, W), NaN invalid).

    `nonocc`: non-occlusion mask (True, 1 or Middlebury's 255 = non-occluded), adds the `noc` region. `fg`:
    foreground mask (KITTI obj_map: non-zero = foreground) for D1-fg / D1-bg. `fill`: fill invalid estimates (NaN,
    inf, negative) by the KITTI background interpolation first (pixels it cannot reach are scored as -1 px, as in
    the devkit); fill=False scores only the pixels with a valid estimate. Raises StereoKitError when the shapes
    differ, or on ground truth in a raw encoding (integers, negative sentinels); see the module docstring.
    """
    g = as_ground_truth(gt)
    p, est_valid = estimates_as_scored(pred, fill)
    if p.shape != g.shape:
        raise StereoKitError(
            f"prediction has shape {p.shape} but the ground truth has {g.shape} (height, width); "
            "predictions must be exactly the ground truth's size (no padding or cropping)"
        )
    nonocc_m = as_mask(nonocc, g.shape, "nonocc", middlebury=True)
    fg_m = as_mask(fg, g.shape, "fg")
    gt_valid = np.isfinite(g)
    p, g = p.astype(np.float64), g.astype(np.float64)

    def region(mask: np.ndarray) -> tuple[Tally, list[float]]:
        n_gt = int(mask.sum())
        n_est = int((mask & est_valid).sum())
        scored = mask if fill else mask & est_valid
        err = np.abs(p[scored] - g[scored])
        return _tally(err, g[scored], None if fg_m is None else fg_m[scored], n_gt, n_est)

    tally_all, q_all = region(gt_valid)
    result = PairResult(all=tally_all.metrics(q_all), filled=bool(fill), tally_all=tally_all)
    if nonocc_m is not None:
        tally_noc, q_noc = region(gt_valid & nonocc_m)
        result.noc = tally_noc.metrics(q_noc)
        result.tally_noc = tally_noc
    return result


@dataclass
class DatasetResult:
    """Scores of a dataset: per pair, and aggregated KITTI-style (pixel-pooled) and Middlebury-style (mean)."""

    name: str
    pairs: dict[str, PairResult]
    kitti: dict[str, Metrics]  # {"all": ..., "noc": ...}
    middlebury: dict[str, Metrics]

    def to_dict(self) -> dict:
        """{"dataset", "aggregate": {"kitti": {"all", "noc"}, "middlebury": {"all", "noc"}}, "pairs": {NAME: ...}}."""
        return {
            "dataset": self.name,
            "aggregate": {
                "kitti": {region: m.to_dict() for region, m in self.kitti.items()},
                "middlebury": {region: m.to_dict() for region, m in self.middlebury.items()},
            },
            "pairs": {name: r.to_dict() for name, r in self.pairs.items()},
        }


def _mean_metrics(items: list[Metrics]) -> Metrics:
    """Per-figure mean over images, leaving out NaN; None where no image has the figure at all."""
    values = {}
    for f in fields(Metrics):
        vals = [getattr(m, f.name) for m in items]
        present = [v for v in vals if v is not None]
        finite = [v for v in present if not math.isnan(v)]
        if finite:
            values[f.name] = float(np.mean(finite))
        elif present or f.name != "d1_fg":
            values[f.name] = math.nan
        else:
            values[f.name] = None
    return Metrics(**values)


def evaluate_dataset(name: str, pairs: Mapping[str, PairResult]) -> DatasetResult:
    """Aggregate per-pair results both ways: "kitti" (pixels pooled over images) and "middlebury" (mean per image).

    The `noc` aggregates cover the pairs that have a non-occlusion mask and exist only if at least one has.
    """
    pairs = dict(pairs)
    if not pairs:
        raise StereoKitError(f"dataset {name!r}: no scored pairs to aggregate")
    if len({r.filled for r in pairs.values()}) > 1:
        raise StereoKitError("cannot aggregate pairs scored with and without filling of invalid estimates")
    kitti: dict[str, Metrics] = {}
    middlebury: dict[str, Metrics] = {}
    all_tallies = [r.tally_all for r in pairs.values()]
    kitti["all"] = sum(all_tallies, Tally()).metrics()
    middlebury["all"] = _mean_metrics([r.all for r in pairs.values()])
    noc = [r for r in pairs.values() if r.noc is not None and r.tally_noc is not None]
    if noc:
        kitti["noc"] = sum((r.tally_noc for r in noc), Tally()).metrics()
        middlebury["noc"] = _mean_metrics([r.noc for r in noc])
    return DatasetResult(name=str(name), pairs=pairs, kitti=kitti, middlebury=middlebury)


def _fmt(key: str, value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.2f}" if key in PERCENT_KEYS else f"{value:.3f}"


def format_table(result: DatasetResult | PairResult, pairs: bool = True) -> str:
    """The results as a text table: one block per region (all, noc), one row per pair then the two aggregates.

    Percentages (D1, bad-x, density) with 2 decimals, pixels (EPE, RMS, A*) with 3; '-' = nothing to score / n.a.
    """
    if isinstance(result, PairResult):
        rows_by_region = {"all": [("pair", result.all)]}
        if result.noc is not None:
            rows_by_region["noc"] = [("pair", result.noc)]
        title = "pair"
        filled = result.filled
    else:
        rows_by_region = {}
        for region in result.kitti:
            rows = []
            if pairs:
                for pname, r in result.pairs.items():
                    m = r.all if region == "all" else r.noc
                    if m is not None:
                        rows.append((pname, m))
            rows.append(("[kitti: pooled]", result.kitti[region]))
            rows.append(("[middlebury: mean]", result.middlebury[region]))
            rows_by_region[region] = rows
        title = f"dataset {result.name}: {len(result.pairs)} pair{'s' if len(result.pairs) != 1 else ''}"
        filled = all(r.filled for r in result.pairs.values())
    fill_note = "invalid estimates filled (KITTI background interpolation)" if filled else "unfilled: only valid estimates scored"
    lines = [f"{title}; {fill_note}; % for D1/bad/density, px for EPE/RMS/A*"]
    for region, rows in rows_by_region.items():
        name_w = max(12, *(len(n) for n, _ in rows)) + 1
        widths = [max(7, len(k)) for k in METRIC_KEYS]
        lines.append("")
        lines.append(f"{region:<{name_w}}" + " ".join(f"{k:>{w}}" for k, w in zip(METRIC_KEYS, widths)))
        for pname, m in rows:
            cells = " ".join(f"{_fmt(k, m[k]):>{w}}" for k, w in zip(METRIC_KEYS, widths))
            lines.append(f"{pname:<{name_w}}" + cells)
    return "\n".join(lines)


def _json_ready(obj):
    if isinstance(obj, float) or isinstance(obj, np.floating):
        return _clean(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, Mapping):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    return obj


def save_json(path: str | os.PathLike, result: DatasetResult | PairResult | Mapping) -> Path:
    """Write a result (anything with `to_dict()`, or a dict) as JSON, atomically (stereokit.io.atomic_write_bytes:
    temp file in the folder, then os.replace), so a crash never leaves a half-written file. NaN is written as null.
    Missing parent folders are created. Returns the path."""
    from stereokit.io import atomic_write_bytes  # OpenCV comes with stereokit.io: only when writing

    data = _json_ready(result.to_dict() if hasattr(result, "to_dict") else result)
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    return atomic_write_bytes(path, text.encode("utf-8"))
