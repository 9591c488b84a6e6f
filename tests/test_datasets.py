"""Datasets: the synthetic generator's exactness, `sample`, spec parsing, and every loader on fixtures written here."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from stereokit import StereoKitError, StereoPair
from stereokit.datasets import Dataset, describe_specs, open_dataset
from stereokit.datasets.middlebury import lr_consistent
from stereokit.datasets.synthetic import make_scene
from stereokit.datasets.views import right_reference
from stereokit.io import write_image, write_kitti_disparity, write_pfm

SMALL = dict(height=72, width=112, max_disp=20)


# ---------------------------------------------------------------- synthetic

def _warp_right(right: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Right view sampled (linearly) at x - gt: (warped, x0, t)."""
    h, w = gt.shape
    v, u = np.mgrid[0:h, 0:w]
    xr = u - gt.astype(np.float64)
    x0 = np.clip(np.floor(xr).astype(int), 0, w - 1)
    t = np.clip(xr - x0, 0, 1)
    x1 = np.minimum(x0 + 1, w - 1)
    r = right.astype(np.float64)
    if r.ndim == 3:
        return r[v, x0] * (1 - t)[..., None] + r[v, x1] * t[..., None], x0, t
    return r[v, x0] * (1 - t) + r[v, x1] * t, x0, t


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_synthetic_integer_fronto_parallel_is_exact(seed):
    p = make_scene(seed, **SMALL, photometric=False, integer_disp=True)
    assert np.array_equal(p.gt, np.round(p.gt))
    h, w = p.shape
    v, u = np.mgrid[0:h, 0:w]
    m = p.nonocc
    assert 0.5 < m.mean() < 1.0  # objects occlude something, most pixels are visible
    xr = (u - p.gt).astype(int)
    assert (xr[m] >= 0).all()
    assert np.array_equal(p.right[v[m], xr[m]], p.left[m])
    # and occluded pixels are mostly not reproduced (they see another surface in the right view)
    occ = ~m & (u - p.gt >= 0)
    if occ.sum() > 20:
        diff = np.abs(p.right[v[occ], xr[occ]].astype(int) - p.left[occ]).max(axis=-1)
        assert (diff > 0).mean() > 0.5


@pytest.mark.parametrize("seed", [0, 5, 7])
def test_synthetic_subpixel_warp_matches_up_to_interpolation(seed):
    p = make_scene(seed, **SMALL, photometric=False)
    assert not np.array_equal(p.gt, np.round(p.gt))  # slanted planes give sub-pixel disparities
    warped, _, _ = _warp_right(p.right, p.gt)
    err = np.abs(warped - p.left).mean(axis=-1)
    m = p.nonocc
    assert np.median(err[m]) < 1.5
    assert err[m].mean() < 0.25 * err[~m].mean()


@pytest.mark.parametrize("seed", [0, 3, 11])
def test_synthetic_nonocc_agrees_with_right_view_geometry(seed):
    """Where both right-view neighbours of x - gt show the same surface, that surface decides visibility.

    Exceptions can only come from outline features thinner than a pixel (a sliver or notch between two pixel
    centres, which the exact continuous test sees and the sampled surface maps miss): at most a handful.
    """
    p = make_scene(seed, **SMALL)
    sl, sr, gr = p.meta["surface"], p.meta["surface_right"], p.meta["gt_right"]
    h, w = p.shape
    v, u = np.mgrid[0:h, 0:w]
    xr = u - p.gt.astype(np.float64)
    inside = (xr >= 0) & (xr <= w - 1)
    x0 = np.clip(np.floor(xr).astype(int), 0, w - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    t = xr - x0
    same = inside & (sr[v, x0] == sr[v, x1])
    seen_same = same & (sr[v, x0] == sl)
    seen_other = same & (sr[v, x0] != sl)
    assert seen_same.sum() > 0.5 * h * w and seen_other.sum() > 50
    assert (~p.nonocc[seen_same]).sum() <= 4
    assert p.nonocc[seen_other].sum() <= 4
    assert not p.nonocc[xr < 0].any()
    # right GT interpolated at x - gt reproduces the left GT on visible planes (affine, so exactly)
    gri = gr[v, x0] * (1 - t) + gr[v, x1] * t
    vis = seen_same & p.nonocc
    assert np.abs(gri - p.gt)[vis].max() < 1e-3
    assert ((gri - p.gt)[seen_other & ~p.nonocc] > 0).all()  # occluders are nearer


def test_synthetic_ranges_types_and_masks():
    p = make_scene(4, height=64, width=96, max_disp=16)
    assert isinstance(p, StereoPair) and p.name == "synthetic-00004"
    assert p.left.shape == (64, 96, 3) and p.left.dtype == np.uint8 and p.right.dtype == np.uint8
    assert p.gt.dtype == np.float32 and not np.isnan(p.gt).any()
    assert p.gt.min() >= 0 and p.gt.max() <= 15
    assert p.nonocc.dtype == bool and p.fg.dtype == bool and p.fg.any() and not p.fg.all()
    assert p.meta["max_disp"] == 16
    # fg pixels are objects, which are always nearer than the background at the same pixel
    assert p.gt[p.fg].mean() > p.gt[~p.fg].mean()


def test_synthetic_is_deterministic_per_seed():
    a, b, c = make_scene(9, **SMALL), make_scene(9, **SMALL), make_scene(10, **SMALL)
    for k in ("left", "right", "gt", "nonocc", "fg"):
        assert np.array_equal(getattr(a, k), getattr(b, k))
    assert not np.array_equal(a.left, c.left)


def test_synthetic_photometric_differences_between_views():
    clean = make_scene(2, **SMALL, photometric=False, integer_disp=True)
    noisy = make_scene(2, **SMALL, integer_disp=True)
    assert np.array_equal(clean.gt, noisy.gt)
    h, w = clean.shape
    v, u = np.mgrid[0:h, 0:w]
    m = clean.nonocc
    xr = (u - clean.gt).astype(int)
    d = np.abs(noisy.right[v[m], xr[m]].astype(float) - noisy.left[m].astype(float))
    assert d.mean() > 1.0  # gain/bias/noise/blur make the views differ


def test_synthetic_has_textureless_and_periodic_regions():
    p = make_scene(0, height=96, width=128, max_disp=24, n_objects=4, photometric=False,
                   textures={"flat": 1.0, "periodic": 1.0, "natural": 0.0})
    g = p.left.astype(float).mean(axis=-1)
    sl = p.meta["surface"]
    flat = periodic = False
    for k in range(1, sl.max() + 1):
        m = sl == k
        if m.sum() < 30:
            continue
        if np.ptp(g[m]) == 0:
            flat = True
        else:
            periodic = True
    assert flat and periodic


def test_synthetic_size_and_range_are_controllable():
    p = make_scene(1, height=40, width=200, max_disp=100)
    assert p.shape == (40, 200) and p.gt.max() <= 99
    assert p.gt.max() > 30  # objects use the range
    with pytest.raises(StereoKitError, match="max_disp"):
        make_scene(1, height=40, width=50, max_disp=60)
    with pytest.raises(StereoKitError, match="width"):
        make_scene(1, height=40, width=0)


def test_synthetic_spec():
    ds = open_dataset("synthetic:3:7")
    assert isinstance(ds, Dataset) and len(ds) == 3
    assert ds.names == ["synthetic-00007", "synthetic-00008", "synthetic-00009"]
    assert len(open_dataset("synthetic")) == 8
    assert open_dataset("synthetic:2").names == ["synthetic-00000", "synthetic-00001"]
    p = ds[-1]
    assert p.name == "synthetic-00009" and p.shape == (240, 320) and p.gt.max() <= 47
    assert ds["synthetic-00008"].name == "synthetic-00008"
    for bad in ("synthetic:x", "synthetic:0", "synthetic:2:-1", "synthetic:1:2:3"):
        with pytest.raises(StereoKitError):
            open_dataset(bad)


def test_synthetic_spec_args_parse_n_and_seed_with_defaults():
    from stereokit.datasets import synthetic_spec_args
    from stereokit.datasets.synthetic import DEFAULT_COUNT

    assert synthetic_spec_args("synthetic") == (DEFAULT_COUNT, 0)
    assert synthetic_spec_args(" Synthetic:5 ") == (5, 0) and synthetic_spec_args("synthetic:5:9") == (5, 9)
    assert synthetic_spec_args("synthetic::9") == (DEFAULT_COUNT, 9)
    for bad, message in [("synthetic:x", "N must be an integer, got 'x'"), ("synthetic:2@-1", "N must be an integer"),
                         ("synthetic:1:s", "SEED must be an integer"), ("synthetic:1:2:3", "expected synthetic"),
                         ("sample", "expected synthetic")]:
        with pytest.raises(StereoKitError, match=message):
            synthetic_spec_args(bad)


# ---------------------------------------------------------------- sample

def test_sample_dataset():
    ds = open_dataset("sample")
    assert ds.names == ["motorcycle"] and len(ds) == 1
    p = ds[0]
    assert p.name == "motorcycle" and p.shape == (500, 741) and p.left.dtype == np.uint8
    valid = np.isfinite(p.gt)
    assert 0.9 < valid.mean() < 0.95  # about 7 % unknown (inf in scikit-image's copy -> NaN)
    assert np.isnan(p.gt[~valid]).all()  # unknown is NaN, never inf
    assert 7.0 < np.nanmin(p.gt) < 7.5 and 59.5 < np.nanmax(p.gt) < 60.0
    assert p.calib is not None and p.calib.focal == pytest.approx(994.978)
    # depth of the largest disparity: f * B / (d + doffs), in mm
    z = p.depth(np.array([[np.nanmax(p.gt)]], dtype=np.float32))
    assert z[0, 0] == pytest.approx(994.978 * 193.001 / (np.nanmax(p.gt) + 31.086), rel=1e-5)


# ---------------------------------------------------------------- specs

def test_describe_specs_lists_every_spec():
    specs = dict(describe_specs())
    for usage in ("sample", "synthetic[:N[:SEED]]", "middlebury:PATH", "kitti2012:PATH", "kitti2015:PATH",
                  "eth3d:PATH", "sceneflow:PATH[:train|test]"):
        assert usage in specs and specs[usage]


@pytest.mark.parametrize("spec, msg", [
    ("", "empty"),
    ("nosuch", "unknown dataset"),
    ("sample:3", "no arguments"),
    ("middlebury:", "PATH"),
    ("middlebury:/no/such/folder", "not found"),
    ("kitti2015:/no/such/folder", "not found"),
])
def test_bad_specs(spec, msg):
    with pytest.raises(StereoKitError, match=msg):
        open_dataset(spec)


# ---------------------------------------------------------------- fixtures in each format

def _scene(seed=0, h=40, w=64, max_disp=12):
    return make_scene(seed, height=h, width=w, max_disp=max_disp, integer_disp=True, photometric=False)


def _write_u8(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.asarray(arr, dtype=np.uint8))


def _write_2014(folder, p, gt_name="disp0GT.pfm", mask=True, calib=True):
    folder.mkdir(parents=True, exist_ok=True)
    write_image(folder / "im0.png", p.left)
    write_image(folder / "im1.png", p.right)
    gt = p.gt.copy()
    gt[0, :3] = np.inf
    write_pfm(folder / gt_name, gt)
    if mask:
        _write_u8(folder / "mask0nocc.png", np.where(p.nonocc, 255, 128))
    if calib:
        (folder / "calib.txt").write_text(
            "cam0=[100.5 0 30; 0 100.5 20; 0 0 1]\ncam1=[100.5 0 33; 0 100.5 20; 0 0 1]\ndoffs=3\n"
            "baseline=50.25\nwidth=64\nheight=40\nndisp=16\n")


@pytest.mark.parametrize("seed", [0, 4])
def test_right_reference_is_an_exact_left_referenced_pair(seed):
    p = make_scene(seed, **SMALL, photometric=False, integer_disp=True)
    q = right_reference(p)
    assert q.name == p.name + "-R" and q.shape == p.shape and q.meta["view"] == "right"
    assert np.array_equal(q.left, p.right[:, ::-1]) and np.array_equal(q.right, p.left[:, ::-1])
    h, w = q.shape
    v, u = np.mgrid[0:h, 0:w]
    m = q.nonocc
    assert 0.5 < m.mean() < 1.0 and (q.gt[np.isfinite(q.gt)] >= 0).all()
    xr = (u - np.nan_to_num(q.gt)).astype(int)
    assert (xr[m] >= 0).all()
    # d = x_left - x_right holds in the new pair: every visible reference pixel is found at x - d, exactly
    assert np.array_equal(q.right[v[m], xr[m]], q.left[m])
    # applied twice it gives the original pair back
    back = right_reference(q)
    assert back.name == p.name and back.meta["view"] == "left"
    assert np.array_equal(back.left, p.left) and np.array_equal(back.right, p.right)
    assert np.array_equal(back.gt, p.gt, equal_nan=True)
    assert np.array_equal(back.meta["gt_right"], p.meta["gt_right"], equal_nan=True)
    assert "surface" not in q.meta  # per-view maps of the original view do not carry over
    assert q.meta["nonocc_source"] == "geometry"  # the generator's exact right-view mask
    assert right_reference(open_dataset("sample")[0]) is None  # no right-view GT


def test_right_reference_of_a_masked_2014_scene(tmp_path):
    # 2014 layout with a mask file and a right GT: the mirrored view's mask comes from the GT maps, not the file
    s14 = _scene(1)
    _write_2014(tmp_path / "M", s14)
    write_pfm(tmp_path / "M" / "disp1.pfm", s14.meta["gt_right"])
    m14 = open_dataset(f"middlebury:{tmp_path / 'M'}")[0]
    r14 = right_reference(m14)
    assert m14.meta["nonocc_source"] == "mask0nocc.png" and r14.meta["nonocc_source"] == "lr-check"
    assert r14.calib is None and "calib" not in r14.meta and m14.calib is not None


def test_lr_consistency_rule():
    gl = np.array([[1.0, 1.0, 2.0, 2.0, np.nan, 0.0]], np.float32)
    gr = np.array([[1.0, 2.0, 9.0, 2.0, 2.0, 0.0]], np.float32)
    # x=0: 0-1 out of view; x=1 -> dR[0]=1 ok; x=2 -> dR[0]=1 |2-1|<=1 ok; x=3 -> dR[1]=2 ok; x=4 NaN; x=5 -> dR[5]
    assert lr_consistent(gl, gr).tolist() == [[False, True, True, True, False, True]]
    gr2 = gr.copy()
    gr2[0, 1] = 5.0
    assert not lr_consistent(gl, gr2)[0, 3]


def test_middlebury_2014_scene(tmp_path):
    p = _scene(1)
    _write_2014(tmp_path / "Motor", p)
    ds = open_dataset(f"middlebury:{tmp_path / 'Motor'}")
    assert ds.names == ["Motor"] and len(ds) == 1
    q = ds[0]
    assert np.array_equal(q.left, p.left) and np.array_equal(q.right, p.right)
    assert np.isnan(q.gt[0, :3]).all() and np.array_equal(q.gt[1:], p.gt[1:])
    assert np.array_equal(q.nonocc, p.nonocc)
    assert (q.calib.focal, q.calib.baseline, q.calib.doffs) == (100.5, 50.25, 3.0)
    assert q.meta["max_disp"] == 16 and q.meta["layout"] == "im0"
    # 2014 full layout: disp0.pfm + disp1.pfm, no mask -> nonocc from the LR check of the two GT maps
    _write_2014(tmp_path / "Full", p, gt_name="disp0.pfm", mask=False)
    write_pfm(tmp_path / "Full" / "disp1.pfm", p.meta["gt_right"])
    q = open_dataset(f"middlebury:{tmp_path / 'Full'}")[0]
    assert q.meta["nonocc_source"] == "lr-check"
    assert (q.nonocc == p.nonocc)[1:].mean() > 0.97


def test_middlebury_old_layouts_and_scales(tmp_path):
    p = _scene(2, h=288, w=384, max_disp=16)
    # 2001 tsukuba as OpenCV ships it: RGB copies of the GT PNG, value / 16, no right GT
    t = tmp_path / "mb2001" / "tsukuba"
    write_image(t / "im2.png", p.left)
    write_image(t / "im6.png", p.right)
    _write_u8(t / "disp2.png", np.dstack([p.gt * 16] * 3))
    # 2001 sawtooth style: PPM/PGM, value / 8, with the right GT
    s = tmp_path / "mb2001" / "sawtooth"
    q = _scene(3)
    write_image(s / "im2.ppm", q.left)
    write_image(s / "im6.ppm", q.right)
    _write_u8(s / "disp2.pgm", q.gt * 8)
    _write_u8(s / "disp6.pgm", q.meta["gt_right"] * 8)
    # 2006 third size: view1/view5/disp1/disp5, value / 3, dmin.txt; a second "sawtooth" in another folder
    r = _scene(4, h=60, w=463, max_disp=40)
    v = tmp_path / "mb2006" / "Wood"
    write_image(v / "view1.png", r.left)
    write_image(v / "view5.png", r.right)
    _write_u8(v / "disp1.png", r.gt * 3)
    _write_u8(v / "disp5.png", r.meta["gt_right"] * 3)
    (v / "dmin.txt").write_text("200\n")
    dup = tmp_path / "mb2006" / "sawtooth"
    write_image(dup / "view1.png", r.left)
    write_image(dup / "view5.png", r.right)
    (tmp_path / "mb2006" / "notes").mkdir()

    ds = open_dataset(f"middlebury:{tmp_path}")
    assert ds.names == ["mb2001-sawtooth", "tsukuba", "Wood", "mb2006-sawtooth"]  # sorted walk, clash prefixed
    ts = ds["tsukuba"]
    assert ts.meta["gt_scale"] == 16 and ts.nonocc is None
    assert np.allclose(ts.gt[p.gt > 0], p.gt[p.gt > 0]) and np.isnan(ts.gt[p.gt == 0]).all()
    sw = ds["mb2001-sawtooth"]
    assert sw.meta["gt_scale"] == 8 and sw.meta["nonocc_source"] == "lr-check"
    gr = q.meta["gt_right"]
    assert np.allclose(sw.meta["gt_right"][gr > 0], gr[gr > 0]) and np.isnan(sw.meta["gt_right"][gr == 0]).all()
    assert "gt_right" not in ts.meta
    assert np.allclose(sw.gt[q.gt > 0], q.gt[q.gt > 0])
    assert (sw.nonocc == q.nonocc).mean() > 0.95
    wd = ds["Wood"]
    assert wd.meta["gt_scale"] == 3 and wd.meta["dmin"] == 200.0 and wd.calib is None
    assert np.allclose(wd.gt[r.gt > 0], r.gt[r.gt > 0], atol=1e-5)
    assert ds["mb2006-sawtooth"].gt is None


def test_middlebury_empty_folder(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    with pytest.raises(StereoKitError, match="no Middlebury scenes"):
        open_dataset(f"middlebury:{tmp_path}")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(StereoKitError, match="not a folder"):
        open_dataset(f"middlebury:{tmp_path / 'f.txt'}")



def _write_full_archive(folder, p, stems, ext, left, right):
    """A full Middlebury archive folder: every view `stems` holds, `left`/`right` being the scene's pair."""
    for stem in stems:
        write_image(folder / f"{stem}.{ext}", p.left if stem == left else p.right if stem == right else p.left // 2)


@pytest.mark.parametrize("ext", ["png", "ppm"])
def test_middlebury_2003_full_archive_uses_im2_im6(tmp_path, ext):
    # im0..im8 (so im0/im1 exist too) with disp2/disp6: the 2001/2003 layout must win, with its GT
    p = _scene(2)
    f = tmp_path / "cones"
    _write_full_archive(f, p, [f"im{i}" for i in range(9)], ext, "im2", "im6")
    _write_u8(f / "disp2.png", p.gt * 4)
    _write_u8(f / "disp6.png", p.meta["gt_right"] * 4)
    q = open_dataset(f"middlebury:{tmp_path}")["cones"]
    assert q.meta["layout"] == "im2" and q.gt is not None
    assert np.array_equal(q.left, p.left) and np.array_equal(q.right, p.right)
    assert np.allclose(q.gt[p.gt > 0], p.gt[p.gt > 0] * 4 / q.meta["gt_scale"])


def test_middlebury_2005_full_archive_uses_view1_view5(tmp_path):
    p = _scene(3)
    f = tmp_path / "Dolls"
    _write_full_archive(f, p, [f"view{i}" for i in range(7)], "png", "view1", "view5")
    _write_u8(f / "disp1.png", p.gt * 3)
    _write_u8(f / "disp5.png", p.meta["gt_right"] * 3)
    q = open_dataset(f"middlebury:{f}")[0]
    assert q.meta["layout"] == "view1" and q.meta["nonocc_source"] == "lr-check"
    assert np.array_equal(q.left, p.left) and np.array_equal(q.right, p.right)
    assert np.allclose(q.gt[p.gt > 0], p.gt[p.gt > 0] * 3 / q.meta["gt_scale"])


def test_middlebury_unrecognised_or_ambiguous_scene_raises(tmp_path):
    p = _scene(4)
    amb = tmp_path / "amb" / "teddy"  # im0..im8 but no GT or calib file telling 2003 from 2014
    _write_full_archive(amb, p, [f"im{i}" for i in range(9)], "png", "im2", "im6")
    with pytest.raises(StereoKitError, match=r"ambiguous.*teddy.*im0, im2"):
        open_dataset(f"middlebury:{tmp_path / 'amb'}")
    bare = tmp_path / "bare" / "Motor"  # im0/im1 alone: none of the 2014/MiddEval3 layout's own files
    _write_full_archive(bare, p, ["im0", "im1"], "png", "im0", "im1")
    with pytest.raises(StereoKitError, match=r"Motor.*disp0GT\.pfm"):
        open_dataset(f"middlebury:{tmp_path / 'bare'}")
    odd = tmp_path / "odd" / "scene1"  # left/right images under names no layout uses
    _write_full_archive(odd, p, ["left", "right"], "png", "left", "right")
    with pytest.raises(StereoKitError, match=r"scene1.*left\.png, right\.png.*no Middlebury layout"):
        open_dataset(f"middlebury:{tmp_path / 'odd'}")


@pytest.mark.parametrize("layout, drop", [("im2", "im6.png"), ("view1", "view1.png"), ("im0", "im1.png")])
def test_middlebury_incomplete_scene_raises(tmp_path, layout, drop):
    # a folder of scenes where one scene lacks an image: an error naming it, not one scene fewer
    p = _scene(5)
    _write_2014(tmp_path / "mb" / "Good", p)
    bad = tmp_path / "mb" / "Broken"
    if layout == "im0":
        _write_2014(bad, p)
    else:
        left, right = ("im2", "im6") if layout == "im2" else ("view1", "view5")
        _write_full_archive(bad, p, [left, right], "png", left, right)
        _write_u8(bad / ("disp2.png" if layout == "im2" else "disp1.png"), p.gt)
    (bad / drop).unlink()
    with pytest.raises(StereoKitError, match=rf"incomplete Middlebury scene .*Broken.*{drop.split('.')[0]}"):
        open_dataset(f"middlebury:{tmp_path}")
    (tmp_path / "mb" / "notes").mkdir()  # a folder without images is still skipped
    (bad / drop.replace(".png", ".txt")).write_text("x")
    write_image(bad / drop, p.right)
    assert open_dataset(f"middlebury:{tmp_path}").names == ["Broken", "Good"]

# scene -> (GT scale, min, max of the GT in px, from the READMEs in ../shared/data; the READMEs' minima for
# 2003-2006 are the 1/scale quantum, so only "min >= that" is checked there)
SHARED = {
    "tsukuba": (16, 5.0, 14.0), "venus": (8, 3.0, 19.75), "sawtooth": (8, 31 / 8, 143 / 8),
    "cones": (4, 0.25, 55.0), "teddy": (4, 0.25, 52.75), "Reindeer": (2, 0.5, 100.5), "Dolls": (2, 0.5, 110.5),
    "Art": (3, 24.3, 74.7), "Books": (3, 21.7, 73.7), "Cloth3": (2, 0.5, 83.0), "Wood2": (2, 0.5, 108.5),
}


def test_middlebury_shared_data(shared_data):
    ds = open_dataset(f"middlebury:{shared_data}")
    assert sorted(ds.names) == sorted(SHARED)
    for p in ds:
        scale, lo, hi = SHARED[p.name]
        assert p.meta["gt_scale"] == scale, p.name
        g = p.gt[np.isfinite(p.gt)]
        assert g.min() >= lo - 0.05 and abs(g.max() - hi) < 0.05, (p.name, g.min(), g.max())
        if p.name in ("tsukuba", "venus", "sawtooth"):
            assert abs(g.min() - lo) < 0.05
        assert p.meta["max_disp"] > g.max() and p.meta["max_disp"] % 16 == 0
        if p.name == "tsukuba":
            assert p.nonocc is None and np.isnan(p.gt[:18]).all()  # no right GT; 18-px unknown border
        else:
            assert 0.7 < p.nonocc.mean() < 0.99  # LR check of the two GT maps
        # the GT is right: warping the right view by it beats no warp by far at non-occluded pixels
        h, w = p.shape
        lg, rg = p.left_gray, p.right_gray
        v, u = np.mgrid[0:h, 0:w]
        m = np.isfinite(p.gt) if p.nonocc is None else p.nonocc
        xr = np.clip(np.rint(u - np.nan_to_num(p.gt)), 0, w - 1).astype(int)
        e_gt = np.abs(lg - rg[v, xr])[m].mean()
        e_0 = np.abs(lg - rg)[m].mean()
        assert e_gt < 0.5 * e_0, p.name


def _write_kitti(root, year, frames=("000000", "000001"), with_gt=True):
    out = {}
    left_dir, right_dir = ("colored_0", "colored_1") if year == 2012 else ("image_2", "image_3")
    occ_dir, noc_dir = ("disp_occ", "disp_noc") if year == 2012 else ("disp_occ_0", "disp_noc_0")
    for i, f in enumerate(frames):
        p = make_scene(10 + i, height=30, width=80, max_disp=20)
        out[f] = p
        for suffix in ("_10", "_11"):
            write_image(root / left_dir / f"{f}{suffix}.png", p.left)
            write_image(root / right_dir / f"{f}{suffix}.png", p.right)
        if with_gt:
            write_kitti_disparity(root / occ_dir / f"{f}_10.png", p.gt)
            noc = p.gt.copy()
            noc[~p.nonocc] = np.nan
            write_kitti_disparity(root / noc_dir / f"{f}_10.png", noc)
        if year == 2015:
            _write_u8(root / "obj_map" / f"{f}_10.png", np.where(p.fg, 3, 0))
            (root / "calib_cam_to_cam").mkdir(exist_ok=True)
            (root / "calib_cam_to_cam" / f"{f}.txt").write_text(
                "P_rect_02: 721.5 0 609.6 44.86 0 721.5 172.9 0.2164 0 0 1 0.002746\n"
                "P_rect_03: 721.5 0 609.6 -339.5 0 721.5 172.9 2.2 0 0 1 0.002729\n")
        else:
            (root / "calib").mkdir(exist_ok=True)
            (root / "calib" / f"{f}.txt").write_text(
                "P0: 707.0 0 604.0 0 0 707.0 180.5 0 0 0 1 0\nP1: 707.0 0 604.0 -379.8 0 707.0 180.5 0 0 0 1 0\n"
                "P2: 707.0 0 604.0 46.9 0 707.0 180.5 0.1 0 0 1 0.003\n"
                "P3: 707.0 0 604.0 -333.5 0 707.0 180.5 1.9 0 0 1 0.003\n")
    return out


@pytest.mark.parametrize("year", [2012, 2015])
def test_kitti_loader(tmp_path, year):
    scenes = _write_kitti(tmp_path / "training", year)
    ds = open_dataset(f"kitti{year}:{tmp_path}")  # the parent of training/ works too
    assert ds.names == ["000000_10", "000001_10"]  # only *_10 frames
    for name, p in zip(ds.names, ds):
        src = scenes[name.split("_")[0]]
        assert p.name == name and np.array_equal(p.left, src.left) and np.array_equal(p.right, src.right)
        assert np.abs(p.gt - src.gt).max() <= 0.5 / 256 + 1e-6
        assert np.array_equal(p.nonocc, src.nonocc)
        if year == 2015:
            assert np.array_equal(p.fg, src.fg)
            assert p.calib.focal == pytest.approx(721.5) and p.calib.baseline == pytest.approx(384.36 / 721.5)
        else:
            assert p.fg is None
            assert p.calib.baseline == pytest.approx(380.4 / 707.0)
    assert len(open_dataset(f"kitti{year}:{tmp_path / 'training'}")) == 2


def test_kitti_gray_2012_and_errors(tmp_path):
    root = tmp_path / "k"
    p = make_scene(1, height=20, width=50, max_disp=10)
    _write_u8(root / "image_0" / "000007_10.png", p.left_gray * 255)
    _write_u8(root / "image_1" / "000007_10.png", p.right_gray * 255)
    q = open_dataset(f"kitti2012:{root}")[0]
    assert q.left.ndim == 2 and q.gt is None and q.calib is None
    with pytest.raises(StereoKitError, match="image_2"):
        open_dataset(f"kitti2015:{root}")
    (root / "image_1" / "000007_10.png").unlink()
    with pytest.raises(StereoKitError, match="right image"):
        open_dataset(f"kitti2012:{root}")



@pytest.mark.parametrize("year, folder", [(2012, "disp_occ"), (2012, "disp_noc"), (2015, "disp_occ_0"),
                                          (2015, "obj_map")])
def test_kitti_frame_without_gt_among_frames_with_gt_raises(tmp_path, year, folder):
    _write_kitti(tmp_path, year, frames=("000000", "000001", "000002"))
    (tmp_path / folder / "000001_10.png").unlink()
    with pytest.raises(StereoKitError, match=rf"000001_10.*{folder}.*missing.*1 of 3"):
        open_dataset(f"kitti{year}:{tmp_path}")


def test_kitti_with_only_disp_noc_scores_it_as_the_gt(tmp_path):
    # a copy without disp_occ: GT is disp_noc and there is no separate non-occluded mask
    scenes = _write_kitti(tmp_path, 2012, frames=("000000",))
    for f in (tmp_path / "disp_occ").iterdir():
        f.unlink()
    (tmp_path / "disp_occ").rmdir()
    p, src = open_dataset(f"kitti2012:{tmp_path}")[0], scenes["000000"]
    assert p.nonocc is None and np.array_equal(np.isfinite(p.gt), src.nonocc & np.isfinite(src.gt))
    assert np.nanmax(np.abs(p.gt - src.gt)) <= 0.5 / 256 + 1e-6


def test_kitti_testing_folder_without_any_gt(tmp_path):
    _write_kitti(tmp_path, 2015, frames=("000000", "000001"), with_gt=False)
    ds = open_dataset(f"kitti2015:{tmp_path}")
    assert len(ds) == 2 and all(p.gt is None and p.nonocc is None for p in ds)

def test_eth3d_loader(tmp_path):
    a, b = _scene(5), _scene(6)
    train = tmp_path / "two_view_training"
    _write_2014(train / "delivery_area_1l", a)
    # second scene: GT in the separate two_view_training_gt archive folder
    _write_2014(train / "electro_1s", b, mask=False)
    (train / "electro_1s" / "disp0GT.pfm").unlink()
    gt_dir = tmp_path / "two_view_training_gt" / "electro_1s"
    gt_dir.mkdir(parents=True)
    write_pfm(gt_dir / "disp0GT.pfm", b.gt)
    _write_u8(gt_dir / "mask0nocc.png", np.where(b.nonocc, 255, 128))
    ds = open_dataset(f"eth3d:{tmp_path}")
    assert ds.names == ["delivery_area_1l", "electro_1s"]
    q = ds["electro_1s"]
    assert np.array_equal(q.gt, b.gt) and np.array_equal(q.nonocc, b.nonocc) and q.calib.focal == 100.5
    assert np.array_equal(open_dataset(f"eth3d:{train / 'delivery_area_1l'}")[0].nonocc, a.nonocc)
    with pytest.raises(StereoKitError, match="no ETH3D scenes"):
        open_dataset(f"eth3d:{tmp_path / 'two_view_training_gt'}")



def test_eth3d_incomplete_scene_raises(tmp_path):
    train = tmp_path / "two_view_training"
    _write_2014(train / "delivery_area_1l", _scene(5))
    _write_2014(train / "electro_1s", _scene(6))
    (train / "electro_1s" / "im1.png").unlink()
    with pytest.raises(StereoKitError, match=r"incomplete ETH3D scene .*electro_1s.*im1\.png"):
        open_dataset(f"eth3d:{tmp_path}")

def _write_sceneflow(root):
    """A FlyingThings3D-style tree: 2 TRAIN pairs and 1 TEST pair, both passes, left and right disparities."""
    made = {}
    for sub, frame, seed in (("TRAIN/A/0000", "0006", 1), ("TRAIN/A/0000", "0007", 2), ("TEST/B/0003", "0010", 3)):
        p = make_scene(seed, height=24, width=48, max_disp=10)
        for pass_ in ("frames_cleanpass", "frames_finalpass"):
            write_image(root / pass_ / sub / "left" / f"{frame}.png", p.left)
            write_image(root / pass_ / sub / "right" / f"{frame}.png", p.right)
        write_pfm(root / "disparity" / sub / "left" / f"{frame}.pfm", p.gt)
        write_pfm(root / "disparity" / sub / "right" / f"{frame}.pfm", p.meta["gt_right"])
        made["-".join([*sub.split("/"), frame])] = p
    return made


def test_sceneflow_loader(tmp_path):
    root = tmp_path / "FlyingThings3D"
    made = _write_sceneflow(root)
    ds = open_dataset(f"sceneflow:{root}")
    assert ds.names == ["TEST-B-0003-0010", "TRAIN-A-0000-0006", "TRAIN-A-0000-0007"]
    for name in ds.names:
        q = ds[name]
        assert np.array_equal(q.gt, made[name].gt) and np.array_equal(q.right, made[name].right)
        assert q.nonocc is None
    assert len(open_dataset(f"sceneflow:{root / 'frames_finalpass'}")) == 3
    with pytest.raises(StereoKitError, match="frames_cleanpass"):
        open_dataset(f"sceneflow:{root / 'disparity'}")
    empty = tmp_path / "empty"
    (empty / "frames_cleanpass").mkdir(parents=True)
    (empty / "disparity").mkdir()
    with pytest.raises(StereoKitError, match="no Scene Flow pairs"):
        open_dataset(f"sceneflow:{empty}")


def test_sceneflow_split_selector(tmp_path):
    root = tmp_path / "FlyingThings3D"
    made = _write_sceneflow(root)
    train = open_dataset(f"sceneflow:{root}:train")
    assert train.names == ["TRAIN-A-0000-0006", "TRAIN-A-0000-0007"]
    assert np.array_equal(train["TRAIN-A-0000-0007"].gt, made["TRAIN-A-0000-0007"].gt)
    assert open_dataset(f"sceneflow:{root}:TEST").names == ["TEST-B-0003-0010"]
    assert open_dataset(f"sceneflow:{root / 'frames_finalpass'}:test").names == ["TEST-B-0003-0010"]
    with pytest.raises(StereoKitError, match="not in the TEST split"):
        open_dataset(f"sceneflow:{root / 'frames_cleanpass' / 'TRAIN'}:test")
    monkaa = tmp_path / "Monkaa"  # no TRAIN/TEST folders: no official split to select
    p = make_scene(4, height=24, width=48, max_disp=10)
    write_image(monkaa / "frames_cleanpass" / "a_rain_of_stones_x2" / "left" / "0000.png", p.left)
    write_image(monkaa / "frames_cleanpass" / "a_rain_of_stones_x2" / "right" / "0000.png", p.right)
    write_pfm(monkaa / "disparity" / "a_rain_of_stones_x2" / "left" / "0000.pfm", p.gt)
    assert open_dataset(f"sceneflow:{monkaa}").names == ["a_rain_of_stones_x2-0000"]
    with pytest.raises(StereoKitError, match="split TRAIN needs"):
        open_dataset(f"sceneflow:{monkaa}:train")


def test_sceneflow_path_inside_the_tree(tmp_path):
    # a split or subset folder inside frames_*pass: its pairs only, named as in the whole dataset
    root = tmp_path / "FlyingThings3D"
    made = _write_sceneflow(root)
    sub = open_dataset(f"sceneflow:{root / 'frames_cleanpass' / 'TRAIN'}")
    assert sub.names == ["TRAIN-A-0000-0006", "TRAIN-A-0000-0007"]
    assert np.array_equal(sub[1].gt, made["TRAIN-A-0000-0007"].gt)
    assert np.array_equal(sub[1].left, made["TRAIN-A-0000-0007"].left)
    assert open_dataset(f"sceneflow:{root / 'frames_finalpass' / 'TRAIN' / 'A'}:train").names == sub.names
    assert open_dataset(f"sceneflow:{root / 'frames_cleanpass' / 'TEST' / 'B' / '0003'}").names == [
        "TEST-B-0003-0010"]


@pytest.mark.parametrize("drop", ["frames_cleanpass/TRAIN/A/0000/right/0007.png",
                                  "disparity/TRAIN/A/0000/left/0007.pfm"])
def test_sceneflow_incomplete_pair_raises(tmp_path, drop):
    root = tmp_path / "FlyingThings3D"
    _write_sceneflow(root)
    (root / drop).unlink()
    with pytest.raises(StereoKitError, match=rf"TRAIN-A-0000-0007.*{drop.split('/')[-1]} is missing"):
        open_dataset(f"sceneflow:{root}")
    assert open_dataset(f"sceneflow:{root}:test").names == ["TEST-B-0003-0010"]  # the other split is whole


def test_datasets_are_lazy(tmp_path, monkeypatch):
    _write_kitti(tmp_path, 2015, frames=("000000",))
    import stereokit.datasets.kitti as kitti_mod

    calls = []
    real = kitti_mod.read_image
    monkeypatch.setattr(kitti_mod, "read_image", lambda p: calls.append(p) or real(p))
    ds = open_dataset(f"kitti2015:{tmp_path}")
    assert calls == []
    ds[0]
    assert len(calls) == 3  # left, right, obj_map
    assert [p.name for p in ds[0:1]] == ["000000_10"]
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(StereoKitError, match="no pair named"):
        ds["nope"]


def test_datasets_pickle_and_membership(tmp_path):
    """Datasets go to worker processes (spawned DataLoader workers pickle them); `in` checks names only."""
    import pickle

    _write_kitti(tmp_path / "k", 2015, frames=("000003",))
    _write_2014(tmp_path / "mb" / "Scene", _scene(1))
    for spec in ("synthetic:2:4", "sample", f"kitti2015:{tmp_path / 'k'}", f"middlebury:{tmp_path / 'mb'}",
                 f"eth3d:{tmp_path / 'mb'}"):
        ds = open_dataset(spec)
        clone = pickle.loads(pickle.dumps(ds))
        assert clone.names == ds.names and clone.name == ds.name
        assert ds.names[0] in ds and "nope" not in ds
    ds = open_dataset("synthetic:3:4")
    sub = pickle.loads(pickle.dumps(ds[1:]))
    assert sub.names == ["synthetic-00005", "synthetic-00006"]
    assert np.array_equal(sub[0].gt, ds[1].gt)


@pytest.mark.parametrize("seed", [0, 3, 7])
def test_synthetic_right_view_mask_is_exact(seed):
    from stereokit.datasets.synthetic import make_scene
    from stereokit.datasets.views import right_reference

    p = make_scene(seed, 60, 96, 24, integer_disp=True, photometric=False)
    gt_r, own, own_r = p.meta["gt_right"], p.meta["surface"], p.meta["surface_right"]
    h, w = gt_r.shape
    xs = np.arange(w)[None, :] + gt_r.astype(int)  # the left pixel each right pixel shows (integer disparities)
    inside = xs <= w - 1
    same = np.zeros_like(inside)
    rows = np.repeat(np.arange(h)[:, None], w, axis=1)
    same[inside] = own[rows[inside], xs[inside]] == own_r[inside]
    np.testing.assert_array_equal(p.meta["nonocc_right"], inside & same)
    # a visible right pixel shows exactly the left pixel it is matched to
    vis = p.meta["nonocc_right"]
    np.testing.assert_array_equal(p.right[vis], p.left[rows[vis], xs[vis]])
    r = right_reference(p)
    assert r.meta["nonocc_source"] == "geometry"
    np.testing.assert_array_equal(r.nonocc, p.meta["nonocc_right"][:, ::-1])
    back = right_reference(r)
    np.testing.assert_array_equal(back.nonocc, p.nonocc)  # twice gives the original pair back


@pytest.mark.parametrize(
    "args, kwargs, words",
    [
        ((1.5,), {}, "seed"),
        ((None,), {}, "seed"),
        ((0, 16, 16, 4), {"n_objects": (5, 2)}, "n_objects"),
        ((0, 16, 16, 4), {"noise": (-0.5, -0.4)}, "noise"),
        ((0, 16, 16, 4), {"p_slanted": 2}, "p_slanted"),
        ((0, 20000, 20000, 48), {}, "pixels"),
        ((0, float("nan")), {}, "height"),
    ],
)
def test_synthetic_scene_arguments_are_checked(args, kwargs, words):
    from stereokit.datasets.synthetic import make_scene

    with pytest.raises(StereoKitError, match=words):
        make_scene(*args, **kwargs)


def test_synthetic_dataset_checks_count_and_options_up_front():
    from stereokit.datasets.synthetic import synthetic_dataset

    with pytest.raises(StereoKitError, match="at most"):
        open_dataset("synthetic:100000000")
    with pytest.raises(StereoKitError, match="bogus"):
        synthetic_dataset(2, bogus=1)
    with pytest.raises(StereoKitError, match="height"):
        synthetic_dataset(2, height=4)


# ---------------------------------------------------------------- loaders: choices the layouts document

def test_kitti2012_prefers_colour_and_takes_each_cameras_projection_matrices(tmp_path):
    # KITTI 2012 ships gray (image_0/1, cameras 0/1: P0/P1) and colour (colored_0/1, cameras 2/3: P2/P3) pairs
    root = tmp_path / "k"
    c, g = make_scene(2, height=16, width=40, max_disp=8), make_scene(3, height=16, width=40, max_disp=8)
    write_image(root / "colored_0" / "000004_10.png", c.left)
    write_image(root / "colored_1" / "000004_10.png", c.right)
    _write_u8(root / "image_0" / "000004_10.png", g.left_gray * 255)
    _write_u8(root / "image_1" / "000004_10.png", g.right_gray * 255)
    (root / "calib").mkdir()
    # baselines: P0/P1 350 / 700 = 0.5 m, P2/P3 (70 + 420) / 700 = 0.7 m
    (root / "calib" / "000004.txt").write_text(
        "P0: 700 0 600 0 0 700 180 0 0 0 1 0\nP1: 700 0 600 -350 0 700 180 0 0 0 1 0\n"
        "P2: 700 0 600 70 0 700 180 0 0 0 1 0\nP3: 700 0 600 -420 0 700 180 0 0 0 1 0\n")
    q = open_dataset(f"kitti2012:{root}")[0]
    assert q.left.ndim == 3 and np.array_equal(q.left, c.left) and np.array_equal(q.right, c.right)
    assert q.calib.focal == 700 and q.calib.baseline == pytest.approx(0.7)
    for d in ("colored_0", "colored_1"):  # gray only: cameras 0 and 1
        (root / d / "000004_10.png").unlink()
        (root / d).rmdir()
    q = open_dataset(f"kitti2012:{root}")[0]
    assert q.left.ndim == 2 and q.calib.baseline == pytest.approx(0.5)


_SHUFFLED = ("000003", "000007", "000000", "000009", "000001", "000005", "000002", "000008", "000004", "000006")


def test_kitti_frames_are_listed_in_sorted_order(tmp_path):
    img = np.zeros((4, 8, 3), np.uint8)
    for f in _SHUFFLED:  # created out of order: the listing must not follow the folder's order
        write_image(tmp_path / "image_2" / f"{f}_10.png", img)
        write_image(tmp_path / "image_3" / f"{f}_10.png", img)
    assert open_dataset(f"kitti2015:{tmp_path}").names == [f"{f}_10" for f in sorted(_SHUFFLED)]


def test_sceneflow_frames_are_listed_in_sorted_order(tmp_path):
    img, gt = np.zeros((4, 8, 3), np.uint8), np.ones((4, 8), np.float32)
    for f in _SHUFFLED:
        write_image(tmp_path / "frames_cleanpass" / "s" / "left" / f"{f}.png", img)
        write_image(tmp_path / "frames_cleanpass" / "s" / "right" / f"{f}.png", img)
        write_pfm(tmp_path / "disparity" / "s" / "left" / f"{f}.pfm", gt)
    assert open_dataset(f"sceneflow:{tmp_path}").names == [f"s-{f}" for f in sorted(_SHUFFLED)]


def test_sceneflow_jpg_images(tmp_path):
    # images may be .png, .webp or .jpg; the GT is always disparity/.../left/NAME.pfm
    p = make_scene(6, height=24, width=48, max_disp=10)
    write_image(tmp_path / "frames_cleanpass" / "seq" / "left" / "0003.jpg", p.left)
    write_image(tmp_path / "frames_cleanpass" / "seq" / "right" / "0003.jpg", p.right)
    write_pfm(tmp_path / "disparity" / "seq" / "left" / "0003.pfm", p.gt)
    ds = open_dataset(f"sceneflow:{tmp_path}")
    assert ds.names == ["seq-0003"]
    q = ds[0]
    assert q.left.shape == (24, 48, 3) and np.array_equal(q.gt, p.gt)


def test_eth3d_gt_in_the_scene_folder_wins_over_the_gt_archive(tmp_path):
    a, b = _scene(5), _scene(6)
    _write_2014(tmp_path / "two_view_training" / "forest_1s", a)  # its own disp0GT.pfm and mask0nocc.png
    gt_dir = tmp_path / "two_view_training_gt" / "forest_1s"
    gt_dir.mkdir(parents=True)
    write_pfm(gt_dir / "disp0GT.pfm", b.gt)
    _write_u8(gt_dir / "mask0nocc.png", np.where(b.nonocc, 255, 128))
    q = open_dataset(f"eth3d:{tmp_path}")[0]
    assert np.array_equal(q.gt[1:], a.gt[1:]) and np.array_equal(q.nonocc, a.nonocc)


def test_lr_consistency_rounds_the_match_to_the_nearest_pixel():
    # |dL(x) - dR(round(x - dL(x)))| <= 1: x=3 with dL 1.4 matches 1.6 -> pixel 2; with dL 1.6 matches 1.4 -> pixel 1
    gl = np.array([[0, 0, 0, 1.4, 0], [0, 0, 0, 1.6, 0]], np.float32)
    gr = np.array([[0, 5, 1.4, 0, 0], [0, 1.6, 5, 0, 0]], np.float32)
    # x=0 and x=4 match dR 0 (consistent); x=1, x=2 (dL 0) meet dR 5 or 1.4 / 1.6 (off by more than 1)
    assert lr_consistent(gl, gr).tolist() == [[True, False, False, True, True]] * 2


def test_right_reference_checks_consistency_in_the_new_reference_view():
    # one row, background at d=0, an object at d=2: left pixels 3-4, right pixels 1-2 (= 3-4 minus 2)
    d_left = np.array([[0, 0, 0, 2, 2, 0]] * 2, np.float32)
    d_right = np.array([[0, 2, 2, 0, 0, 0]] * 2, np.float32)
    img = np.zeros((2, 6), np.uint8)
    q = right_reference(StereoPair(left=img, right=img, gt=d_left, name="p", meta={"gt_right": d_right}))
    # mirrored: the new reference GT is [0, 0, 0, 2, 2, 0] again and the new target GT [0, 2, 2, 0, 0, 0]; its
    # background pixels 1-2 land on the object in the new target view: occluded; everything else is seen
    assert q.gt.tolist() == [[0, 0, 0, 2, 2, 0]] * 2
    assert q.meta["nonocc_source"] == "lr-check"
    assert q.nonocc.tolist() == [[True, False, False, True, True, True]] * 2


def test_synthetic_dataset_scene_i_is_the_scene_of_seed_plus_i_with_the_options():
    from stereokit.datasets.synthetic import synthetic_dataset

    ds = synthetic_dataset(2, 5, height=32, width=48, max_disp=8)
    q, ref = ds[1], make_scene(6, height=32, width=48, max_disp=8)
    assert q.name == "synthetic-00006" and q.shape == (32, 48) and q.gt.max() <= 7
    assert np.array_equal(q.gt, ref.gt) and np.array_equal(q.left, ref.left)
    assert np.array_equal(open_dataset("synthetic:2:5")[1].gt, make_scene(6).gt)  # the spec's seeds likewise


def test_kitti2015_obj_map_every_object_index_is_foreground(tmp_path):
    # obj_map: 0 = background, 1, 2, ... = the index of the object a pixel belongs to (object 1 included)
    img = np.zeros((2, 4, 3), np.uint8)
    write_image(tmp_path / "image_2" / "000000_10.png", img)
    write_image(tmp_path / "image_3" / "000000_10.png", img)
    _write_u8(tmp_path / "obj_map" / "000000_10.png", [[0, 1, 2, 0], [5, 0, 0, 1]])
    q = open_dataset(f"kitti2015:{tmp_path}")[0]
    assert q.fg.tolist() == [[False, True, True, False], [True, False, False, True]]


# ------------------------------------------------------------------ damaged or inconsistent files (named, not used)

def _one_2014(tmp_path, calib_text=None):
    scene = tmp_path / "mb" / "Piano"
    _write_2014(scene, _scene(5))
    if calib_text is not None:
        (scene / "calib.txt").write_text(calib_text)
    return scene


_CALIB = "cam0=[100.5 0 30; 0 100.5 20; 0 0 1]\ncam1=[100.5 0 33; 0 100.5 20; 0 0 1]\nbaseline=50.25\n"


@pytest.mark.parametrize("extra, words", [
    ("ndisp=inf\n", "ndisp inf is not a positive integer"),
    ("ndisp=0\n", "ndisp 0 is not a positive integer"),
    ("ndisp=16.9\n", "ndisp 16.9 is not a positive integer"),
    ("ndisp=16\nndisp=32\n", "sets 'ndisp' twice"),
    ("doffs=abc\n", "doffs 'abc' is not a number"),
])
def test_middlebury_calib_values_that_cannot_be_meant_raise_naming_the_file(tmp_path, extra, words):
    scene = _one_2014(tmp_path, _CALIB + extra)
    with pytest.raises(StereoKitError, match=rf"calib\.txt.*{words}|{words}.*calib\.txt"):
        open_dataset(f"middlebury:{scene}")[0]


@pytest.mark.parametrize("baseline", ["0", "-50", "nan", "inf"])
def test_middlebury_calib_baseline_must_be_positive_and_finite(tmp_path, baseline):
    scene = _one_2014(tmp_path, _CALIB.replace("baseline=50.25", f"baseline={baseline}"))
    with pytest.raises(StereoKitError, match=r"calib\.txt: calibration baseline must be a finite positive number"):
        open_dataset(f"middlebury:{scene}")[0]


def test_middlebury_calib_with_a_utf8_byte_order_mark_is_read(tmp_path):
    scene = _one_2014(tmp_path)
    (scene / "calib.txt").write_bytes(b"\xef\xbb\xbf" + (scene / "calib.txt").read_bytes())
    assert open_dataset(f"middlebury:{scene}")[0].calib.focal == 100.5


def _one_2006(tmp_path, h=30, w=90):
    p = _scene(6, h=h, w=w, max_disp=12)
    v = tmp_path / "mb2006" / "Wood"
    write_image(v / "view1.png", p.left)
    write_image(v / "view5.png", p.right)
    _write_u8(v / "disp1.png", p.gt * 2)
    _write_u8(v / "disp5.png", p.meta["gt_right"] * 2)
    return v, p


def test_middlebury_dmin_must_hold_one_number(tmp_path):
    v, _ = _one_2006(tmp_path)
    (v / "dmin.txt").write_text("229\n")
    assert open_dataset(f"middlebury:{v}")[0].meta["dmin"] == 229.0
    for text in ("garbage\n", "", "12 abc 99\n", "nan\n"):
        (v / "dmin.txt").write_text(text)
        with pytest.raises(StereoKitError, match=r"dmin\.txt does not hold one finite number"):
            open_dataset(f"middlebury:{v}")[0]


def test_middlebury_right_view_gt_of_another_size_raises(tmp_path):
    v, p = _one_2006(tmp_path)
    _write_u8(v / "disp5.png", np.pad(p.meta["gt_right"] * 2, ((0, 0), (0, 5))))
    with pytest.raises(StereoKitError, match=r"right-view ground truth .*disp5\.png is 95x30, images are 90x30"):
        open_dataset(f"middlebury:{v}")[0]


def test_middlebury_16_bit_or_colour_gt_is_refused_not_rescaled(tmp_path):
    v, p = _one_2006(tmp_path)
    cv2.imwrite(str(v / "disp1.png"), (p.gt * 2 * 256).astype(np.uint16))  # 8-bit scale applied to 16-bit data
    with pytest.raises(StereoKitError, match=r"disp1\.png is uint16; expected an 8-bit gray image"):
        open_dataset(f"middlebury:{v}")[0]
    colour = np.dstack([p.gt * 2, p.gt * 2, np.zeros_like(p.gt)])
    _write_u8(v / "disp1.png", colour)
    with pytest.raises(StereoKitError, match=r"disp1\.png is a colour image"):
        open_dataset(f"middlebury:{v}")[0]


@pytest.mark.parametrize("values, expected", [((0, 1), "booleans"), ((0, 255), "255 only"), ((3, 200), None)])
def test_middlebury_mask_values_are_validated(tmp_path, values, expected):
    scene = _one_2014(tmp_path)
    p = _scene(5)
    _write_u8(scene / "mask0nocc.png", np.where(p.nonocc, values[1], values[0]))
    if expected is None:
        with pytest.raises(StereoKitError, match=r"mask0nocc\.png.*values 3, 200"):
            open_dataset(f"middlebury:{scene}")[0]
    else:  # a 0/1 mask used to read as all occluded (only 255 counted)
        np.testing.assert_array_equal(open_dataset(f"middlebury:{scene}")[0].nonocc, p.nonocc)


def test_loader_errors_from_the_pair_checks_name_the_scene(tmp_path):
    scene = _one_2014(tmp_path)
    write_image(scene / "im1.png", _scene(5, w=60).right)
    with pytest.raises(StereoKitError, match=rf"Middlebury scene {scene}: left and right images differ in size"):
        open_dataset(f"middlebury:{scene}")[0]
    root = tmp_path / "kitti"
    _write_kitti(root, 2015, frames=("000000",))
    write_kitti_disparity(root / "disp_occ_0" / "000000_10.png", np.ones((30, 70), np.float32))
    with pytest.raises(StereoKitError, match=r"KITTI .*frame 000000_10 \(.*image_2/000000_10\.png.*\): .*shape"):
        open_dataset(f"kitti2015:{root}")[0]


@pytest.mark.parametrize("text, words", [
    ("garbage\n", "has no P_rect_02 or P_rect_03 line"),
    ("P_rect_02: 1 2 3\nP_rect_03: 1 2 3\n", "P_rect_02 is not 12 numbers"),
    ("P_rect_02: 721.5 0 609.6 44.86 0 721.5 172.9 0.2164 0 0 1 0.002746\n" * 2, "has P_rect_02 twice"),
    ("P_rect_02: 721.5 0 609.6 44.86 0 721.5 172.9 0.2164 0 0 1 0.002746\n"
     "P_rect_03: 721.5 0 609.6 44.86 0 721.5 172.9 0.2164 0 0 1 0.002746\n", "baseline must be a finite positive"),
    ("P_rect_02: nan 0 609.6 44.86 0 721.5 172.9 0.2164 0 0 1 0.002746\n"
     "P_rect_03: 721.5 0 609.6 -339.5 0 721.5 172.9 2.2 0 0 1 0.002729\n", "focal must be a finite positive"),
])
def test_kitti_calibration_file_that_cannot_be_used_raises_naming_it(tmp_path, text, words):
    root = tmp_path / "kitti"
    _write_kitti(root, 2015, frames=("000000",))
    (root / "calib_cam_to_cam" / "000000.txt").write_text(text)
    with pytest.raises(StereoKitError, match=rf"calib_cam_to_cam/000000\.txt.*{words}"):
        open_dataset(f"kitti2015:{root}")[0]


def test_sceneflow_unreadable_folder_raises_instead_of_shrinking_the_set(tmp_path, monkeypatch):
    import stereokit.datasets.sceneflow as sf

    _write_sceneflow(tmp_path)
    real_scandir = os.scandir

    def scandir(path="."):
        if str(path).endswith("TEST"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(sf.os, "scandir", scandir)
    with pytest.raises(StereoKitError, match=r"cannot list Scene Flow folder .*TEST: Permission denied"):
        open_dataset(f"sceneflow:{tmp_path}")


def test_a_linked_folder_reaching_a_scene_twice_counts_it_once(tmp_path):
    root = tmp_path / "mb"
    _write_2014(root / "Piano", _scene(5))
    (root / "again").symlink_to(root, target_is_directory=True)  # root/again/Piano is root/Piano
    (tmp_path / "elsewhere").mkdir()
    _write_2014(tmp_path / "elsewhere" / "Motor", _scene(6))
    (root / "Motor").symlink_to(tmp_path / "elsewhere" / "Motor", target_is_directory=True)  # a linked scene counts
    assert open_dataset(f"middlebury:{root}").names == ["Motor", "Piano"]
