"""The `stereokit` command: --help everywhere, one-line errors without tracebacks, match and eval end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from eval import evaluate_dataset, evaluate_pair
from stereokit import StereoPair, matchers
from stereokit.cli import main

nan = np.nan


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """main(argv) -> (exit status, stdout, stderr), argparse's SystemExit included."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def assert_one_line_error(rc: int, err: str, *words: str) -> None:
    assert rc != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert "error" in lines[0]
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"


# --- --help -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [[], ["match"], ["eval"], ["datasets"], ["matchers"], ["compare"], ["report"], ["train"]]
)
def test_every_command_has_help(command, capsys):
    rc, out, err = run_cli([*command, "--help"], capsys)
    assert rc == 0
    assert out.startswith("usage: stereokit")
    assert err == ""


def test_installed_command_runs(tmp_path):
    exe = Path(sys.executable).with_name("stereokit")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "stereokit.cli"]
    proc = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "eval" in proc.stdout
    # a real process: a missing prediction folder is one line on stderr, no traceback
    proc = subprocess.run(
        [*cmd, "eval", "--dataset", "synthetic:1", "--pred", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_one_line_error(proc.returncode, proc.stderr, "nowhere")


# --- argument errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, words",
    [
        ([], ["COMMAND"]),
        (["bogus"], ["bogus"]),
        (["eval"], ["--dataset", "--pred"]),
        (["eval", "--dataset", "synthetic:1"], ["--pred"]),
        (["match", "left.png"], ["right"]),
        (["match", "l.png", "r.png", "--out", "o.npy", "--max-disp", "many"], ["--max-disp", "many"]),
        (["train", "bogus"], ["bogus"]),
    ],
)
def test_bad_arguments_give_one_line(argv, words, capsys):
    rc, out, err = run_cli(argv, capsys)
    assert rc == 2
    assert_one_line_error(rc, err, *words)


# --- match --------------------------------------------------------------------------------------------------------


@pytest.fixture
def const_matcher():
    """A tiny matcher registered in-process: a constant disparity."""

    def const(pair, max_disp, value=2.0, min_disp=0):
        return np.full(pair.shape, value, np.float32)

    matchers.register("test-const", const)
    yield "test-const"
    matchers.unregister("test-const")


@pytest.fixture
def image_files(tmp_path):
    rng = np.random.default_rng(0)
    left = rng.integers(0, 256, size=(12, 20), dtype=np.uint8)
    right = np.roll(left, -2, axis=1)
    lp, rp = tmp_path / "left.png", tmp_path / "right.png"
    cv2.imwrite(str(lp), left)
    cv2.imwrite(str(rp), right)
    return lp, rp


def test_match_writes_npy(const_matcher, image_files, tmp_path, capsys):
    out = tmp_path / "d.npy"
    rc, stdout, err = run_cli(
        ["match", *image_files, "--method", const_matcher, "--max-disp", 4, "--out", out, "--param", "value=1.5"], capsys
    )
    assert rc == 0, err
    disp = np.load(out)
    assert disp.shape == (12, 20) and disp.dtype == np.float32
    np.testing.assert_array_equal(disp, 1.5)
    assert str(out) in stdout


@pytest.mark.parametrize("suffix", [".pfm", ".png"])
def test_match_writes_by_suffix(suffix, const_matcher, image_files, tmp_path, capsys):
    from stereokit.io import read_disparity

    out = tmp_path / f"d{suffix}"
    rc, _, err = run_cli(["match", *image_files, "--method", const_matcher, "--max-disp", 4, "--out", out], capsys)
    assert rc == 0, err
    np.testing.assert_array_equal(read_disparity(out), np.full((12, 20), 2.0, np.float32))


def test_matchers_lists_runtime_matcher(const_matcher, capsys):
    rc, out, _ = run_cli(["matchers"], capsys)
    assert rc == 0
    assert any(line.split()[:2] == [const_matcher, "runtime"] for line in out.splitlines())


def test_datasets_lists_specs(capsys):
    rc, out, _ = run_cli(["datasets"], capsys)
    assert rc == 0
    for spec in ("sample", "synthetic", "middlebury:PATH", "kitti2015:PATH"):
        assert spec in out


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--method", "no-such-matcher"], ["no-such-matcher"]),
        (["--param", "novalue"], ["novalue"]),
        (["--max-disp", "40"], ["wider than the image"]),
        (["--max-disp", "0"], ["max_disp"]),
        (["--param", "bogus=1"], ["matcher 'test-const'", "'bogus'"]),  # not a parameter of the matcher
    ],
)
def test_match_bad_input_one_line(extra, words, const_matcher, image_files, tmp_path, capsys):
    argv = ["match", *image_files, "--method", const_matcher, "--max-disp", "4", "--out", tmp_path / "o.npy", *extra]
    rc, _, err = run_cli(argv, capsys)
    assert_one_line_error(rc, err, *words)
    assert not (tmp_path / "o.npy").exists()


def test_match_checks_its_output_before_matching(image_files, tmp_path, capsys):
    from stereokit.registry import matchers

    calls = []

    def counting(pair, max_disp, **params):
        calls.append(1)
        return np.zeros(pair.shape, np.float32)

    matchers.register("test-counting", counting)
    try:
        for out, words in [(tmp_path / "d.jpg", ["'.jpg'", ".pfm"]), (image_files[0], ["input image"])]:
            rc, _, err = run_cli(["match", *image_files, "--method", "test-counting", "--max-disp", 4, "--out", out],
                                 capsys)
            assert_one_line_error(rc, err, *words)
        assert not calls  # refused before the matcher ran
        assert not (tmp_path / "d.jpg").exists()
    finally:
        matchers.unregister("test-counting")


@pytest.mark.parametrize(
    "params, words",
    [
        (["max_disp=8"], ["--max-disp"]),
        (["method=sgm"], ["--method"]),
        (["median=x"], ["median", "'x'"]),
        (["speckle_size=1.5"], ["speckle_size"]),
        (["subpixel=cubic"], ["subpixel", "'cubic'"]),
        (["min_disp=-2"], ["--min-disp"]),
        # match's own arguments: these reached the call twice (a TypeError traceback)
        (["pair=1"], ["--param pair", "'pair' is the stereo pair"]),
        (["left=a.png"], ["--param left", "'left' is the left image"]),
        (["right=b.png"], ["--param right", "'right' is the right image"]),
    ],
)
def test_match_bad_param_values_give_one_line(params, words, image_files, tmp_path, capsys):
    argv = ["match", *image_files, "--method", "bm-sad", "--max-disp", "4", "--out", tmp_path / "o.npy"]
    rc, _, err = run_cli(argv + [x for p in params for x in ("--param", p)], capsys)
    assert_one_line_error(rc, err, *words)
    assert not (tmp_path / "o.npy").exists()


def test_match_out_of_memory_gives_one_line(image_files, tmp_path, capsys):
    from stereokit.registry import matchers

    def greedy(pair, max_disp, **params):
        raise MemoryError("Unable to allocate 24.3 GiB")

    matchers.register("test-greedy", greedy)
    try:
        rc, _, err = run_cli(["match", *image_files, "--method", "test-greedy", "--max-disp", 4, "--out",
                              tmp_path / "o.npy"], capsys)
        assert_one_line_error(rc, err, "out of memory", "24.3 GiB", "max_disp")
    finally:
        matchers.unregister("test-greedy")


def test_match_missing_image_names_it(const_matcher, image_files, tmp_path, capsys):
    missing = tmp_path / "missing.png"
    rc, _, err = run_cli(["match", missing, image_files[1], "--method", const_matcher, "--out", tmp_path / "o.npy"], capsys)
    assert_one_line_error(rc, err, str(missing))


def test_match_undecodable_image_names_it(const_matcher, image_files, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png at all")
    rc, _, err = run_cli(["match", image_files[0], bad, "--method", const_matcher, "--out", tmp_path / "o.npy"], capsys)
    assert_one_line_error(rc, err, str(bad))


@pytest.mark.parametrize(
    "param, words",
    [
        ("sgm.max_disp=32", ["--param sgm.max_disp", "use --max-disp"]),
        ("sgm.max-disp=32", ["use --max-disp"]),
        ("sgm.method=bm-sad", ["use --methods"]),
        ("sgm.pair=1", ["'pair'"]),
        ("sgm.left=1", ["'left' is the left image"]),
    ],
)
def test_compare_refuses_params_the_runner_sets_itself(param, words, tmp_path, capsys):
    out = tmp_path / "r"
    rc, _, err = run_cli(["compare", "--dataset", "synthetic:1", "--methods", "sgm", "--param", param, "--out", out,
                          "--no-progress"], capsys)
    assert rc == 2
    assert_one_line_error(rc, err, *words)
    assert not out.exists()  # refused before any work


# --- eval ---------------------------------------------------------------------------------------------------------


class FakeDataset(list):
    """A sized sequence of StereoPair with .name and .names, as open_dataset returns."""

    def __init__(self, pairs, name="fake"):
        super().__init__(pairs)
        self.name = name
        self.names = [p.name for p in pairs]


def _fake_pairs() -> list[StereoPair]:
    rng = np.random.default_rng(1)
    pairs = []
    for i in range(2):
        left = rng.integers(0, 256, size=(6, 8), dtype=np.uint8)
        gt = rng.uniform(4, 30, size=(6, 8)).astype(np.float32)
        gt[0, 0] = nan
        nonocc = np.ones((6, 8), bool)
        nonocc[:, :2] = False
        fg = np.zeros((6, 8), bool)
        fg[2:4, 3:6] = True
        pairs.append(StereoPair(left, left, gt=gt, nonocc=nonocc, fg=fg if i == 0 else None, name=f"scene-{i}"))
    return pairs


def _predictions(pairs) -> dict[str, np.ndarray]:
    preds = {}
    for k, p in enumerate(pairs):
        pred = p.gt.copy()
        pred[np.isnan(pred)] = 10.0
        pred[1, :] += 5.0 * (k + 1)  # outliers
        pred[3, 2:5] = nan  # holes for the fill
        pred[4, 0] += 0.75
        preds[p.name] = pred
    return preds


@pytest.fixture
def fake_dataset(monkeypatch):
    pairs = _fake_pairs()
    monkeypatch.setattr("stereokit.datasets.open_dataset", lambda spec: FakeDataset(pairs, name=spec))
    return pairs


@pytest.mark.parametrize("no_fill", [False, True])
def test_eval_scores_like_the_python_api(no_fill, fake_dataset, tmp_path, capsys):
    preds = _predictions(fake_dataset)
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    for name, pred in preds.items():
        np.save(pred_dir / f"{name}.npy", pred)
    out = tmp_path / "res.json"
    argv = ["eval", "--dataset", "fake:spec", "--pred", pred_dir, "--json", out] + (["--no-fill"] if no_fill else [])
    rc, stdout, err = run_cli(argv, capsys)
    assert rc == 0, err
    got = json.loads(out.read_text())
    expected = evaluate_dataset(
        "fake:spec",
        {p.name: evaluate_pair(preds[p.name], p.gt, p.nonocc, p.fg, fill=not no_fill) for p in fake_dataset},
    ).to_dict()
    assert got == json.loads(json.dumps(expected))
    assert got["dataset"] == "fake:spec"
    assert got["aggregate"]["kitti"]["all"]["D1-all"] > 0
    assert got["pairs"]["scene-1"]["all"]["D1-fg"] is None
    # the table is printed: header, both pairs, both aggregates
    assert "D1-all" in stdout and "scene-0" in stdout and "scene-1" in stdout
    assert "kitti" in stdout and "middlebury" in stdout
    assert ("unfilled" in stdout) == no_fill


def test_eval_missing_prediction_names_pair_and_folder(fake_dataset, tmp_path, capsys):
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    np.save(pred_dir / "scene-0.npy", fake_dataset[0].gt)
    rc, _, err = run_cli(["eval", "--dataset", "x", "--pred", pred_dir], capsys)
    assert_one_line_error(rc, err, "scene-1", str(pred_dir))


def test_eval_missing_folder(fake_dataset, tmp_path, capsys):
    rc, _, err = run_cli(["eval", "--dataset", "x", "--pred", tmp_path / "absent"], capsys)
    assert_one_line_error(rc, err, "absent")


def test_eval_wrong_shape_prediction(fake_dataset, tmp_path, capsys):
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    np.save(pred_dir / "scene-0.npy", fake_dataset[0].gt)
    np.save(pred_dir / "scene-1.npy", np.zeros((8, 8), np.float32))  # padded
    out = tmp_path / "res.json"
    rc, _, err = run_cli(["eval", "--dataset", "x", "--pred", pred_dir, "--json", out], capsys)
    assert_one_line_error(rc, err, "scene-1", "(8, 8)", "(6, 8)")
    assert not out.exists()


def test_eval_prefers_float_formats(fake_dataset, tmp_path, capsys):
    from stereokit.io import write_disparity

    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    for p in fake_dataset:
        write_disparity(pred_dir / f"{p.name}.pfm", np.where(np.isnan(p.gt), 1.0, p.gt))
        write_disparity(pred_dir / f"{p.name}.png", np.full(p.gt.shape, 1.0, np.float32))  # a worse prediction
    out = tmp_path / "res.json"
    rc, _, err = run_cli(["eval", "--dataset", "x", "--pred", pred_dir, "--json", out], capsys)
    assert rc == 0, err
    assert json.loads(out.read_text())["aggregate"]["kitti"]["all"]["EPE"] == pytest.approx(0.0, abs=1e-6)


def test_eval_json_into_a_folder_fails_first(fake_dataset, tmp_path, capsys):
    rc, out, err = run_cli(["eval", "--dataset", "x", "--pred", tmp_path, "--json", tmp_path], capsys)
    assert_one_line_error(rc, err, "--json")
    assert out == ""


def test_eval_bad_dataset_spec(tmp_path, capsys):
    rc, _, err = run_cli(["eval", "--dataset", "no-such-dataset", "--pred", tmp_path], capsys)
    assert_one_line_error(rc, err, "no-such-dataset")


def test_eval_synthetic_ground_truth_scores_perfectly(tmp_path, capsys):
    from stereokit.datasets import open_dataset

    ds = open_dataset("synthetic:1")
    for name, pair in zip(ds.names, ds):
        np.save(tmp_path / f"{name}.npy", pair.gt)
    out = tmp_path / "res.json"
    rc, stdout, err = run_cli(["eval", "--dataset", "synthetic:1", "--pred", tmp_path, "--json", out], capsys)
    assert rc == 0, err
    res = json.loads(out.read_text())
    assert list(res["pairs"]) == list(ds.names)
    for agg in ("kitti", "middlebury"):
        for region in ("all", "noc"):
            m = res["aggregate"][agg][region]
            assert m["D1-all"] == 0.0 and m["EPE"] == 0.0 and m["A99"] == 0.0 and m["density"] == 100.0


@pytest.mark.parametrize(
    "argv, words",
    [
        (["train", "mccnn", "--arch", "bogus"], ["--arch", "bogus"]),
        (["train", "gcnet", "--iters", "x"], ["--iters", "'x'"]),
        (["train", "mccnn", "--no-such-flag"], ["--no-such-flag"]),
    ],
)
def test_trainer_argument_errors_are_one_line(argv, words, capsys):
    rc, _, err = run_cli(argv, capsys)
    assert_one_line_error(rc, err, *words)


# --- defaults and --param types (pinned by mutation testing) ------------------------------------------------------


@pytest.fixture
def recording_sgm():
    """`sgm` (the default method) replaced by a matcher that records its arguments."""
    calls = []

    def record(pair, max_disp, **params):
        calls.append(dict(params, max_disp=max_disp))
        return np.full(pair.shape, 3.0, np.float32)

    matchers.register("sgm", record, replace=True)
    yield calls
    matchers.unregister("sgm")


@pytest.fixture
def wide_image_files(tmp_path):
    rng = np.random.default_rng(0)
    left = rng.integers(0, 256, size=(12, 80), dtype=np.uint8)  # wide enough for the default 64 disparities
    lp, rp = tmp_path / "wl.png", tmp_path / "wr.png"
    cv2.imwrite(str(lp), left)
    cv2.imwrite(str(rp), np.roll(left, -2, axis=1))
    return lp, rp


def test_match_defaults_to_sgm_with_64_disparities(recording_sgm, wide_image_files, tmp_path, capsys):
    rc, stdout, err = run_cli(["match", *wide_image_files, "--out", tmp_path / "d.npy"], capsys)
    assert rc == 0, err
    assert recording_sgm == [{"max_disp": 64}]  # no min_disp unless asked for
    assert "method sgm" in stdout
    rc, _, err = run_cli(["match", *wide_image_files, "--out", tmp_path / "d.npy", "--max-disp", "16", "--min-disp",
                          "-3"], capsys)
    assert rc == 0, err
    assert recording_sgm[-1] == {"max_disp": 16, "min_disp": -3}


def test_match_param_values_are_typed(recording_sgm, wide_image_files, tmp_path, capsys):
    params = ["paths=4", "P2=150.5", "eps=1e-3", "lr_check=True", "median=false", "weights=none", "preset=kitti",
              "speckle-size=50", "name=3a"]
    argv = ["match", *wide_image_files, "--out", tmp_path / "d.npy", "--max-disp", "16"]
    rc, _, err = run_cli(argv + [x for p in params for x in ("--param", p)], capsys)
    assert rc == 0, err
    [got] = recording_sgm
    expected = {"paths": 4, "P2": 150.5, "eps": 0.001, "lr_check": True, "median": False, "weights": None,
                "preset": "kitti", "speckle_size": 50, "name": "3a", "max_disp": 16}
    assert got == expected
    assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in expected.items()}  # 4 is no 4.0, True no 1


def test_eval_prefers_pfm_over_npy(fake_dataset, tmp_path, capsys):
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    from stereokit.io import write_disparity

    for p in fake_dataset:
        write_disparity(pred_dir / f"{p.name}.pfm", np.where(np.isnan(p.gt), 1.0, p.gt))
        np.save(pred_dir / f"{p.name}.npy", np.full(p.gt.shape, 1.0, np.float32))  # a worse prediction
    out = tmp_path / "res.json"
    rc, _, err = run_cli(["eval", "--dataset", "x", "--pred", pred_dir, "--json", out], capsys)
    assert rc == 0, err
    assert json.loads(out.read_text())["aggregate"]["kitti"]["all"]["EPE"] == pytest.approx(0.0, abs=1e-6)
