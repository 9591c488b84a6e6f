"""The HTML report: built from DIR alone, every image present, leaderboard marks, escaping, rebuild."""

from __future__ import annotations

import io
import json
import re
import shutil

import numpy as np
import pytest

from eval.colormap import colorize_disparity, error_image
from eval.compare import load_results, pred_path, run_compare
from eval.report import build_report
from stereokit.io import read_disparity, read_image
from stereokit.registry import matchers


def good(pair, max_disp, **params):
    if pair.gt is None:
        return np.zeros(pair.shape, np.float32)
    return np.nan_to_num(pair.gt, nan=0.0) + np.float32(0.25)


def worse(pair, max_disp, **params):
    if pair.gt is None:
        return np.zeros(pair.shape, np.float32)
    d = np.nan_to_num(pair.gt, nan=0.0) + np.float32(4.0)
    d[:, : pair.width // 2] = np.nan  # half invalid: lower density
    return d


def broken(pair, max_disp, **params):
    raise ValueError("no weights for <broken>")


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    for name, f in (("t-good", good), ("t-worse", worse), ("t-broken", broken)):
        matchers.register(name, f)
    try:
        run_compare(["synthetic:2"], ["t-good", "t-worse", "t-broken"], out=out, progress=False, stream=io.StringIO())
    finally:
        for name in ("t-good", "t-worse", "t-broken"):
            matchers.unregister(name)
    return out


def referenced(page: str) -> list[str]:
    return [r for r in re.findall(r'(?:src|href)="([^"]+)"', page) if not r.startswith("#")]


def board_rows(page: str, kind="kitti", region="all") -> dict[str, str]:
    """method -> the <tr> of the first leaderboard with that aggregate and region."""
    m = re.search(rf'<table class="board" data-board="0" data-kind="{kind}" data-region="{region}">(.*?)</table>', page, re.S)
    assert m, "leaderboard missing"
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", m.group(1), re.S)
    out = {}
    for r in rows[1:]:
        name = re.search(r'<td class="name">(.*?)</td>', r).group(1)
        out[name] = r
    return out


def test_every_referenced_file_exists_and_nothing_external(report_dir):
    page = (report_dir / "index.html").read_text()
    refs = referenced(page)
    assert len([r for r in refs if r.endswith(".png")]) >= 3 + 2 * (2 + 2 * 3)  # plots + per-pair images
    for ref in refs:
        assert not re.match(r"[a-z]+:", ref)
        assert (report_dir / ref).is_file(), ref
    assert "function sortTable" in page and "<style>" in page  # inline JS and CSS
    assert "<script src" not in page and "<link " not in page


def test_leaderboard_best_marks_and_partial_methods(report_dir):
    page = (report_dir / "index.html").read_text()
    rows = board_rows(page)
    assert list(rows) == ["t-good", "t-worse", "t-broken"]  # by D1-all, failed last
    cells = lambda name: re.findall(r"<td([^>]*)>", rows[name])
    # D1-all (2nd cell): good is best; worse (4 px off, 50 % invalid) is not
    assert 'class="best"' in cells("t-good")[1] and 'class="best"' not in cells("t-worse")[1]
    assert 'class="best"' not in rows["t-broken"] and "0/2" in rows["t-broken"]
    # sortable numbers carried in data-v
    d1_good = float(re.search(r'data-v="([^"]*)"', rows["t-good"]).group(1))
    res = load_results(report_dir)
    key = res["settings"]["datasets"][0]["key"]
    assert d1_good == res["methods"]["t-good"]["datasets"][key]["aggregate"]["kitti"]["all"]["D1-all"]
    # the other aggregate and the noc region are there too, for the radio buttons
    assert board_rows(page, "middlebury", "noc")


def test_failures_grouped_and_escaped(report_dir):
    page = (report_dir / "index.html").read_text()
    assert page.count("no weights for &lt;broken&gt;") >= 1
    assert "<broken>" not in page
    failures = page[page.index('id="failures"'):]
    assert failures.count("ValueError: no weights for &lt;broken&gt;</span>") == 1  # one row for both pairs
    assert "synthetic:2: synthetic-00000, synthetic-00001" in failures


def test_images_are_the_colour_maps(report_dir):
    res = load_results(report_dir)
    key = res["settings"]["datasets"][0]["key"]
    pair = res["settings"]["datasets"][0]["pairs"][0]
    gt = read_disparity(report_dir / "ref" / key / pair / "gt.pfm")
    pred = read_disparity(pred_path(report_dir, "t-worse", key, pair))
    nonocc = read_image(report_dir / "ref" / key / pair / "nonocc.png") > 127
    gt_png = read_image(report_dir / "img" / key / pair / "gt.png")
    assert (gt_png == colorize_disparity(gt, float(np.nanmax(gt)))).all()
    err_png = read_image(report_dir / "img" / key / pair / "t-worse-err.png")
    assert (err_png == error_image(pred, gt, nonocc)).all()


def test_report_rebuilds_from_the_folder_alone(report_dir, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(report_dir, moved)
    shutil.rmtree(moved / "img")
    shutil.rmtree(moved / "plots")
    (moved / "index.html").unlink()
    build_report(moved)
    page = (moved / "index.html").read_text()
    for ref in referenced(page):
        assert (moved / ref).is_file(), ref
    assert page == (report_dir / "index.html").read_text()


def test_settings_recorded(report_dir):
    page = (report_dir / "index.html").read_text()
    res = load_results(report_dir)
    st = res["settings"]
    assert st["versions"]["numpy"] == np.__version__ and st["seed"] == 0
    assert st["machine"]["cpu_count"] >= 1 and st["datasets"][0]["max_disp"] % 16 == 0
    for text in ("version numpy", "version python", "machine cpu_count", "max_disp", "Warm-up"):
        assert text in page


def test_dataset_names_escaped(report_dir, tmp_path):
    res = json.loads((report_dir / "results.json").read_text())
    evil = '<script>alert("x")</script>'
    res["settings"]["datasets"][0]["spec"] = evil
    res["failures"][0]["pair"] = evil
    moved = tmp_path / "evil"
    shutil.copytree(report_dir, moved)
    build_report(moved, res)
    page = (moved / "index.html").read_text()
    assert evil not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
