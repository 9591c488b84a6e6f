"""GC-Net: network pieces (cost volume, soft argmin, padding), training steps, the matcher and its shipped weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from learned.gcnet.model import (
    CONFIGS,
    GCNet,
    GCNetConfig,
    concat_cost_volume,
    confidence,
    normalize_image,
    pad_to_multiple,
    soft_argmin,
)
from learned.gcnet.matcher import DEFAULT_WEIGHTS, _shift_right, _spans, gcnet, predict, resolve_scale
from learned.gcnet.train import CropSampler, load_weights, save_weights
from learned.splits import is_held_out as is_validation_scene  # the rule the GC-Net trainer applies
from stereokit.errors import StereoKitError
from stereokit.pair import StereoPair

TINY = GCNetConfig(features=4, res_blocks=1, volume_channels=(4, 4, 4), max_disp=8)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("gcnet") / "tiny.pt"
    save_weights(GCNet(TINY), path)
    return path


def _pair(h, w, seed=0):
    rng = np.random.default_rng(seed)
    left = rng.random((h, w, 3), dtype=np.float32)
    right = np.roll(left, -2, axis=1)
    return StereoPair(left, right)


def test_configs_follow_the_paper():
    paper = CONFIGS["paper"]
    assert (paper.features, paper.res_blocks, paper.volume_channels, paper.max_disp) == (32, 8, (32, 64, 64, 64, 128), 192)
    assert paper.multiple == 32
    net = GCNet(paper)
    # every residual block owns two distinct convolutions (the known reimplementation bug reuses one)
    blocks = list(net.unary.blocks)
    assert len(blocks) == 8
    ids = {id(b.conv1.weight) for b in blocks} | {id(b.conv2.weight) for b in blocks}
    assert len(ids) == 16
    assert net.unary.conv1[0].kernel_size == (5, 5) and net.unary.conv1[0].stride == (2, 2)
    assert net.final.out_channels == 1 and net.final.stride == (2, 2, 2)


@pytest.mark.parametrize("h,w", [(37, 53), (40, 41), (17, 64)])
def test_padding_round_trip_odd_sizes(h, w):
    torch.manual_seed(0)
    net = GCNet(TINY).eval()
    img = normalize_image(np.random.default_rng(1).random((h, w, 3), dtype=np.float32))
    padded, (oh, ow) = pad_to_multiple(img, TINY.multiple)
    assert padded.shape[-2] % 8 == 0 and padded.shape[-1] % 8 == 0
    assert padded.shape[-2] - h < 8 and padded.shape[-1] - w < 8
    assert torch.equal(padded[..., :h, :w], img)  # the original pixels keep their coordinates
    with torch.no_grad():
        disp, conf = net.predict(padded, padded, TINY.max_disp, "peak")
    assert disp.shape == padded.shape[:1] + padded.shape[2:]
    assert disp[0, :oh, :ow].shape == (h, w)
    assert torch.all((conf > 0) & (conf <= 1))


def test_network_rejects_sizes_off_the_multiple():
    net = GCNet(TINY)
    x = torch.zeros(1, 3, 12, 16)
    with pytest.raises(StereoKitError, match="divisible by 8"):
        net(x, x, 8)


def test_cost_volume_shifted_entries_equal_features_at_x_minus_d():
    torch.manual_seed(0)
    left, right = torch.randn(2, 3, 5, 9), torch.randn(2, 3, 5, 9)
    vol = concat_cost_volume(left, right, 4)
    assert vol.shape == (2, 6, 4, 5, 9)
    for d in range(4):
        assert torch.equal(vol[:, :3, d], left)
        for x in range(9):
            if x - d >= 0:
                assert torch.equal(vol[:, 3:, d, :, x], right[:, :, :, x - d])
            else:
                assert torch.all(vol[:, 3:, d, :, x] == 0)


def test_soft_argmin_expected_value_and_gradients():
    # sharp minimum at d = 5 -> 5; two equal minima at 2 and 4 -> exactly 3 (the expectation)
    cost = torch.full((1, 8, 1, 2), 100.0)
    cost[0, 5, 0, 0] = 0.0
    cost[0, 2, 0, 1] = cost[0, 4, 0, 1] = 0.0
    disp, prob = soft_argmin(cost, dim=1)
    assert disp[0, 0, 0].item() == pytest.approx(5.0, abs=1e-6)
    assert disp[0, 0, 1].item() == pytest.approx(3.0, abs=1e-6)
    assert torch.allclose(prob.sum(dim=1), torch.ones(1, 1, 2))
    # a smooth volume: the expectation of the softmax of -cost, computed by hand
    c = torch.tensor([3.0, 1.0, 0.5, 2.0]).view(1, 4, 1, 1)
    p = np.exp(-c.view(-1).numpy()) / np.exp(-c.view(-1).numpy()).sum()
    assert soft_argmin(c)[0].item() == pytest.approx(float((p * np.arange(4)).sum()), rel=1e-6)
    x = torch.randn(1, 6, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: soft_argmin(t)[0], (x,))
    assert confidence(prob, "peak")[0, 0, 0].item() == pytest.approx(1.0)
    assert confidence(prob, "entropy")[0, 0, 1].item() == pytest.approx(2 / 3, abs=1e-6)  # 1 - ln 2 / ln 8


def test_backward_through_the_network_gives_finite_gradients():
    torch.manual_seed(0)
    net = GCNet(TINY)
    x = torch.randn(1, 3, 16, 24)
    disp, _ = net.predict(x, torch.roll(x, -2, dims=-1), 8)
    disp.mean().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_a_few_training_steps_lower_the_loss():
    from stereokit.datasets.synthetic import make_scene

    torch.manual_seed(0)
    pairs = [make_scene(s, height=48, width=64, max_disp=8) for s in (5, 6)]
    sampler = CropSampler([pairs], (24, 40), 8, np.random.default_rng(0))
    left, right, gt = sampler.sample(2)
    net = GCNet(TINY).train()
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    valid = torch.isfinite(gt) & (gt < 8)
    losses = []
    for _ in range(15):
        disp, _ = net.predict(left, right, 8)
        loss = torch.nn.functional.l1_loss(disp[valid], gt[valid])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses


def test_validation_scenes_are_recognised():
    assert is_validation_scene("teddy") and is_validation_scene("middlebury2005/Art") and is_validation_scene("Wood2")
    assert not is_validation_scene("cones") and not is_validation_scene("Artwork")
    # MiddEval3 and other spellings, the same rule as the MC-CNN trainer (learned.splits.is_held_out)
    for name in ("ArtL", "teddyQ", "Art_half", "Art-2005", "wood2-full", "trainingH/Teddy"):
        assert is_validation_scene(name), name


def test_matcher_shapes_odd_sizes_and_ranges(tiny_weights):
    pair = _pair(37, 53)
    disp = gcnet(pair, 8, weights=tiny_weights)
    assert disp.shape == (37, 53) and disp.dtype == np.float32
    assert np.isfinite(disp).all() and disp.min() >= 0 and disp.max() <= 7
    # a range beyond the trained 8 runs at a reduced scale and still covers the requested range
    disp = gcnet(pair, 16, weights=tiny_weights)
    assert disp.shape == (37, 53) and disp.max() <= 15
    disp, conf = predict(pair, 8, min_disp=3, weights=tiny_weights, confidence="entropy")
    assert disp.min() >= 3 and disp.max() <= 10 and conf.shape == (37, 53)
    _, peak = predict(pair, 8, weights=tiny_weights, confidence="peak")
    strict = gcnet(pair, 8, weights=tiny_weights, min_confidence=1.0)  # only a certain pixel would stay
    assert np.array_equal(np.isnan(strict), peak < 1.0) and np.isnan(strict).mean() > 0.99


def test_matcher_tiles_under_a_memory_limit(tiny_weights):
    pair = _pair(60, 90)
    full = gcnet(pair, 8, weights=tiny_weights)
    tiled = gcnet(pair, 8, weights=tiny_weights, max_memory_gb=60 * 40 * 500 / 2**30)
    assert tiled.shape == full.shape and np.isfinite(tiled).all()
    with pytest.raises(StereoKitError, match="max_memory_gb"):
        gcnet(pair, 8, weights=tiny_weights, max_memory_gb=1e-7)


def test_spans_cover_every_pixel_once():
    spans = _spans(50, 16, 5, 3)
    cores = np.concatenate([np.arange(c0, c1) for c0, c1, _, _ in spans])
    assert np.array_equal(cores, np.arange(50))
    assert all(i0 == max(0, c0 - 5) and i1 == min(50, c1 + 3) for c0, c1, i0, i1 in spans)


def test_shift_right_and_scale_rules():
    img = np.arange(12, dtype=np.float32).reshape(2, 6)
    assert np.array_equal(_shift_right(img, 2)[0], [0, 0, 0, 1, 2, 3])
    assert np.array_equal(_shift_right(img, -1)[0], [1, 2, 3, 4, 5, 5])
    assert resolve_scale("auto", 64, 64) == 1.0
    assert resolve_scale("auto", 128, 64) == 0.5
    assert resolve_scale(0.5, 100, 64) == 0.5
    with pytest.raises(StereoKitError, match="beyond the 64"):
        resolve_scale(None, 65, 64)
    with pytest.raises(StereoKitError, match="scale"):
        resolve_scale("big", 65, 64)


def test_bad_input_raises_clear_errors(tiny_weights, tmp_path):
    with pytest.raises(StereoKitError, match="too small"):
        gcnet(_pair(6, 20), 4, weights=tiny_weights)
    with pytest.raises(StereoKitError, match="wider than the image"):
        gcnet(_pair(20, 8), 8, weights=tiny_weights)
    with pytest.raises(StereoKitError, match="beyond the 8"):
        gcnet(_pair(24, 40), 12, weights=tiny_weights, scale=None)
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(tiny_weights.read_bytes()[:200])
    with pytest.raises(StereoKitError, match="corrupt"):
        gcnet(_pair(24, 40), 8, weights=bad)
    other = tmp_path / "other.pt"
    torch.save({"format": "stereokit-gcnet-1", "config": TINY.to_dict(), "state_dict": {"x": torch.zeros(1)}}, other)
    with pytest.raises(StereoKitError, match="does not match"):
        gcnet(_pair(24, 40), 8, weights=other)
    with pytest.raises(StereoKitError, match="not found"):
        gcnet(_pair(24, 40), 8, weights=tmp_path / "missing.pt")


def test_same_input_same_output(tiny_weights):
    pair = _pair(30, 44, seed=3)
    assert np.array_equal(gcnet(pair, 8, weights=tiny_weights), gcnet(pair, 8, weights=tiny_weights))


@pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(), reason="shipped GCNet weights not built yet")
def test_shipped_weights_load_safely_and_beat_a_random_network(tmp_path):
    import cv2

    from stereokit.datasets import open_dataset

    obj = torch.load(DEFAULT_WEIGHTS, weights_only=True)
    assert obj["format"] == "stereokit-gcnet-1" and obj["config"] == CONFIGS["compact"].to_dict()
    assert DEFAULT_WEIGHTS.stat().st_size < 5 * 2**20
    net = load_weights(DEFAULT_WEIGHTS)
    torch.manual_seed(0)
    random_path = tmp_path / "random.pt"
    save_weights(GCNet(net.cfg), random_path)
    full = open_dataset("sample")[0]
    # half resolution for speed: 370x250, disparities up to ~30
    size = (full.width // 2, full.height // 2)
    gt = cv2.resize(full.gt, size, interpolation=cv2.INTER_NEAREST) * 0.5
    pair = StereoPair(cv2.resize(full.left, size, interpolation=cv2.INTER_AREA),
                      cv2.resize(full.right, size, interpolation=cv2.INTER_AREA), gt=gt)
    valid = np.isfinite(pair.gt)

    def bad2(weights):
        disp = gcnet(pair, 32, weights=weights)
        return float((np.abs(disp - pair.gt)[valid] > 2.0).mean())

    trained, random = bad2(DEFAULT_WEIGHTS), bad2(random_path)
    assert trained < 0.5 * random, (trained, random)


def _tiny_training_args(run):
    return ["--dataset", "synthetic:2:7", "--val", "none", "--crop", "32", "64", "--batch", "1", "--run", str(run),
            "--ckpt-every", "1", "--no-progress", "--seed", "3"]


def test_train_cli_checkpoints_resume_and_weights(tmp_path):
    from learned.gcnet.train import main

    run = tmp_path / "run"
    common = _tiny_training_args(run)
    assert main(common + ["--iters", "2"]) == 0
    ckpt = torch.load(run / "last.pt", weights_only=True)
    assert ckpt["iteration"] == 2 and set(ckpt) >= {"model", "optimizer", "rng", "iteration", "config"}
    assert main(common + ["--iters", "3", "--resume", str(run / "last.pt")]) == 0
    assert torch.load(run / "last.pt", weights_only=True)["iteration"] == 3
    meta = __import__("json").loads((run / "weights.json").read_text())
    assert meta["iterations"] == 3 and meta["seed"] == 3
    assert len(meta["command"]) == 2 and "--resume" in meta["command"][1]  # every command of the run, as MC-CNN
    net = load_weights(run / "weights.pt")
    assert net.cfg == CONFIGS["compact"] and not net.training


def _textured_shift(d: int, h: int = 40, w: int = 80, seed: int = 0) -> StereoPair:
    """Random uint8 texture with a constant true disparity d (left[x] = right[x - d])."""
    rng = np.random.default_rng(seed)
    tex = (rng.random((h, w + d, 3)) * 255).astype(np.uint8)
    return StereoPair(tex[:, :w], tex[:, d:])  # right[x - d] = tex[x - d + d] = left[x]


def test_unknown_option_is_reported_as_by_the_other_matchers(tiny_weights):
    import stereokit

    left, right = _pair(24, 40).left, _pair(24, 40).right
    known = "confidence, device, max_memory_gb, min_confidence, min_disp, scale, weights"  # gcnet's keywords
    with pytest.raises(StereoKitError, match=rf"^gcnet: unknown option\(s\) foo; known: {known}$"):
        stereokit.match(left, right, method="gcnet", max_disp=8, weights=tiny_weights, foo=1)
    with pytest.raises(StereoKitError, match=r"^sgm: unknown option\(s\) foo; known: "):  # the same wording
        stereokit.match(left, right, method="sgm", max_disp=8, foo=1)


@pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(), reason="shipped GCNet weights not built yet")
def test_out_of_range_estimates_are_nan_and_in_range_ones_unchanged():
    """At scale 1 the network always searches its trained 64 disparities: a narrower request must NaN the estimates
    beyond it and keep the others exactly (no clipping), and the full range (the normal case) stays dense."""
    near, far = _textured_shift(5, h=24, seed=1), _textured_shift(30, h=24, seed=2)
    pair = StereoPair(np.vstack([near.left, far.left]), np.vstack([near.right, far.right]))  # top d=5, bottom 30
    full = gcnet(pair, 64)
    assert np.isfinite(full).all() and full.min() >= 0 and full.max() < 64
    narrow = gcnet(pair, 16)
    inside = full < 16
    assert inside[:24, 5:].mean() > 0.9 and inside[24:, 30:].mean() < 0.1  # both kinds of pixel occur
    np.testing.assert_array_equal(np.isnan(narrow), ~inside)
    np.testing.assert_array_equal(narrow[inside], full[inside])
    shifted, _ = predict(pair, 16, min_disp=10)  # [10, 26): the same rule after the shift
    ref, _ = predict(pair, 64, min_disp=10)
    np.testing.assert_array_equal(np.isnan(shifted), ~(ref < 26))
    np.testing.assert_array_equal(shifted[ref < 26], ref[ref < 26])


@pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(), reason="shipped GCNet weights not built yet")
def test_shipped_weights_true_disparity_beyond_the_range_is_nan_not_the_last_disparity():
    """True disparity 30, max_disp 16: the network (64 disparities at scale 1) finds ~30; the old clipping returned
    every pixel as a valid 15.0."""
    far = gcnet(_textured_shift(30), 16)
    assert far.dtype == np.float32 and far.shape == (40, 80)
    assert np.isnan(far[:, 30:]).mean() > 0.9
    finite = far[np.isfinite(far)]
    assert np.all((finite >= 0) & (finite < 16))
    # the same scene searched where its disparity lies: found there, dense where the match exists
    shifted = gcnet(_textured_shift(30), 16, min_disp=20)
    assert np.isfinite(shifted[:, 30:]).all() and abs(float(np.median(shifted[:, 30:])) - 30) < 1
    near = gcnet(_textured_shift(5), 16)  # in range: dense, as before
    assert np.isfinite(near).all() and abs(float(np.median(near[:, 5:])) - 5) < 1


def test_bad_device_raises_naming_it_and_the_available_ones(tiny_weights):
    import stereokit
    from learned.common import available_devices, choose_device

    pair = _pair(24, 40)
    absent_cuda = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU, on any machine
    for device in ("tpu", "", "meta", absent_cuda, "cuda:-1", True, 1.5):
        with pytest.raises(StereoKitError, match="device.*available: auto, cpu") as err:
            choose_device(device)
        if isinstance(device, str) and device:
            assert repr(device) in str(err.value)
    if not torch.cuda.is_available():
        with pytest.raises(StereoKitError, match="'cuda' requested but CUDA is not available"):
            choose_device("cuda")
    assert choose_device("cpu") == torch.device("cpu") and "cpu" in available_devices()
    with pytest.raises(StereoKitError, match="unknown device 'tpu'; available: auto, cpu"):
        stereokit.match(pair.left, pair.right, method="gcnet", max_disp=8, weights=tiny_weights, device="tpu")
    with pytest.raises(StereoKitError, match="unknown device 'tpu'"):
        stereokit.match(pair.left, pair.right, method="mccnn-fast", max_disp=8, device="tpu")


@pytest.mark.parametrize("option,value,message", [
    ("min_confidence", "x", r"min_confidence must be a number in \[0, 1\]"),
    ("min_confidence", float("nan"), r"min_confidence must be a number in \[0, 1\]"),
    # both confidence kinds lie in [0, 1]: 1.5 would drop every pixel, -0.1 none
    ("min_confidence", 1.5, r"min_confidence must be a number in \[0, 1\]"),
    ("min_confidence", -0.1, r"min_confidence must be a number in \[0, 1\]"),
    ("min_confidence", True, r"min_confidence must be a number in \[0, 1\]"),
    ("scale", True, "scale must be 'auto', a number"),  # float(True) = 1.0 would switch the scaling off
    ("confidence", "bogus", "unknown confidence kind 'bogus'"),
    ("max_memory_gb", "x", "max_memory_gb must be a positive number"),
    ("max_memory_gb", 0, "max_memory_gb must be a positive number"),
    ("weights", 123, "weights must be the path of a weights file"),
    ("weights", "", "weights must be the path of a weights file"),
])
def test_bad_option_values_raise_clear_errors(tiny_weights, option, value, message):
    params = {"weights": tiny_weights, option: value}
    with pytest.raises(StereoKitError, match=message):
        gcnet(_pair(24, 40), 8, **params)


# ------------------------------------------------------------------------------------------------ training CLI checks

_TRAIN = ["--dataset", "synthetic:2:7", "--val", "none", "--crop", "32", "64", "--batch", "1", "--no-progress"]


def test_resume_matches_an_uninterrupted_run_and_keeps_every_session(tmp_path):
    import json

    from learned.gcnet.train import main

    a, b = tmp_path / "a", tmp_path / "b"
    assert main(_TRAIN + ["--seed", "3", "--iters", "4", "--run", str(a)]) == 0
    assert main(_TRAIN + ["--seed", "3", "--iters", "2", "--run", str(b)]) == 0
    ck = torch.load(b / "last.pt", weights_only=True)
    assert ck["format"] == "stereokit-gcnet-checkpoint-1" and ck["settings"]["batch"] == 1
    ck["wall"] = 1000.0  # as if the first session had run for 1000 s
    torch.save(ck, b / "last.pt")
    # the settings left out (dataset, crop, batch, seed) come from the checkpoint, the run folder from its path
    assert main(["--iters", "4", "--val", "none", "--no-progress", "--resume", str(b / "last.pt")]) == 0
    wa, wb = load_weights(a / "weights.pt").state_dict(), load_weights(b / "weights.pt").state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    log_a = [json.loads(line) for line in (a / "log.jsonl").read_text().splitlines()]
    log_b = [json.loads(line) for line in (b / "log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in log_b] == [2, 4] and log_b[-1]["loss"] == log_a[-1]["loss"]  # same loss window
    meta = json.loads((b / "weights.json").read_text())
    assert meta["train_wall_s"] >= 1000 and log_b[-1]["elapsed_s"] >= 1000  # every session counted
    assert len(meta["command"]) == 2 and "--resume" in meta["command"][1] and meta["batch"] == 1


def test_rerun_resume_and_settings_are_checked_before_anything_is_written(tmp_path):
    from learned.gcnet.train import main

    run = tmp_path / "run"
    assert main(_TRAIN + ["--iters", "2", "--run", str(run)]) == 0
    before = {f: (run / f).read_bytes() for f in ("last.pt", "weights.pt", "weights.json", "log.jsonl")}
    with pytest.raises(StereoKitError, match=r"run already holds a training run \(last.pt, weights.pt\); continue it "
                                             r"with --resume .*last.pt or choose another --run"):
        main(_TRAIN + ["--iters", "2", "--run", str(run)])
    with pytest.raises(StereoKitError, match="--resume: no checkpoint at .*nothing.pt"):
        main(_TRAIN + ["--iters", "4", "--resume", str(run / "nothing.pt")])
    with pytest.raises(StereoKitError, match="--resume: .*weights.pt is a GC-Net weights file, not a GC-Net checkpoint"):
        main(_TRAIN + ["--iters", "4", "--resume", str(run / "weights.pt")])
    with pytest.raises(StereoKitError, match=r"--config 'paper' \(checkpoint: 'compact'\); --batch 2 \(checkpoint: 1\); "
                                             r"--optim 'adam' \(checkpoint: 'rmsprop'\); --seed 5 \(checkpoint: 0\)"):
        main(_TRAIN[:-2] + ["2", "--no-progress", "--config", "paper", "--optim", "adam", "--seed", "5", "--iters", "4",
                            "--resume", str(run / "last.pt")])
    with pytest.raises(StereoKitError, match="is at iteration 2, not below --iters 2"):
        main(_TRAIN + ["--iters", "2", "--resume", str(run / "last.pt")])
    assert {f: (run / f).read_bytes() for f in before} == before
    other = tmp_path / "other"
    assert main(_TRAIN + ["--iters", "1", "--run", str(other)]) == 0
    with pytest.raises(StereoKitError, match="other already holds another checkpoint"):
        main(_TRAIN + ["--iters", "4", "--resume", str(run / "last.pt"), "--run", str(other)])


@pytest.mark.parametrize("option,values,message", [
    ("--iters", ["0"], "--iters must be a positive integer, got 0"),
    ("--iters", ["-5"], "--iters must be a positive integer"),
    ("--val-every", ["0"], "--val-every must be a positive integer"),
    ("--ckpt-every", ["0"], "--ckpt-every must be a positive integer"),
    ("--batch", ["0"], "--batch must be a positive integer"),
    ("--lr", ["nan"], "--lr must be a positive number"),
    ("--crop", ["-8", "-8"], "--crop must be a positive integer, got -8"),
    ("--crop", ["30", "64"], r"--crop 30 64: both must be multiples of 16 for this network \(e.g. --crop 32 64\)"),
    ("--out", ["."], "--out . is a folder"),
])
def test_bad_options_are_refused_before_the_run_folder_exists(tmp_path, option, values, message):
    from learned.gcnet.train import main

    with pytest.raises(StereoKitError, match=message):
        main(_TRAIN + ["--iters", "1", "--run", str(tmp_path / "run"), option, *values])
    assert not (tmp_path / "run").exists()


def test_failed_starts_leave_nothing_and_other_network_files_are_named(tmp_path):
    from learned.gcnet.train import main
    from learned.mccnn.model import FastNet
    from learned.mccnn.train import export_weights

    run = tmp_path / "run"
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StereoKitError, match="--out .*afile/w.pt: .*afile is a file, not a folder"):
        main(_TRAIN + ["--run", str(run), "--out", str(tmp_path / "afile" / "w.pt")])
    with pytest.raises(StereoKitError, match="unknown dataset 'nope'"):
        main(["--dataset", "nope:1", "--val", "none", "--run", str(run)])
    mccnn = tmp_path / "mccnn.pt"
    export_weights(FastNet("middlebury"), mccnn, {})
    with pytest.raises(StereoKitError, match="--init: .*mccnn.pt is an MC-CNN weights file, not a GC-Net one"):
        main(_TRAIN + ["--run", str(run), "--init", str(mccnn)])
    with pytest.raises(StereoKitError, match="mccnn.pt is an MC-CNN weights file, not a GC-Net one"):
        gcnet(_pair(24, 40), 8, weights=mccnn)
    assert not run.exists()
    ckpt = tmp_path / "mc" / "checkpoint.pt"
    from learned.mccnn.train import main as train_mccnn

    train_mccnn(["--dataset", "synthetic:2", "--validation", "none", "--iterations", "1", "--batch-size", "4",
                 "--no-progress", "--out", str(ckpt.parent)])
    with pytest.raises(StereoKitError, match="--resume: .*checkpoint.pt is an MC-CNN checkpoint, not a GC-Net one"):
        main(_TRAIN + ["--iters", "4", "--resume", str(ckpt), "--run", str(run)])
    assert not run.exists()


# ------------------------------------------------------------------------------------------------ mutation round D
# Behaviour the tests above left open (each test below fails on a planted bug that the suite let through).


class _StubNet(torch.nn.Module):
    """Stands in for a GCNet in the matcher: exact per-pixel WTA of |left - right(x - d)| over the num_disp
    disparities inside the tile it is given (inf outside), or a constant disparity `const`."""

    def __init__(self, const=None):
        super().__init__()
        self.cfg = TINY
        self.const = const
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.calls = 0

    def predict(self, left, right, num_disp, conf=None):
        n, _, h, w = left.shape
        self.calls += 1
        if self.const is not None:
            disp = torch.full((n, h, w), float(self.const))
        else:
            cost = torch.full((n, num_disp, h, w), float("inf"))
            for d in range(min(num_disp, w)):
                cost[:, d, :, d:] = (left[..., d:] - right[..., : w - d]).abs().sum(1)
            disp = cost.argmin(1).float()
        return disp, (torch.ones(n, h, w) if conf else None)


def test_tiles_carry_the_disparity_range_as_left_context():
    """Tiled inference equals untiled inference for a network that looks num_disp px to the left: every candidate
    match of a kept pixel lies inside its tile (square tiles of a wide image under a small memory budget; a true
    disparity of 24, beyond the 16 px tile overlap)."""
    from learned.gcnet.matcher import _run_tiles, bytes_per_pixel

    rng = np.random.default_rng(0)
    tex = torch.from_numpy(rng.random((1, 3, 100, 224), dtype=np.float32))
    left, right = tex[..., :200], tex[..., 24:]  # right[x - 24] = tex[x] = left[x]
    net = _StubNet()
    full, _ = _run_tiles(net, left, right, 32, None, 1.0)
    assert (full[:, 24:] == 24).all()
    budget = 12000 * bytes_per_pixel(net, 32) / 2**30  # forces square tiles (64 x 32 px cores)
    net.calls = 0
    tiled, _ = _run_tiles(net, left, right, 32, None, budget)
    assert net.calls == 2 * 7  # 2 rows x 7 columns of tiles
    np.testing.assert_array_equal(tiled, full)


def test_scaled_disparities_are_divided_by_the_actual_resize_factor(monkeypatch):
    """scale="auto" for max_disp 16 on an 8-disparity network: the image is resized to round(w * 0.5) columns and
    the disparity divided by that width's actual factor (53 -> 26 columns: x 53/26, not x 2)."""
    from learned.gcnet import matcher

    monkeypatch.setattr(matcher, "load_model", lambda weights=None, device=None: _StubNet(const=3.0))
    assert resolve_scale("auto", 96, 64) == 64 / 96  # the exact ratio, not rounded
    disp, _ = predict(_pair(40, 53), 16)
    np.testing.assert_allclose(disp, 3.0 * 53 / 26, rtol=1e-6)
    disp, _ = predict(_pair(40, 53), 16, min_disp=4)
    np.testing.assert_allclose(disp, 4 + 3.0 * 53 / 26, rtol=1e-6)


def test_min_confidence_uses_the_requested_confidence_kind(tiny_weights):
    pair = _pair(24, 40, seed=5)
    disp, conf = predict(pair, 8, weights=tiny_weights, confidence="entropy")
    _, peak = predict(pair, 8, weights=tiny_weights, confidence="peak")
    t = float(np.median(conf))
    assert (conf < t).any() and (peak < t).mean() != (conf < t).mean()  # the kinds disagree at this threshold
    out = gcnet(pair, 8, weights=tiny_weights, min_confidence=t, confidence="entropy")
    np.testing.assert_array_equal(np.isnan(out), conf < t)
    np.testing.assert_array_equal(out[conf >= t], disp[conf >= t])


def test_unary_tower_ends_in_a_bare_convolution():
    """Layer 18: a 3x3 conv without BN or ReLU, so unary features can be negative."""
    torch.manual_seed(0)
    net = GCNet(TINY).eval()
    assert type(net.unary.last) is torch.nn.Conv2d and net.unary.last.kernel_size == (3, 3)
    with torch.no_grad():
        assert (net.unary(torch.randn(1, 3, 16, 16)) < 0).any()


def _gt_pair(h, w, gt, seed=0, name="p"):
    rng = np.random.default_rng(seed)
    return StereoPair(rng.random((h, w, 3), dtype=np.float32), rng.random((h, w, 3), dtype=np.float32),
                      gt=np.asarray(gt, np.float32), name=name)


def test_crop_sampler_shares_datasets_equally_and_pads_gt_as_invalid():
    one = [_gt_pair(16, 16, np.full((16, 16), 1.0))]
    nine = [_gt_pair(16, 16, np.full((16, 16), 2.0), seed=s) for s in range(1, 10)]
    s = CropSampler([one, nine], (16, 16), 8, np.random.default_rng(0))
    _, _, gt = s.sample(400)
    assert 0.4 < float((gt[:, 0, 0] == 1.0).float().mean()) < 0.6  # each --dataset half the crops
    small = CropSampler([[_gt_pair(10, 12, np.full((10, 12), 3.0))]], (16, 16), 8, np.random.default_rng(0),
                        multiple=16)
    left, right, gt = small.sample(1)
    assert left.shape == (1, 3, 16, 16) and gt.shape == (1, 16, 16)
    assert (gt[0, :10, :12] == 3.0).all() and torch.isnan(gt[0, 10:]).all() and torch.isnan(gt[0, :, 12:]).all()


def test_trainer_synthetic_spec_errors_name_the_spec():
    from learned.gcnet.train import _open

    assert _open("synthetic:2:30", 16).names == ["synthetic-00030", "synthetic-00031"]
    assert _open("synthetic:1", 16)[0].gt.max() <= 15  # generated with the network's disparity range
    with pytest.raises(StereoKitError, match=r"bad dataset spec 'synthetic:abc': N must be an integer"):
        _open("synthetic:abc", 16)


def test_crop_sampler_refuses_a_crop_beyond_every_pair():
    """Up to the largest pair rounded up to the network's multiple is allowed (padded); beyond it is refused."""
    sets = [[_gt_pair(20, 30, np.ones((20, 30)))], [_gt_pair(40, 10, np.ones((40, 10)))]]
    assert CropSampler(sets, (48, 32), 8, np.random.default_rng(0), multiple=16).sample(1)[0].shape == (1, 3, 48, 32)
    with pytest.raises(StereoKitError, match=r"--crop 48 48 is larger than every training pair.*48 32"):
        CropSampler(sets, (48, 48), 8, np.random.default_rng(0), multiple=16)
    with pytest.raises(StereoKitError, match=r"--crop 41 30 .*largest useful crop is 40 30"):
        CropSampler(sets, (41, 30), 8, np.random.default_rng(0))


def test_resized_dataset_scales_its_disparities():
    from learned.gcnet.train import parse_spec, resize_pair

    gt = np.full((20, 40), 12.0, np.float32)
    gt[:, :4] = np.nan
    half = resize_pair(_gt_pair(20, 40, gt), 0.5)
    assert half.shape == (10, 20) and np.nanmax(half.gt) == 6.0 and np.isnan(half.gt[:, :2]).all()
    assert parse_spec("middlebury:/d@0.5") == ("middlebury:/d", 0.5) and parse_spec("sample") == ("sample", 1.0)
    assert parse_spec("middlebury:/a@b/c") == ("middlebury:/a@b/c", 1.0)  # an @ inside the path is the path's
    assert parse_spec("synthetic:2@4") == ("synthetic:2", 4.0) and parse_spec("x@.25") == ("x", 0.25)
    for bad in ("synthetic:2@-1", "synthetic:2@abc", "x@", "x@0", "x@4.5", "x@nan", "x@inf"):
        with pytest.raises(StereoKitError, match=r"bad scale in dataset spec .*a number in \(0, 4\]"):
            parse_spec(bad)


def test_validation_is_pixel_weighted_epe_and_bad2_within_the_range():
    """EPE and bad-2.0 pooled over pixels of all pairs, valid GT below max_disp only (network output: 3 px)."""
    from learned.gcnet.train import validate

    a = np.full((16, 16), 3.0)
    a[0, :4] = 5.5  # 2.5 px off: bad
    a[1, :4] = 5.0  # exactly 2 px off: not bad
    a[2, :4] = np.nan
    a[3, :4] = 9.0  # beyond max_disp 8: not scored
    b = np.full((16, 16), 4.0)  # 1 px off everywhere
    pairs = [_gt_pair(16, 16, a), _gt_pair(16, 32, np.hstack([b, b]))]
    out = validate(_StubNet(const=3.0), pairs, 8, torch.device("cpu"))
    n = (256 - 8) + 512
    assert out["epe"] == pytest.approx((4 * 2.5 + 4 * 2.0 + 512 * 1.0) / n)
    assert out["bad2"] == pytest.approx(100 * 4 / n)


def test_training_step_is_l1_on_valid_gt_in_range_with_rmsprop(tmp_path, monkeypatch):
    """The first logged loss is the L1 between the soft-argmin disparity and the GT pixels that are finite and in
    [0, max_disp), recomputed here from the same seed; the optimiser is RMSprop with the paper's lr 1e-3."""
    from learned.common import seed_everything
    from learned.gcnet import train

    gt = np.full((64, 128), 10.0, np.float32)
    gt[:, :20] = 70.0  # beyond the compact network's 64 disparities
    gt[:8] = np.nan
    sets = [[_gt_pair(64, 128, gt, seed=4)]]
    monkeypatch.setattr(train, "load_sets", lambda specs, m, s: (sets, [{"spec": "x"}]))
    run = tmp_path / "run"
    assert train.main(["--dataset", "x", "--val", "none", "--crop", "64", "128", "--batch", "1", "--iters", "1",
                       "--seed", "2", "--run", str(run), "--no-progress"]) == 0
    logged = json.loads((run / "log.jsonl").read_text().splitlines()[0])["loss"]
    seed_everything(2)
    net = GCNet(CONFIGS["compact"]).train()
    left, right, g = CropSampler(sets, (64, 128), 64, np.random.default_rng(2)).sample(1)
    disp, _ = net.predict(left, right, 64)
    valid = torch.isfinite(g) & (g >= 0) & (g < 64)
    assert logged == pytest.approx(float((disp[valid] - g[valid]).abs().mean().detach()), rel=1e-5)
    opt = torch.load(run / "last.pt", weights_only=True)["optimizer"]
    assert opt["param_groups"][0]["lr"] == 1e-3 and "square_avg" in next(iter(opt["state"].values()))
    assert "exp_avg" not in next(iter(opt["state"].values()))


def test_init_starts_training_from_the_given_weights(tmp_path):
    """--init loads the weights: with a negligible lr (1e-30) the trained parameters stay the given ones."""
    from learned.gcnet.train import main

    torch.manual_seed(7)
    start = GCNet(CONFIGS["compact"])
    save_weights(start, tmp_path / "start.pt")
    assert main(_TRAIN + ["--iters", "1", "--lr", "1e-30", "--init", str(tmp_path / "start.pt"), "--run",
                          str(tmp_path / "run")]) == 0
    got = load_weights(tmp_path / "run" / "weights.pt")
    for (name, p), q in zip(start.named_parameters(), got.parameters()):
        torch.testing.assert_close(q, p, rtol=0, atol=1e-20, msg=name)  # a zero bias moves by ~1e-29


@pytest.mark.parametrize("change, words", [
    ({"features": "8"}, "features must be an integer >= 1, got '8'"),
    ({"features": -8}, "features must be an integer >= 1"),
    ({"volume_channels": "8,16"}, "volume_channels must be a list of integers"),
    ({"max_disp": True}, "max_disp must be an integer"),
])
def test_weights_config_with_wrong_types_raises_naming_the_file(tiny_weights, tmp_path, change, words):
    obj = torch.load(tiny_weights, weights_only=True)
    obj["config"] = {**obj["config"], **change}
    torch.save(obj, tmp_path / "cfg.pt")
    with pytest.raises(StereoKitError, match=rf"cfg\.pt: bad GCNet config .*{words}"):
        load_weights(tmp_path / "cfg.pt")


def test_weights_config_asking_for_a_huge_network_is_refused_before_allocating(tiny_weights, tmp_path):
    obj = torch.load(tiny_weights, weights_only=True)
    for features, words in ((10**5, " does not match the network"), (10**9, ": GCNet config .* describes no network")):
        obj["config"] = {**obj["config"], "features": features}  # >= 10**10 floats if it were built
        torch.save(obj, tmp_path / "huge.pt")
        with pytest.raises(StereoKitError, match=rf"huge\.pt{words}"):
            load_weights(tmp_path / "huge.pt")
    sd = dict(obj["state_dict"])
    key = next(k for k, v in sd.items() if v.is_floating_point())
    sd[key] = torch.full_like(sd[key], float("inf"))
    torch.save({**torch.load(tiny_weights, weights_only=True), "state_dict": sd}, tmp_path / "inf.pt")
    with pytest.raises(StereoKitError, match=rf"inf\.pt: {key} holds NaN or infinite values"):
        load_weights(tmp_path / "inf.pt")


def test_resume_from_a_damaged_checkpoint_names_it(tmp_path):
    from learned.gcnet.train import main

    run = tmp_path / "run"
    common = _tiny_training_args(run)
    assert main(common + ["--iters", "1"]) == 0
    good = torch.load(run / "last.pt", weights_only=True)
    for change in (lambda c: c.pop("rng"), lambda c: c.update(sampler_rng="{"), lambda c: c.update(iteration="x")):
        ck = dict(good)
        change(ck)
        torch.save(ck, run / "last.pt")
        with pytest.raises(StereoKitError, match=r"--resume: .*last\.pt is a damaged checkpoint"):
            main(common + ["--iters", "2", "--resume", str(run / "last.pt")])


def test_a_run_stopped_between_its_last_checkpoint_and_its_weights_can_be_finished(tmp_path, capsys):
    from learned.gcnet.train import main

    a, b = tmp_path / "a", tmp_path / "b"
    assert main(_tiny_training_args(a) + ["--iters", "2"]) == 0
    assert main(_tiny_training_args(b) + ["--iters", "2"]) == 0
    for name in ("weights.pt", "weights.json"):  # killed after last.pt (iteration 2 of 2) was written
        (b / name).unlink()
    assert main(_tiny_training_args(b) + ["--iters", "2", "--resume", str(b / "last.pt")]) == 0
    assert "is at its last iteration (2); writing the final weights" in capsys.readouterr().err
    wa, wb = load_weights(a / "weights.pt").state_dict(), load_weights(b / "weights.pt").state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    with pytest.raises(StereoKitError, match=r"last\.pt is at iteration 2, not below --iters 2"):
        main(_tiny_training_args(b) + ["--iters", "2", "--resume", str(b / "last.pt")])
