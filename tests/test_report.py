"""The HTML report: built from DIR alone, every image present, leaderboard marks, escaping, rebuild."""

from __future__ import annotations

import io
import json
import os
import re
import shutil

import numpy as np
import pytest

from eval.colormap import bad_pixel_map, colorize_disparity, error_image
from eval.compare import load_results, pred_path, run_compare
from eval.report import build_html, build_report
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


def _copy(report_dir, dest):
    shutil.copytree(report_dir, dest)
    return dest


def _pair_block(page: str, pair: str) -> str:
    m = re.search(rf'<div class="pair"><h4>{re.escape(pair)}</h4>(.*?)</div></div>\n', page, re.S)
    assert m, pair
    return m.group(1)


def _method_cells(block: str, method: str) -> str:
    """The cells of `method` in one pair's grid: from its name to the next method's name."""
    start = block.index(f'<div class="figs"><b>{method}</b>')
    nxt = block.find('<div class="figs"><b>', start + 1)
    return block[start: nxt if nxt >= 0 else len(block)]


def _without_max_disp_source(r):
    del r["settings"]["datasets"][0]["max_disp_source"]
    return r


@pytest.mark.parametrize("damage, message", [
    (lambda r: {"methods": {}, "settings": {}}, "results.json: format is missing"),
    (_without_max_disp_source, "settings.datasets[0].max_disp_source is missing"),
    (lambda r: {**r, "settings": {**r["settings"], "datasets": None}}, "settings.datasets is null"),
    (lambda r: {**r, "settings": {**r["settings"], "datasets": []}}, "nothing to report"),
    (lambda r: {**r, "format": 2}, "format is 2"),
])
def test_cli_report_on_a_bad_results_file_is_one_line_and_writes_nothing(report_dir, tmp_path, capsys, damage, message):
    from stereokit.cli import main

    moved = _copy(report_dir, tmp_path / "bad")
    r = json.loads((moved / "results.json").read_text())
    (moved / "results.json").write_text(json.dumps(damage(r)))
    before = (moved / "index.html").read_bytes()
    capsys.readouterr()
    assert main(["report", str(moved)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("stereokit: error: ") and message in err and str(moved / "results.json") in err
    assert (moved / "index.html").read_bytes() == before  # the old page is left as it was
    assert not [n for n in os.listdir(moved) if n.startswith(".") or n.endswith(".tmp")]


def test_missing_and_unreadable_predictions_are_shown_and_counted(report_dir, tmp_path):
    moved = _copy(report_dir, tmp_path / "gone")
    shutil.rmtree(moved / "img")
    res = load_results(moved)
    key = res["settings"]["datasets"][0]["key"]
    first, second = res["settings"]["datasets"][0]["pairs"]
    pred_path(moved, "t-good", key, first).unlink()
    pred_path(moved, "t-worse", key, second).write_bytes(b"not a PFM file")
    build_report(moved)
    page = (moved / "index.html").read_text()
    gone = _method_cells(_pair_block(page, first), "t-good")
    assert gone.count(">prediction missing</div>") == 3 and "<img" not in gone
    bad = _method_cells(_pair_block(page, second), "t-worse")
    assert bad.count(">prediction unreadable</div>") == 3 and "<img" not in bad
    # the others still have their images
    assert _method_cells(_pair_block(page, second), "t-good").count("<img") == 3
    assert _method_cells(_pair_block(page, first), "t-worse").count("<img") == 3
    # one note for the page, with the count
    assert page.count('id="missing-predictions"') == 1
    note = re.search(r'<p class="err" id="missing-predictions">(.*?)</p>', page).group(1)
    assert note.startswith("2 prediction file(s) missing or unreadable")
    assert f"t-good on synthetic:2/{first}" in note and f"t-worse on synthetic:2/{second}" in note
    for ref in referenced(page):
        assert (moved / ref).is_file(), ref
    # nothing missing: no note
    assert "missing-predictions" not in (report_dir / "index.html").read_text()


def test_every_value_from_results_json_is_escaped(report_dir, tmp_path):
    evil = '<x-evil a="1">$x^{$&'
    res = json.loads((report_dir / "results.json").read_text())
    st = res["settings"]
    ds = st["datasets"][0]
    key = ds["key"]
    ds.update(spec=evil + "spec", max_disp_source=evil + "source", name=evil)
    st.update(command=evil + "command", finished=evil + "finished", seed=evil + "seed", executor=evil + "executor")
    st["versions"]["numpy"] = evil + "version"
    st["versions"][evil + "pkg"] = None
    st["machine"]["cpu"] = evil + "machine"
    st["params"]["t-good"] = {evil + "param": evil + "value"}
    # a method named evilly: its files get a safe name, so its predictions show as missing (also escaped)
    name = evil + "method"
    res["methods"][name] = res["methods"].pop("t-good")
    st["methods"] = [name if m == "t-good" else m for m in st["methods"]]
    res["methods"][name]["warmup"]["error"] = evil + "warmup"
    res["methods"]["t-broken"]["datasets"][key]["failures"][ds["pairs"][0]] = evil + "pairfail"
    for f in res["failures"]:
        f.update(method=evil + "fmethod", dataset=evil + "fds", message=evil + "fmsg", traceback=evil + "tb")
    moved = _copy(report_dir, tmp_path / "evil")
    (moved / "results.json").write_text(json.dumps(res))
    build_report(moved)  # from the file: passes the check, and '$' in plot labels is drawn, not parsed
    page = (moved / "index.html").read_text()
    assert "<x-evil" not in page
    safe = '&lt;x-evil a=&quot;1&quot;&gt;$x^{$&amp;'
    for suffix in ("spec", "source", "command", "finished", "seed", "executor", "version", "pkg", "machine", "param",
                   "value", "method", "warmup", "pairfail", "fmethod", "fds", "fmsg", "tb"):
        assert safe + suffix in page, suffix
    assert safe + "method</b>" in page and "prediction missing" in page


def test_max_disp_is_escaped_even_unchecked(report_dir):
    """load_results refuses a non-integer max_disp (test_compare); build_html escapes it all the same."""
    res = json.loads((report_dir / "results.json").read_text())
    res["settings"]["datasets"][0]["max_disp"] = "<b>64</b>"
    page = build_html(report_dir, res, [])
    assert "<b>64</b>" not in page
    assert page.count("max_disp &lt;b&gt;64&lt;/b&gt;") == 2  # leaderboard heading and settings table


# --- leaderboard order and marks, image links, several datasets (pinned by mutation testing) --------------------------


def board_cells(page: str, kind="kitti", region="all") -> dict[str, dict[str, str]]:
    """method -> {column header: the cell's opening tag and content} of the first leaderboard."""
    m = re.search(rf'<table class="board" data-board="0" data-kind="{kind}" data-region="{region}">(.*?)</table>', page, re.S)
    heads = re.findall(r"<th[^>]*>(.*?)</th>", m.group(1))
    return {name: dict(zip(heads, re.findall(r"<td[^>]*>.*?</td>", row))) for name, row in board_rows(page, kind, region).items()}


def test_a_partial_method_ranks_after_complete_ones_and_is_never_best(report_dir, tmp_path):
    res = load_results(report_dir)
    key = res["settings"]["datasets"][0]["key"]
    # t-good (the lowest D1-all) as if one of its two pairs had failed: its aggregate covers half the data
    res["methods"]["t-good"]["datasets"][key]["n_ok"] = 1
    page = build_html(_copy(report_dir, tmp_path / "partial"), res, [])
    rows = board_rows(page)
    assert list(rows) == ["t-worse", "t-good", "t-broken"]
    assert '<tr class="partial">' in page and "1/2 &#9888;" in rows["t-good"]
    cells = board_cells(page)
    assert 'class="best"' not in rows["t-good"]
    for col in ("D1-all %", "EPE px", "density %"):  # the only complete method is best everywhere
        assert 'class="best"' in cells["t-worse"][col], col


def test_best_marks_follow_each_columns_direction(report_dir):
    page = (report_dir / "index.html").read_text()
    cells = board_cells(page)
    res = load_results(report_dir)
    key = res["settings"]["datasets"][0]["key"]
    agg = lambda m, k: res["methods"][m]["datasets"][key]["aggregate"]["kitti"]["all"][k]
    assert agg("t-good", "density") == 100.0 and agg("t-worse", "density") == pytest.approx(50.0, abs=1)
    # density: higher is better; errors: lower is better
    assert 'class="best"' in cells["t-good"]["density %"] and 'class="best"' not in cells["t-worse"]["density %"]
    assert 'class="best"' in cells["t-good"]["EPE px"] and 'class="best"' not in cells["t-worse"]["EPE px"]


@pytest.mark.parametrize("kind, region", [("kitti", "all"), ("kitti", "noc"), ("middlebury", "all"), ("middlebury", "noc")])
def test_each_leaderboard_shows_its_own_aggregate_and_region(report_dir, kind, region):
    page = (report_dir / "index.html").read_text()
    res = load_results(report_dir)
    key = res["settings"]["datasets"][0]["key"]
    doc = res["methods"]["t-worse"]["datasets"][key]
    cells = board_cells(page, kind, region)["t-worse"]
    for col, metric in (("D1-all %", "D1-all"), ("EPE px", "EPE"), ("density %", "density")):
        v = float(re.search(r'data-v="([^"]*)"', cells[col]).group(1))
        assert v == doc["aggregate"][kind][region][metric], (col, kind, region)
    # s / pair is the mean time per pair, not the total
    secs = float(re.search(r'data-v="([^"]*)"', cells["s / pair"]).group(1))
    assert secs == pytest.approx(doc["seconds"]["mean"]) and secs != pytest.approx(doc["seconds"]["total"])
    # the four tables differ, so each checks something
    figs = {(k, r): doc["aggregate"][k][r]["EPE"] for k in ("kitti", "middlebury") for r in ("all", "noc")}
    assert len(set(figs.values())) == 4


def test_each_method_links_its_own_disparity_error_and_bad_pixel_images(report_dir, tmp_path):
    moved = _copy(report_dir, tmp_path / "off")
    res = load_results(moved)
    key = res["settings"]["datasets"][0]["key"]
    pair = res["settings"]["datasets"][0]["pairs"][0]
    gt = read_disparity(moved / "ref" / key / pair / "gt.pfm")
    # t-good's prediction replaced by one 2.5 px off everywhere: bad at 2 px, not a D1 outlier, not bad at 3 px
    pred = np.where(np.isfinite(gt), gt, 0.0).astype(np.float32) + np.float32(2.5)
    from stereokit.io import write_disparity

    write_disparity(pred_path(moved, "t-good", key, pair), pred)
    shutil.rmtree(moved / "img")
    build_report(moved)
    page = (moved / "index.html").read_text()
    for m in ("t-good", "t-worse"):
        srcs = re.findall(r'<img src="([^"]+)"', _method_cells(_pair_block(page, pair), m))
        assert srcs == [f"img/{key}/{pair}/{m}-{k}.png" for k in ("disp", "err", "bad")], m
    left = read_image(moved / "ref" / key / pair / "left.png")
    nonocc = read_image(moved / "ref" / key / pair / "nonocc.png") > 127
    max_gt = float(np.nanmax(gt))
    img = lambda m, k: read_image(moved / "img" / key / pair / f"{m}-{k}.png")
    # disparities coloured on the ground truth's scale (0 .. its maximum), the same for every method
    assert (img("t-good", "disp") == colorize_disparity(pred, max_gt)).all()
    assert not (img("t-good", "disp") == colorize_disparity(pred, float(np.nanmax(pred)))).all()
    bad2 = bad_pixel_map(pred, gt, left, nonocc, threshold=2.0)
    assert (img("t-good", "bad") == bad2).all()
    assert not (bad2 == bad_pixel_map(pred, gt, left, nonocc, threshold=3.0)).all()


def test_every_dataset_gets_its_leaderboard_and_its_pairs(tmp_path):
    matchers.register("t-worse", worse)
    try:
        res = run_compare(["synthetic:1", "synthetic:1:5"], ["t-worse"], out=tmp_path, progress=False,
                          stream=io.StringIO(), gallery=1)
    finally:
        matchers.unregister("t-worse")
    page = (tmp_path / "index.html").read_text()
    keys = [d["key"] for d in res["settings"]["datasets"]]
    assert keys == ["synthetic-1", "synthetic-1-5"]
    d1 = [res["methods"]["t-worse"]["datasets"][k]["aggregate"]["kitti"]["all"]["D1-all"] for k in keys]
    assert abs(d1[0] - d1[1]) > 0.1  # the two boards differ, so each is checked
    for idx, key in enumerate(keys):
        board = re.search(rf'<table class="board" data-board="{idx}" data-kind="kitti" data-region="all">(.*?)</table>',
                          page, re.S).group(1)
        assert float(re.search(r'<td[^>]*data-v="([^"]*)"', board).group(1)) == d1[idx]  # the D1-all cell
        [pair] = res["settings"]["datasets"][idx]["pairs"]
        assert f'src="img/{key}/{pair}/t-worse-disp.png"' in page
