"""`stereokit compare`: results that match the evaluator, the cache, failures, and the parallel executors.

The matchers here are tiny and registered in-process (or named as `test_compare:FUNCTION`, importable by worker
processes), so the tests depend on no other matcher.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from eval.compare import load_results, max_disp_from_gt, pred_path, run_compare
from eval.metrics import evaluate_dataset, evaluate_pair
from stereokit.datasets import open_dataset
from stereokit.io import read_disparity
from stereokit.registry import matchers

DATASET = "synthetic:2"
CALLS: Counter = Counter()


def noisy_matcher(pair, max_disp, **params):
    """Ground truth plus seeded noise, with a few invalid pixels (importable by worker processes)."""
    if pair.gt is None:  # the warm-up crop
        return np.zeros(pair.shape, np.float32)
    CALLS["noisy"] += 1
    rng = np.random.default_rng(sum(map(ord, pair.name)))
    d = np.nan_to_num(pair.gt, nan=0.0) + rng.normal(0, 1.5, pair.shape).astype(np.float32)
    d[::7, ::5] = np.nan
    return d


def flaky_matcher(pair, max_disp, **params):
    """Fails on the second synthetic pair, otherwise ground truth shifted by 2.5 px."""
    if pair.gt is None:
        return np.zeros(pair.shape, np.float32)
    CALLS["flaky"] += 1
    if pair.name.endswith("1"):
        raise RuntimeError("flaky matcher gave up on <this> & that pair")
    return np.nan_to_num(pair.gt, nan=0.0) + 2.5


@pytest.fixture(autouse=True)
def test_matchers():
    matchers.register("test-noisy", noisy_matcher)
    matchers.register("test-flaky", flaky_matcher)
    CALLS.clear()
    yield
    matchers.unregister("test-noisy")
    matchers.unregister("test-flaky")


def compare(out: Path, **kw) -> dict:
    kw.setdefault("methods", ["test-noisy", "test-flaky"])
    kw.setdefault("gallery", 1)
    return run_compare(datasets=[DATASET], out=out, progress=False, stream=io.StringIO(), **kw)


def pair_figures(results: dict) -> dict:
    """{(method, pair): pair dict without the timings} for comparing runs."""
    out = {}
    for m, mdoc in results["methods"].items():
        for doc in mdoc["datasets"].values():
            for p, pdoc in doc["pairs"].items():
                out[(m, p)] = {k: pdoc[k] for k in ("all", "noc") if k in pdoc}
    return out


def assert_close(a, b, path=""):
    """Nested dicts equal, floats to 1e-9 relative."""
    if isinstance(b, dict):
        assert isinstance(a, dict) and set(a) == set(b), path
        for k in b:
            assert_close(a[k], b[k], f"{path}/{k}")
    elif isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), path
    else:
        assert a == b, path


@pytest.fixture(scope="module")
def dataset():
    return open_dataset(DATASET)


EVIL = '<img src=x onerror="alert(1)">&co'


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One comparison (noisy, flaky and an evilly named matcher) shared by the read-only tests."""
    out = tmp_path_factory.mktemp("shared")
    matchers.register("test-noisy", noisy_matcher)
    matchers.register("test-flaky", flaky_matcher)
    matchers.register(EVIL, noisy_matcher)
    try:
        results = compare(out, methods=["test-noisy", "test-flaky", EVIL])
    finally:
        for name in ("test-noisy", "test-flaky", EVIL):
            matchers.unregister(name)
    return out, results


def test_results_match_the_evaluator(shared, dataset):
    tmp_path, results = shared
    loaded = load_results(tmp_path)
    assert json.loads(json.dumps(results, default=str))["methods"] == loaded["methods"]

    key = loaded["settings"]["datasets"][0]["key"]
    doc = loaded["methods"]["test-noisy"]["datasets"][key]
    assert doc["n_ok"] == doc["n_pairs"] == 2 and doc["failures"] == {}
    own = {}
    for pair in dataset:
        pred = read_disparity(pred_path(tmp_path, "test-noisy", key, pair.name))
        assert np.isnan(pred[0, 0])  # NaN kept through the PFM cache
        own[pair.name] = evaluate_pair(pred, pair.gt, pair.nonocc, pair.fg)
        pdoc = doc["pairs"][pair.name]
        for region in ("all", "noc"):
            for k, v in own[pair.name].to_dict()[region].items():
                assert pdoc[region][k] == pytest.approx(v, rel=1e-9, abs=1e-12), (pair.name, region, k)
        assert pdoc["seconds"] > 0 and pdoc["peak_mb"] >= 0 and pdoc["cached"] is False
    agg = evaluate_dataset(DATASET, own).to_dict()["aggregate"]
    assert_close(doc["aggregate"], agg)
    # the noise (sigma 1.5) makes a few % of D1 outliers, not zero and not most
    assert 0 < doc["aggregate"]["kitti"]["all"]["bad-2.0"] < 50

    # max_disp from the ground truth: the next multiple of 16 above its maximum
    max_gt = max(float(np.nanmax(p.gt)) for p in dataset)
    assert loaded["settings"]["datasets"][0]["max_disp"] == max_disp_from_gt(max_gt, dataset[0].width)
    assert loaded["settings"]["datasets"][0]["max_disp"] % 16 == 0
    assert loaded["methods"]["test-noisy"]["warmup"]["seconds"] >= 0


def test_failure_is_recorded_and_run_goes_on(shared):
    tmp_path, results = shared
    [fail] = results["failures"]
    assert fail["method"] == "test-flaky" and fail["pair"].endswith("1")
    assert "flaky matcher gave up" in fail["message"] and "RuntimeError" in fail["message"]
    key = results["settings"]["datasets"][0]["key"]
    doc = results["methods"]["test-flaky"]["datasets"][key]
    assert doc["n_ok"] == 1 and doc["n_pairs"] == 2
    assert list(doc["failures"]) == [fail["pair"]]
    # the failing pair left no prediction; the other pair and the other method are complete
    assert not pred_path(tmp_path, "test-flaky", key, fail["pair"]).exists()
    assert results["methods"]["test-noisy"]["datasets"][key]["n_ok"] == 2
    # the CSV has the failure and every pair row
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 1 and "gave up" in failed[0]["message"]
    ok_pairs = {(r["method"], r["pair"]) for r in rows if r["status"] == "ok"}
    assert len(ok_pairs) == 5
    noisy_rows = [r for r in rows if r["method"] == "test-noisy" and r["status"] == "ok" and r["region"] == "all"]
    assert {float(r["bad-2.0"]) for r in noisy_rows} == {
        results["methods"]["test-noisy"]["datasets"][key]["pairs"][r["pair"]]["all"]["bad-2.0"] for r in noisy_rows
    }
    # ... and the report shows it, escaped
    page = (tmp_path / "index.html").read_text()
    assert "gave up on &lt;this&gt; &amp; that pair" in page and "<this>" not in page


def test_html_references_exist_and_no_network(shared):
    tmp_path, _ = shared
    page = (tmp_path / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any(r.endswith(".png") for r in refs)
    for ref in refs:
        if ref.startswith("#"):
            continue
        assert not re.match(r"[a-z]+:", ref), f"external reference {ref}"
        assert (tmp_path / ref).is_file(), ref
    assert "<script src" not in page and "<link" not in page


def test_resume_recomputes_nothing_and_force_recomputes(tmp_path):
    compare(tmp_path, report=False, methods=["test-noisy"])
    assert CALLS["noisy"] == 2
    first = load_results(tmp_path)
    compare(tmp_path, report=False, methods=["test-noisy"])
    assert CALLS["noisy"] == 2  # everything cached
    again = load_results(tmp_path)
    assert pair_figures(again) == pair_figures(first)
    key = first["settings"]["datasets"][0]["key"]
    for p, pdoc in again["methods"]["test-noisy"]["datasets"][key]["pairs"].items():
        assert pdoc["cached"] is True
        assert pdoc["seconds"] == first["methods"]["test-noisy"]["datasets"][key]["pairs"][p]["seconds"]

    # an interrupted run: one prediction written, its sidecar not -> only that one recomputed
    name = first["settings"]["datasets"][0]["pairs"][0]
    pred_path(tmp_path, "test-noisy", key, name).with_suffix(".json").unlink()
    compare(tmp_path, report=False, methods=["test-noisy"])
    assert CALLS["noisy"] == 3

    # another disparity range invalidates the cache; so does force
    compare(tmp_path, report=False, methods=["test-noisy"], max_disp=32)
    assert CALLS["noisy"] == 5
    compare(tmp_path, report=False, methods=["test-noisy"], max_disp=32, force=True)
    assert CALLS["noisy"] == 7


def test_interrupted_run_resumes_where_it_stopped(tmp_path):
    state = {"interrupt_at": 2}

    def fragile(pair, max_disp, **params):
        if pair.gt is None:
            return np.zeros(pair.shape, np.float32)
        CALLS["fragile"] += 1
        if CALLS["fragile"] == state["interrupt_at"]:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the second pair
        return pair.gt.copy()

    matchers.register("test-fragile", fragile)
    try:
        with pytest.raises(KeyboardInterrupt):
            compare(tmp_path, methods=["test-fragile"], report=False)
        key = "synthetic-2"
        names = open_dataset(DATASET).names
        assert pred_path(tmp_path, "test-fragile", key, names[0]).is_file()
        assert not pred_path(tmp_path, "test-fragile", key, names[1]).exists()
        assert not list(tmp_path.rglob("*.tmp"))  # no half-written file
        state["interrupt_at"] = None
        results = compare(tmp_path, methods=["test-fragile"], report=False)
        assert CALLS["fragile"] == 3  # only the interrupted pair ran again
        doc = results["methods"]["test-fragile"]["datasets"][key]
        assert doc["n_ok"] == 2 and doc["pairs"][names[0]]["cached"] and not doc["pairs"][names[1]]["cached"]
        assert doc["aggregate"]["kitti"]["all"]["D1-all"] == 0.0
    finally:
        matchers.unregister("test-fragile")


def test_failures_are_retried(tmp_path):
    compare(tmp_path, methods=["test-flaky"], report=False)
    assert CALLS["flaky"] == 2
    compare(tmp_path, methods=["test-flaky"], report=False)
    assert CALLS["flaky"] == 3  # the good pair cached, the failed one tried again


def test_html_escapes_names(shared):
    tmp_path, _ = shared
    page = (tmp_path / "index.html").read_text()
    assert EVIL not in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;co" in page
    # its files got a safe name
    assert (tmp_path / "pred" / "img_src_x_onerror_alert_1_co").is_dir()


def test_unknown_method_fails_before_running(tmp_path):
    from stereokit.errors import StereoKitError

    with pytest.raises(StereoKitError, match="unknown matcher 'nope'"):
        compare(tmp_path, methods=["test-noisy", "nope"])
    assert CALLS["noisy"] == 0


def test_bad_dataset_spec_leaves_no_report_folder(tmp_path):
    from stereokit.errors import StereoKitError

    out = tmp_path / "report"
    with pytest.raises(StereoKitError, match="bogus"):
        run_compare(datasets=["bogus:1"], out=out, methods=["test-noisy"], progress=False, stream=io.StringIO())
    assert not out.exists()
    existing = tmp_path / "mine"
    (existing / "keep.txt").parent.mkdir()
    (existing / "keep.txt").write_text("x")
    with pytest.raises(StereoKitError):
        run_compare(datasets=["bogus:1"], out=existing, methods=["test-noisy"], progress=False, stream=io.StringIO())
    assert (existing / "keep.txt").read_text() == "x"  # a folder that was there stays as it was


def test_dask_local_cluster_gives_the_same_results(tmp_path):
    distributed = pytest.importorskip("distributed")
    local = compare(tmp_path / "local", report=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        remote = compare(tmp_path / "dask", scheduler=cluster.scheduler_address, report=False)
    assert pair_figures(remote) == pair_figures(local)
    assert [f["pair"] for f in remote["failures"]] == [f["pair"] for f in local["failures"]]
    assert remote["settings"]["executor"].startswith("dask.distributed")
    key = local["settings"]["datasets"][0]["key"]
    for m in ("test-noisy", "test-flaky"):
        for p in local["methods"][m]["datasets"][key]["pairs"]:
            a = read_disparity(pred_path(tmp_path / "local", m, key, p))
            b = read_disparity(pred_path(tmp_path / "dask", m, key, p))
            np.testing.assert_array_equal(a, b)


def test_process_pool_jobs_give_the_same_results(tmp_path):
    # worker processes import a matcher named MODULE:FUNCTION, and one registered in-process by its module:qualname,
    # also where it replaces a built-in: the workers must not run the built-in of that name
    matchers.register("bm-sad", shift_four, replace=True)
    try:
        methods = ["test_compare:noisy_matcher", "test-noisy", "bm-sad"]
        local = compare(tmp_path / "local", methods=methods, report=False)
        pooled = compare(tmp_path / "jobs", methods=methods, jobs=2, report=False)
    finally:
        matchers.unregister("bm-sad")
    assert matchers.source("bm-sad").startswith("stereokit.classical:bm_sad")  # the built-in is back
    assert pair_figures(pooled) == pair_figures(local)
    assert pooled["failures"] == []
    assert "2 processes" in pooled["settings"]["executor"]
    figures = pair_figures(pooled)
    assert figures[("test-noisy", "synthetic-00000")] == figures[("test_compare:noisy_matcher", "synthetic-00000")]
    for p in open_dataset(DATASET).names:
        pred = read_disparity(pred_path(tmp_path / "jobs", "bm-sad", "synthetic-2", p))
        gt = open_dataset(DATASET)[p].gt
        np.testing.assert_allclose(pred, np.nan_to_num(gt, nan=0.0) + 4.0)  # shift_four's answer, not block matching


def test_cli_compare_and_report(tmp_path, capsys):
    from stereokit.cli import main

    out = tmp_path / "r"
    rc = main(["compare", "--dataset", DATASET, "--methods", "test-noisy", "--out", str(out), "--no-progress",
               "--param", "test-noisy.sigma=1.5", "--gallery", "1"])
    assert rc == 0
    assert load_results(out)["settings"]["params"] == {"test-noisy": {"sigma": 1.5}}
    assert len(list((out / "ref" / "synthetic-2").iterdir())) == 1
    err = capsys.readouterr().err
    assert "[1/2] test-noisy on" in err and "[2/2]" in err  # plain log lines without a terminal
    assert (out / "results.csv").is_file()
    (out / "index.html").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "index.html").is_file()
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert main(["compare", "--dataset", DATASET, "--methods", "test-noisy", "--out", str(out), "--param", "sgm.x=1"]) == 2
    assert "not among" in capsys.readouterr().err


def test_new_weights_invalidate_cached_predictions(tmp_path):
    """A matcher's fingerprint (a learned matcher's weights hash) is part of the cache key."""
    state = {"version": "a"}
    noisy_matcher.fingerprint = lambda params: state["version"]
    try:
        compare(tmp_path, report=False, methods=["test-noisy"])
        assert CALLS["noisy"] == 2
        compare(tmp_path, report=False, methods=["test-noisy"])
        assert CALLS["noisy"] == 2  # same fingerprint: cached
        state["version"] = "b"  # e.g. the shipped weights were replaced
        compare(tmp_path, report=False, methods=["test-noisy"])
        assert CALLS["noisy"] == 4
        side = json.loads(pred_path(tmp_path, "test-noisy", load_results(tmp_path)["settings"]["datasets"][0]["key"],
                                    load_results(tmp_path)["settings"]["datasets"][0]["pairs"][0])
                          .with_suffix(".json").read_text())
        assert side["fingerprint"] == "b"
    finally:
        del noisy_matcher.fingerprint


def test_learned_fingerprints_follow_the_weights_file(tmp_path):
    pytest.importorskip("torch")
    from learned.common import file_fingerprint

    w = tmp_path / "w.pt"
    w.write_bytes(b"one")
    first = matchers.fingerprint("mccnn-fast", {"weights": str(w)})
    assert first == file_fingerprint(w) and first.startswith("sha256:")
    w.write_bytes(b"two")
    assert matchers.fingerprint("mccnn-fast", {"weights": str(w)}) != first
    assert matchers.fingerprint("gcnet", {"weights": str(w)}) == file_fingerprint(w)
    from learned.gcnet.matcher import DEFAULT_WEIGHTS

    assert matchers.fingerprint("gcnet", {}) == file_fingerprint(DEFAULT_WEIGHTS) is not None
    assert matchers.fingerprint("sgm", {}) is None


def _damage(results: dict, how: str) -> dict:
    """A deep copy of `results` damaged one way (the keys the report reads)."""
    r = json.loads(json.dumps(results))
    ds0 = r["settings"]["datasets"][0]
    mdoc = r["methods"]["test-noisy"]["datasets"][ds0["key"]]
    if how == "no-format":
        del r["format"]
    elif how == "future-format":
        r["format"] = 99
    elif how == "bool-format":
        r["format"] = True
    elif how == "bare":
        return {"format": 1, "methods": {}, "settings": {}}
    elif how == "null-datasets":
        r["settings"]["datasets"] = None
    elif how == "no-max-disp-source":
        del ds0["max_disp_source"]
    elif how == "string-max-disp":
        ds0["max_disp"] = "<b>64</b>"
    elif how == "escaping-key":
        ds0["key"] = "../../elsewhere"
    elif how == "null-pairs":
        ds0["pairs"] = None
    elif how == "null-n-ok":
        mdoc["n_ok"] = None
    elif how == "list-aggregate":
        mdoc["aggregate"] = []
    elif how == "null-settings-methods":
        r["settings"]["methods"] = None
    elif how == "short-ced":
        r["ced"]["percent_below"]["test-noisy"][ds0["key"]] = [1.0]
    elif how == "string-warmup-seconds":
        r["methods"]["test-noisy"]["warmup"] = {"seconds": "slow"}
    elif how == "null-failures":
        r["failures"] = None
    else:
        raise AssertionError(how)
    return r


@pytest.mark.parametrize("how, message", [
    ("no-format", "results.json: format is missing"),
    ("future-format", "format is 99, but this StereoKit reads format 1 only"),
    ("bool-format", "format is a boolean"),
    ("bare", "settings.datasets is missing"),
    ("null-datasets", "settings.datasets is null, expected a list"),
    ("no-max-disp-source", "settings.datasets[0].max_disp_source is missing"),
    ("string-max-disp", "settings.datasets[0].max_disp is a string, expected a positive integer"),
    ("escaping-key", 'settings.datasets[0].key "../../elsewhere" is not a plain folder name'),
    ("null-pairs", "settings.datasets[0].pairs is null"),
    ("null-n-ok", 'methods["test-noisy"].datasets["synthetic-2"].n_ok is null'),
    ("list-aggregate", 'methods["test-noisy"].datasets["synthetic-2"].aggregate is a list, expected an object'),
    ("null-settings-methods", "settings.methods is null"),
    ("short-ced", 'ced.percent_below["test-noisy"]["synthetic-2"] has 1 values'),
    ("string-warmup-seconds", 'methods["test-noisy"].warmup.seconds is a string, expected a number'),
    ("null-failures", "failures is null, expected a list"),
])
def test_load_results_names_the_bad_key(shared, tmp_path, how, message):
    from stereokit.errors import StereoKitError

    src, _ = shared
    good = load_results(src)  # the real file passes the same check
    (tmp_path / "results.json").write_text(json.dumps(_damage(good, how)))
    with pytest.raises(StereoKitError) as info:
        load_results(tmp_path)
    assert str(info.value).startswith(str(tmp_path / "results.json") + ": ")
    assert message in str(info.value)


@pytest.mark.parametrize("text, message", [
    ("", "is not valid JSON"),
    ('{"format": 1,', "is not valid JSON"),
    ("[1, 2]", "the top level is a list, expected an object"),
    ("null", "the top level is null"),
])
def test_load_results_rejects_what_is_not_a_results_object(tmp_path, text, message):
    from stereokit.errors import StereoKitError

    (tmp_path / "results.json").write_text(text)
    with pytest.raises(StereoKitError, match=re.escape(message)):
        load_results(tmp_path)
    (tmp_path / "results.json").unlink()
    with pytest.raises(StereoKitError, match="results.json not found"):
        load_results(tmp_path)


@pytest.mark.parametrize("empty", ["datasets", "methods"])
def test_empty_comparison_is_reported_as_nothing_to_report(shared, tmp_path, empty):
    from stereokit.errors import StereoKitError

    r = load_results(shared[0])
    if empty == "datasets":
        r["settings"]["datasets"] = []
    else:
        r["methods"] = {}
    (tmp_path / "results.json").write_text(json.dumps(r))
    with pytest.raises(StereoKitError, match="nothing to report"):
        load_results(tmp_path)


# --- what a cached prediction is keyed on ---------------------------------------------------------------------------


def write_scenes(root: Path, seed: int) -> Path:
    """Two Middlebury-2014-style scenes (im0/im1/disp0GT.pfm) from the synthetic generator under root/scenes."""
    from eval.colormap import write_png
    from stereokit.io import write_disparity

    folder = root / "scenes"
    for i, pair in enumerate(open_dataset(f"synthetic:2:{seed}")):
        d = folder / f"scene{'AB'[i]}"
        d.mkdir(parents=True, exist_ok=True)
        to8 = lambda a: a if a.dtype == np.uint8 else (np.clip(a, 0, 1) * 255).astype(np.uint8)
        write_png(d / "im0.png", to8(pair.left))
        write_png(d / "im1.png", to8(pair.right))
        write_disparity(d / "disp0GT.pfm", pair.gt)
    return folder


def image_mean(pair, max_disp, **params):
    """A matcher whose answer depends on the images only: their mean intensity as a constant disparity."""
    CALLS["mean"] += not pair.name.endswith("-warmup")
    return np.full(pair.shape, 40.0 * float(pair.left_gray.mean() + pair.right_gray.mean()), np.float32)


def run_on(out: Path, spec: str) -> dict:
    """{pair: (cached, D1-all)} of test-mean on `spec`."""
    r = run_compare(datasets=[spec], methods=["test-mean"], out=out, progress=False, stream=io.StringIO(),
                    report=False, max_disp=48)
    [doc] = r["methods"]["test-mean"]["datasets"].values()
    return {p: (d["cached"], d["all"]["D1-all"]) for p, d in doc["pairs"].items()}


@pytest.fixture
def mean_matcher():
    matchers.register("test-mean", image_mean)
    yield "test-mean"
    matchers.unregister("test-mean")


def test_folders_with_one_base_name_and_changed_images_are_not_reused(tmp_path, mean_matcher):
    a = write_scenes(tmp_path / "A", seed=0)
    b = write_scenes(tmp_path / "B", seed=7)
    out = tmp_path / "r"
    first = run_on(out, f"middlebury:{a}")
    assert CALLS["mean"] == 2 and not any(c for c, _ in first.values())
    other = run_on(out, f"middlebury:{b}")  # same base name 'scenes', other images
    assert CALLS["mean"] == 4 and not any(c for c, _ in other.values())
    assert other == run_on(tmp_path / "fresh-b", f"middlebury:{b}")  # the figures of a fresh run, not A's
    CALLS.clear()
    # the same folder, named another way, is the same dataset: cached
    again = run_on(out, f"middlebury:{a}/../scenes")
    assert CALLS["mean"] == 0 and again == {p: (True, d1) for p, (_, d1) in first.items()}
    keys = sorted(p.name for p in (out / "pred" / "test-mean").iterdir() if p.is_dir())
    assert len(keys) == 2 and all(k.startswith("middlebury-scenes-") for k in keys)
    side = json.loads(next((out / "pred" / "test-mean").glob("*/sceneA.json")).read_text())
    assert Path(side["dataset"].partition(":")[2]).is_absolute() and side["inputs"].startswith("blake2b:")

    # the images of A change in place (same folder, same names): recomputed, never scored from the old prediction
    write_scenes(tmp_path / "A", seed=7)
    changed = run_on(out, f"middlebury:{a}")
    assert CALLS["mean"] == 2 and not any(c for c, _ in changed.values())
    assert changed == other  # what B (the same images now) gave
    assert run_on(out, f"middlebury:{a}") == {p: (True, d1) for p, (_, d1) in changed.items()}
    assert CALLS["mean"] == 2


def test_sidecars_of_the_old_format_are_stale(tmp_path):
    compare(tmp_path, report=False, methods=["test-noisy"])
    assert CALLS["noisy"] == 2
    key = "synthetic-2"
    name = open_dataset(DATASET).names[0]
    side_path = pred_path(tmp_path, "test-noisy", key, name).with_suffix(".json")
    side = json.loads(side_path.read_text())
    assert side["format"] == 2 and side["matcher"].startswith("runtime test_compare:noisy_matcher")
    # what StereoKit wrote before sidecar format 2: no format, matcher, inputs nor prediction digest
    old = {k: side[k] for k in ("seconds", "cpu_seconds", "peak_mb", "memory_method", "method", "pair", "max_disp",
                                "params", "seed", "fingerprint")}
    side_path.write_text(json.dumps(dict(old, dataset=DATASET)))
    results = compare(tmp_path, report=False, methods=["test-noisy"])
    assert CALLS["noisy"] == 3  # the old sidecar's prediction was recomputed, the other one reused
    pairs = results["methods"]["test-noisy"]["datasets"][key]["pairs"]
    assert not pairs[name]["cached"] and pairs[open_dataset(DATASET).names[1]]["cached"]
    assert json.loads(side_path.read_text())["format"] == 2


@pytest.mark.parametrize("field, value", [("seconds", "abc"), ("seconds", -5), ("seconds", True),
                                          ("peak_mb", "abc"), ("peak_mb", [1, 2]), ("cpu_seconds", {})])
def test_a_sidecar_with_damaged_timings_is_stale(tmp_path, field, value):
    compare(tmp_path, report=False, methods=["test-noisy"])
    name = open_dataset(DATASET).names[0]
    side_path = pred_path(tmp_path, "test-noisy", "synthetic-2", name).with_suffix(".json")
    side_path.write_text(json.dumps(dict(json.loads(side_path.read_text()), **{field: value})))
    results = compare(tmp_path, report=False, methods=["test-noisy"])  # used to crash, or copy the value
    assert CALLS["noisy"] == 3
    timing = results["methods"]["test-noisy"]["datasets"]["synthetic-2"]["pairs"][name]
    assert not timing["cached"] and timing["seconds"] >= 0


@pytest.mark.parametrize("text", ['{"seconds": "x"}', '{"seconds": NaN}', '{"crop": "all"}', "[" * 100000 + "]" * 100000])
def test_a_damaged_warmup_record_is_forgotten_not_reported(tmp_path, text):
    compare(tmp_path, report=False, methods=["test-noisy"])
    (tmp_path / "pred" / "test-noisy" / "warmup.json").write_text(text)
    results = compare(tmp_path, report=False, methods=["test-noisy"])  # every prediction cached: no new warm-up
    assert CALLS["noisy"] == 2
    assert results["methods"]["test-noisy"]["warmup"] is None
    assert load_results(tmp_path)["methods"]["test-noisy"]["warmup"] is None


def test_a_sidecar_nested_too_deep_for_the_json_parser_is_stale(tmp_path):
    compare(tmp_path, report=False, methods=["test-noisy"])
    name = open_dataset(DATASET).names[0]
    pred_path(tmp_path, "test-noisy", "synthetic-2", name).with_suffix(".json").write_text("[" * 100000 + "]" * 100000)
    compare(tmp_path, report=False, methods=["test-noisy"])  # used to raise RecursionError
    assert CALLS["noisy"] == 3


def test_a_prediction_file_not_described_by_its_sidecar_is_recomputed(tmp_path):
    compare(tmp_path, report=False, methods=["test-noisy"])
    name = open_dataset(DATASET).names[0]
    path = pred_path(tmp_path, "test-noisy", "synthetic-2", name)
    from stereokit.io import write_disparity

    write_disparity(path, np.zeros_like(read_disparity(path)))  # e.g. replaced by another run
    results = compare(tmp_path, report=False, methods=["test-noisy"])
    assert CALLS["noisy"] == 3 and not results["methods"]["test-noisy"]["datasets"]["synthetic-2"]["pairs"][name]["cached"]


def shift_one(pair, max_disp, **params):
    if pair.gt is None:
        return np.zeros(pair.shape, np.float32)
    return np.nan_to_num(pair.gt, nan=0.0) + np.float32(1.0)


def shift_four(pair, max_disp, **params):
    if pair.gt is None:
        return np.zeros(pair.shape, np.float32)
    return np.nan_to_num(pair.gt, nan=0.0) + np.float32(4.0)


def test_another_matcher_under_the_same_name_is_not_served_from_the_cache(tmp_path):
    def d1(results, method="test-swap"):
        return [p["all"]["D1-all"] for p in results["methods"][method]["datasets"]["synthetic-2"]["pairs"].values()]

    matchers.register("test-swap", shift_one)
    try:
        first = compare(tmp_path, report=False, methods=["test-swap"])
        assert d1(first) == [0.0, 0.0]
        matchers.register("test-swap", shift_four, replace=True)
        second = compare(tmp_path, report=False, methods=["test-swap"])
    finally:
        matchers.unregister("test-swap")
    fresh = compare(tmp_path / "fresh", report=False, methods=["test_compare:shift_four"])
    assert d1(second) == d1(fresh, "test_compare:shift_four")
    assert min(d1(second)) > 50
    side = json.loads(pred_path(tmp_path, "test-swap", "synthetic-2", "synthetic-00000").with_suffix(".json").read_text())
    assert side["matcher"].startswith("runtime test_compare:shift_four")

    # the same name and qualname with other code (an edited function): recomputed too
    def make(offset):
        namespace = {"np": np, "__name__": __name__}
        exec(f"def edited(pair, max_disp, **params):\n    return np.nan_to_num(pair.gt, nan=0.0) + np.float32({offset})"
             "  if pair.gt is not None else np.zeros(pair.shape, np.float32)", namespace)
        return namespace["edited"]

    runs = []
    for offset in (1.0, 1.0, 4.0):
        matchers.register("test-edited", make(offset))
        try:
            r = compare(tmp_path, report=False, methods=["test-edited"])
        finally:
            matchers.unregister("test-edited")
        runs.append([p["cached"] for p in r["methods"]["test-edited"]["datasets"]["synthetic-2"]["pairs"].values()])
    assert runs == [[False, False], [True, True], [False, False]]


def test_interruption_between_prediction_and_sidecar_leaves_no_stale_sidecar(tmp_path, monkeypatch):
    import eval.compare as C

    compare(tmp_path, report=False, methods=["test-noisy"])  # max_disp from the ground truth
    name = open_dataset(DATASET).names[0]
    path = pred_path(tmp_path, "test-noisy", "synthetic-2", name)
    real = C.save_json

    def interrupted(p, data):
        if Path(p) == path.with_suffix(".json"):
            raise KeyboardInterrupt  # Ctrl-C right after the new prediction was written
        return real(p, data)

    monkeypatch.setattr(C, "save_json", interrupted)
    with pytest.raises(KeyboardInterrupt):
        compare(tmp_path, report=False, methods=["test-noisy"], max_disp=16)
    monkeypatch.setattr(C, "save_json", real)
    assert path.is_file() and not path.with_suffix(".json").exists()  # the old sidecar is gone with the old PFM
    calls = CALLS["noisy"]
    again = compare(tmp_path, report=False, methods=["test-noisy"], max_disp=16)
    assert CALLS["noisy"] == calls + 2  # the orphaned prediction recomputed, and the pair not reached before
    assert json.loads(path.with_suffix(".json").read_text())["max_disp"] == 16
    assert not again["methods"]["test-noisy"]["datasets"]["synthetic-2"]["pairs"][name]["cached"]


def test_params_are_normalised_once_for_the_matcher_and_the_cache(tmp_path):
    seen = []

    def typed(pair, max_disp, weights=None, P2=None, sizes=None):
        if pair.gt is None:  # the warm-up crop
            return np.zeros(pair.shape, np.float32)
        seen.append((type(weights), type(P2), type(sizes)))
        return np.nan_to_num(pair.gt, nan=0.0)

    matchers.register("test-typed", typed)
    try:
        params = {"test-typed": {"weights": Path("w.pt"), "P2": np.int64(150), "sizes": (np.float32(0.5), 3)}}
        first = compare(tmp_path, report=False, methods=["test-typed"], params=params)
        assert first["failures"] == [] and len(seen) == 2
        assert set(seen) == {(str, int, list)}
        side = json.loads(pred_path(tmp_path, "test-typed", "synthetic-2", "synthetic-00000").with_suffix(".json")
                          .read_text())
        assert side["params"] == {"weights": "w.pt", "P2": 150, "sizes": [0.5, 3]}
        second = compare(tmp_path, report=False, methods=["test-typed"], params=params)
        assert len(seen) == 2  # cached: stored and compared in one form
        assert all(p["cached"] for p in second["methods"]["test-typed"]["datasets"]["synthetic-2"]["pairs"].values())
        # 150.0 and True are other values than 150, although Python finds them equal
        compare(tmp_path, report=False, methods=["test-typed"], params={"test-typed": {**params["test-typed"], "P2": 150.0}})
        assert len(seen) == 4
    finally:
        matchers.unregister("test-typed")


@pytest.mark.parametrize("params, message", [
    ({"test-noisy": {"sigma": np.zeros(3)}}, "parameter test-noisy.sigma is a ndarray"),
    ({"test-noisy": {"sigma": float("nan")}}, "parameter test-noisy.sigma is nan"),
    ({"test-noisy": {"max_disp": 32}}, "use max_disp= instead"),
    ({"test-noisy": {"method": "sgm"}}, "use methods= instead"),
])
def test_params_that_cannot_be_recorded_are_refused(tmp_path, params, message):
    from stereokit.errors import StereoKitError

    with pytest.raises(StereoKitError, match=re.escape(message)):
        compare(tmp_path / "r", methods=["test-noisy"], params=params)
    assert not (tmp_path / "r").exists() and CALLS["noisy"] == 0


def test_jobs_refuse_an_in_process_matcher_workers_cannot_import(tmp_path):
    from stereokit.errors import StereoKitError

    matchers.register("test-lambda", lambda pair, max_disp, **p: np.zeros(pair.shape, np.float32))
    try:
        with pytest.raises(StereoKitError, match=r"'test-lambda' was registered in-process.*entry point.*--jobs 1"):
            compare(tmp_path / "r", methods=["test-noisy", "test-lambda"], jobs=2)
        assert not (tmp_path / "r").exists()
        compare(tmp_path / "r1", methods=["test-lambda"], report=False)  # in-process it runs
    finally:
        matchers.unregister("test-lambda")


# --- seed, CLI options, aggregates and CSV (pinned by mutation testing) ------------------------------------------


def seeded_offset(pair, max_disp, **params):
    """Ground truth plus one draw of NumPy's global generator: the answer depends on the run's seed alone."""
    if pair.gt is None:
        return np.zeros(pair.shape, np.float32)
    CALLS["seeded"] += 1
    return np.nan_to_num(pair.gt, nan=0.0) + np.float32(np.random.uniform(0.0, 1.0))


def test_the_seed_reaches_the_matcher_and_keys_the_cache(tmp_path, dataset):
    matchers.register("test-seeded", seeded_offset)
    try:
        def run(seed):
            r = compare(tmp_path, report=False, methods=["test-seeded"], seed=seed)
            pairs = r["methods"]["test-seeded"]["datasets"]["synthetic-2"]["pairs"]
            return r, [pairs[n]["cached"] for n in dataset.names]

        def offset(name):
            pred = read_disparity(pred_path(tmp_path, "test-seeded", "synthetic-2", name))
            gt = dataset[name].gt
            return float(np.nanmedian(pred[np.isfinite(gt)] - gt[np.isfinite(gt)]))

        first, cached = run(0)
        assert CALLS["seeded"] == 2 and cached == [False, False]
        assert offset(dataset.names[0]) == pytest.approx(np.random.RandomState(0).uniform(), abs=1e-4)
        assert run(0)[1] == [True, True] and CALLS["seeded"] == 2
        other, cached = run(3)  # another seed is another computation: recomputed, with that seed
        assert CALLS["seeded"] == 4 and cached == [False, False]
        assert other["settings"]["seed"] == 3
        assert offset(dataset.names[0]) == pytest.approx(np.random.RandomState(3).uniform(), abs=1e-4)
        side = json.loads(pred_path(tmp_path, "test-seeded", "synthetic-2", dataset.names[1]).with_suffix(".json")
                          .read_text())
        assert side["seed"] == 3
    finally:
        matchers.unregister("test-seeded")


def test_cli_compare_passes_its_options_on(tmp_path, capsys, monkeypatch):
    import concurrent.futures as cf

    import eval.compare as C
    from stereokit.cli import main

    pools = []

    def thread_pool(jobs):  # stands in for the spawned processes: what matters here is that --jobs reaches it
        pools.append(jobs)
        return cf.ThreadPoolExecutor(max_workers=jobs)

    monkeypatch.setattr(C, "_process_pool", thread_pool)
    out = tmp_path / "r"
    argv = ["compare", "--dataset", DATASET, "--methods", "test-noisy", "--out", str(out), "--no-progress",
            "--gallery", "0", "--max-disp", "32", "--param", "test-noisy.paths=4", "--param", "test-noisy.mode=fast",
            "--param", "test-noisy.subpixel-fit=true"]
    assert main(argv) == 0
    res = load_results(out)
    [ds] = res["settings"]["datasets"]
    assert ds["max_disp"] == 32 and ds["max_disp_source"] == "--max-disp"
    # repeated --param of one method add up; dashes become underscores; values typed
    assert res["settings"]["params"] == {"test-noisy": {"paths": 4, "mode": "fast", "subpixel_fit": True}}
    side = json.loads(pred_path(out, "test-noisy", "synthetic-2", ds["pairs"][0]).with_suffix(".json").read_text())
    assert side["max_disp"] == 32 and side["params"] == {"paths": 4, "mode": "fast", "subpixel_fit": True}
    assert CALLS["noisy"] == 2 and pools == []
    assert main(argv) == 0 and CALLS["noisy"] == 2  # cached
    assert main(argv + ["--force"]) == 0 and CALLS["noisy"] == 4  # --force recomputes
    assert not any(p["cached"] for p in load_results(out)["methods"]["test-noisy"]["datasets"]["synthetic-2"]
                   ["pairs"].values())
    assert main(argv + ["--force", "--jobs", "2"]) == 0 and pools == [2]
    assert load_results(out)["settings"]["jobs"] == 2 and CALLS["noisy"] == 6
    capsys.readouterr()


def test_cli_compare_exit_status_is_1_only_when_every_run_failed(tmp_path, capsys):
    from stereokit.cli import main

    def always(pair, max_disp, **params):
        raise RuntimeError("never works")

    matchers.register("test-always", always)
    try:
        common = ["--dataset", DATASET, "--no-progress", "--gallery", "0"]
        assert main(["compare", "--methods", "test-flaky", "--out", str(tmp_path / "a"), *common]) == 0  # 1 of 2 ok
        assert main(["compare", "--methods", "test-always", "--out", str(tmp_path / "b"), *common]) == 1
        assert len(load_results(tmp_path / "b")["failures"]) == 2  # recorded all the same
    finally:
        matchers.unregister("test-always")
    capsys.readouterr()


def test_empty_lists_are_refused_and_a_string_is_one_name(tmp_path, capsys):
    from stereokit.cli import main
    from stereokit.errors import StereoKitError

    with pytest.raises(StereoKitError, match="methods is empty; pass None"):
        compare(tmp_path / "a", methods=[])
    with pytest.raises(StereoKitError, match="datasets is empty; pass None"):
        run_compare(datasets=[], methods=["test-noisy"], out=tmp_path / "a", progress=False, stream=io.StringIO())
    assert not (tmp_path / "a").exists() and CALLS["noisy"] == 0
    results = run_compare(datasets=DATASET, methods="test-noisy", out=tmp_path / "b", gallery=0, progress=False,
                          stream=io.StringIO())
    assert list(results["methods"]) == ["test-noisy"] and [d["spec"] for d in results["settings"]["datasets"]] == [
        DATASET]
    common = ["compare", "--dataset", DATASET, "--no-progress", "--out", str(tmp_path / "c")]
    for empty in ("", " , "):  # an unset shell variable must not start every matcher
        assert main([*common, "--methods", empty]) == 2
        assert f"--methods {empty!r} names no matcher" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_an_output_folder_that_cannot_be_made_is_named(tmp_path):
    from stereokit.errors import StereoKitError

    (tmp_path / "file").write_text("x")
    with pytest.raises(StereoKitError, match=r"cannot create the output folder .*file: a file is in the way"):
        compare(tmp_path / "file")
    with pytest.raises(StereoKitError, match=r"cannot create the output folder .*file.sub: Not a directory"):
        compare(tmp_path / "file" / "sub")
    assert (tmp_path / "file").read_text() == "x" and CALLS["noisy"] == 0


def test_params_for_a_matcher_not_compared_are_refused(tmp_path):
    from stereokit.errors import StereoKitError

    with pytest.raises(StereoKitError, match="parameters given for test-flaky, which is not among the compared"):
        compare(tmp_path / "r", methods=["test-noisy"], params={"test-flaky": {"paths": 4}})
    assert not (tmp_path / "r").exists() and CALLS["noisy"] == 0


def test_dataset_timing_summaries_are_the_pairs_mean_total_and_max(shared):
    _, results = shared
    key = results["settings"]["datasets"][0]["key"]
    for m in ("test-noisy", "test-flaky"):
        doc = results["methods"][m]["datasets"][key]
        secs = [p["seconds"] for p in doc["pairs"].values()]
        mbs = [p["peak_mb"] for p in doc["pairs"].values()]
        assert doc["seconds"]["mean"] == pytest.approx(sum(secs) / len(secs))
        assert doc["seconds"]["total"] == pytest.approx(sum(secs))
        assert doc["peak_mb"]["max"] == pytest.approx(max(mbs))
        assert doc["peak_mb"]["mean"] == pytest.approx(sum(mbs) / len(mbs))


def offsets_by_pair(pair, max_disp, **params):
    """Dense: ground truth + 0.3 px on the first synthetic pair, + 2.7 px on the second."""
    if pair.gt is None:
        return np.zeros(pair.shape, np.float32)
    return np.nan_to_num(pair.gt, nan=0.0) + np.float32(0.3 if pair.name.endswith("0") else 2.7)


def test_error_distribution_pools_the_pixels_of_every_pair(tmp_path, dataset):
    from eval.compare import CED_THRESHOLDS

    matchers.register("test-offsets", offsets_by_pair)
    try:
        results = compare(tmp_path, report=False, methods=["test-offsets"])
    finally:
        matchers.unregister("test-offsets")
    n0, n1 = (int(np.isfinite(p.gt).sum()) for p in dataset)
    curve = results["ced"]["percent_below"]["test-offsets"]["synthetic-2"]
    expected = [100.0 * (n0 * (0.3 < t) + n1 * (2.7 < t)) / (n0 + n1) for t in CED_THRESHOLDS]
    assert curve == pytest.approx(expected, abs=1e-3)
    assert 0 < curve[CED_THRESHOLDS.index(1.0)] < 100  # between the two pairs' errors: both pairs count


def test_csv_aggregate_and_noc_rows_carry_their_own_figures(shared):
    tmp_path, results = shared
    key = results["settings"]["datasets"][0]["key"]
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    doc = results["methods"]["test-noisy"]["datasets"][key]
    agg = {(r["aggregate"], r["region"]): r for r in rows if r["method"] == "test-noisy" and r["pair"] == ""}
    assert set(agg) == {(k, reg) for k in ("kitti", "middlebury") for reg in ("all", "noc")}
    for (kind, region), r in agg.items():
        for metric in ("D1-all", "EPE", "bad-2.0", "density"):
            assert float(r[metric]) == pytest.approx(doc["aggregate"][kind][region][metric]), (kind, region, metric)
        assert r["dataset"] == DATASET and r["status"] == "2/2 pairs"
        assert float(r["seconds"]) == pytest.approx(doc["seconds"]["mean"])
    for name, pdoc in doc["pairs"].items():
        [noc] = [r for r in rows if r["method"] == "test-noisy" and r["pair"] == name and r["region"] == "noc"]
        assert float(noc["EPE"]) == pytest.approx(pdoc["noc"]["EPE"])
        assert pdoc["noc"]["EPE"] != pdoc["all"]["EPE"]  # so the row tells the regions apart


def test_max_disp_without_ground_truth_defaults_to_64(tmp_path):
    from eval.colormap import write_png

    pair = open_dataset("synthetic:1")[0]
    scene = tmp_path / "nogt" / "scene"  # Middlebury 2001 layout, images only: no ground truth
    scene.mkdir(parents=True)
    to8 = lambda a: a if a.dtype == np.uint8 else (np.clip(a, 0, 1) * 255).astype(np.uint8)
    write_png(scene / "im2.png", to8(pair.left))
    write_png(scene / "im6.png", to8(pair.right))
    seen = []

    def record(pair, max_disp, **params):
        seen.append(max_disp)
        return np.zeros(pair.shape, np.float32)

    matchers.register("test-record", record)
    stream = io.StringIO()
    try:
        results = run_compare(datasets=[f"middlebury:{scene}"], methods=["test-record"], out=tmp_path / "r",
                              progress=False, stream=stream, report=False)
    finally:
        matchers.unregister("test-record")
    [ds] = results["settings"]["datasets"]
    assert ds["max_disp"] == 64 and ds["max_disp_source"] == "default (no ground truth)" and ds["max_gt"] is None
    assert seen == [64, 64]  # warm-up crop and the run
    assert results["failures"] == [] and "using max_disp 64" in stream.getvalue()


def test_a_failed_run_records_the_matchers_own_error(shared):
    _, results = shared
    [fail] = results["failures"]
    # the matcher's exception as raised, at the run stage (not as a crashed worker)
    assert fail["stage"] == "run"
    assert fail["message"] == "RuntimeError: flaky matcher gave up on <this> & that pair"
    assert "flaky_matcher" in fail["traceback"]


def test_results_file_nested_too_deep_for_the_json_parser_is_named(tmp_path):
    from stereokit.errors import StereoKitError

    (tmp_path / "results.json").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(StereoKitError, match=r"results\.json is not valid JSON"):
        load_results(tmp_path)


def test_a_prediction_replaced_by_another_run_right_after_it_was_written_is_not_cached(tmp_path, monkeypatch):
    # two compares into one folder: the sidecar must describe the bytes this run wrote, not what is on disk later
    import stereokit.io as skio

    real = skio.atomic_write_bytes

    def write_then_overwritten(path, data):
        out = real(path, data)
        if Path(path).suffix == ".pfm":
            real(path, skio.encode_pfm(skio.read_pfm(path) + 1))  # the other run's prediction
        return out

    monkeypatch.setattr(skio, "atomic_write_bytes", write_then_overwritten)
    compare(tmp_path, report=False, methods=["test-noisy"])
    monkeypatch.setattr(skio, "atomic_write_bytes", real)
    compare(tmp_path, report=False, methods=["test-noisy"])
    assert CALLS["noisy"] == 4  # both predictions recomputed, none taken from the other run


def test_report_plots_do_not_share_a_temporary_name_with_another_writer(tmp_path):
    from eval.report import build_report

    compare(tmp_path, report=True, methods=["test-noisy"])
    plots = sorted(p.name for p in (tmp_path / "plots").iterdir())
    for name in plots:  # what a concurrent writer with fixed temporary names would hold at this moment
        (tmp_path / "plots" / f".{name}.tmp.png").mkdir()
    build_report(tmp_path)
    assert all((tmp_path / "plots" / name).is_file() for name in plots)


def test_a_pool_worker_exits_once_its_parent_is_killed(tmp_path):
    import os
    import subprocess
    import sys
    import time

    script = (
        "import multiprocessing as mp, os, sys, time\n"
        "from eval.compare import _exit_with_parent\n"
        "def work():\n"
        "    _exit_with_parent(0.05)\n"
        "    time.sleep(60)\n"
        "if __name__ == '__main__':\n"
        "    p = mp.get_context('fork').Process(target=work)\n"
        "    p.start()\n"
        "    print(p.pid, flush=True)\n"
        "    time.sleep(0.5)\n"
        "    os._exit(0)  # as after SIGKILL: no clean-up of the child\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parent.parent)
    pid = int(out.stdout.split()[0])
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return  # gone
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return  # exited, not yet reaped by its new parent
        time.sleep(0.05)
    os.kill(pid, 9)
    raise AssertionError("the orphaned worker was still running 10 s after its parent died")


def test_report_with_a_file_where_its_plots_folder_goes_names_it(tmp_path):
    from eval.report import build_report
    from stereokit.errors import StereoKitError

    compare(tmp_path, report=False, methods=["test-noisy"])
    (tmp_path / "plots").write_text("x")
    with pytest.raises(StereoKitError, match=r"cannot write the report's plots into .*plots: File exists"):
        build_report(tmp_path)
