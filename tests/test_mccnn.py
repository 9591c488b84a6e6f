"""MC-CNN: networks, fully convolutional exactness, sampler, training, weights, matcher."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from learned.mccnn.model import AccurateNet, FastNet, mccnn_cost_volume, normalize_image
from learned.mccnn.sampler import (
    OFFSETS,
    Augmentation,
    PatchSampler,
    Scene,
    occlusion_from_gt,
    prepare_scene,
    valid_samples,
)
from stereokit import StereoKitError, StereoPair


def _texture(rng, h, w):
    import cv2

    return cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 1.0)


def _shifted_pair(seed=0, h=40, w=64, d=5, name="toy"):
    """Random texture with a constant disparity d (right[x - d] = left[x]); GT NaN where x - d < 0."""
    rng = np.random.default_rng(seed)
    tex = _texture(rng, h, w + d)
    left, right = tex[:, :w], tex[:, d:]  # right[x - d] = tex[x] = left[x]
    gt = np.full((h, w), float(d), np.float32)
    gt[:, :d] = np.nan
    return StereoPair(left, right, gt=gt, name=name)


def _patch(padded, y, x, r):
    return padded[y : y + 2 * r + 1, x : x + 2 * r + 1]


# ------------------------------------------------------------------------------------------------ networks


@pytest.mark.parametrize("setting,patch", [("middlebury", 11), ("kitti", 9)])
def test_shapes_and_patch_size(setting, patch):
    fast, acrt = FastNet(setting), AccurateNet(setting)
    assert fast.patch_size == acrt.patch_size == patch
    x = torch.randn(3, 1, patch, patch)
    assert fast.features(x).shape == (3, 64, 1, 1)
    assert acrt.features(x).shape == (3, 112, 1, 1)
    assert fast(x, x).shape == (3,) and acrt(x, x).shape == (3,)
    assert torch.allclose(fast(x, x), torch.ones(3), atol=1e-5)  # cosine of a vector with itself
    n_fc = sum(isinstance(m, torch.nn.Linear) for m in acrt.head)
    assert n_fc == {"middlebury": 3, "kitti": 4}[setting] + 1  # hidden 384-unit layers + the 1-unit output
    assert acrt.head[0].in_features == 224 and acrt.head[0].out_features == 384
    # paper: no ReLU after the fast tower's last conv, a ReLU after every acrt conv
    assert not isinstance(fast.tower[-1], torch.nn.ReLU) and isinstance(acrt.tower[-1], torch.nn.ReLU)
    with pytest.raises(StereoKitError):
        FastNet("eth3d")


def test_receptive_field_is_the_patch():
    torch.manual_seed(0)
    net = FastNet("kitti")  # 9x9
    img = torch.randn(30, 30, requires_grad=True)
    f = net.feature_map(img)
    assert f.shape == (64, 30, 30)
    f[:, 15, 12].sum().backward()
    ys, xs = np.nonzero(img.grad.numpy())
    assert ys.min() == 11 and ys.max() == 19 and xs.min() == 8 and xs.max() == 16


def test_fast_cost_is_one_minus_cosine_of_patch_features():
    torch.manual_seed(1)
    net = FastNet("middlebury").eval()
    rng = np.random.default_rng(0)
    left, right = rng.random((17, 23)).astype(np.float32), rng.random((17, 23)).astype(np.float32)
    vol = mccnn_cost_volume(net, left, right, max_disp=6, min_disp=-2)
    assert vol.shape == (17, 23, 6) and vol.dtype == np.float32
    r = net.radius
    pl = np.pad(normalize_image(left), r)
    pr = np.pad(normalize_image(right), r)
    for y, x, k in [(0, 0, 2), (8, 11, 0), (16, 22, 3), (5, 5, 5), (3, 21, 1), (12, 4, 4)]:
        d = k - 2
        if not 0 <= x - d < 23:
            assert np.isinf(vol[y, x, k])
            continue
        a = torch.from_numpy(_patch(pl, y, x, r).copy())[None, None]
        b = torch.from_numpy(_patch(pr, y, x - d, r).copy())[None, None]
        with torch.no_grad():
            fa, fb = net.tower(a).flatten(), net.tower(b).flatten()
        cos = float(F.cosine_similarity(fa, fb, dim=0))
        assert abs(vol[y, x, k] - (1 - cos)) < 1e-5
    assert np.isinf(vol[:, 0, 3:]).all() and np.isinf(vol[:, 22, 0]).all()  # x - d outside on both sides
    assert np.isfinite(vol[:, 3:21]).all()


def test_accurate_cost_equals_patch_by_patch():
    torch.manual_seed(2)
    net = AccurateNet("kitti").eval()
    rng = np.random.default_rng(1)
    left, right = rng.random((12, 19)).astype(np.float32), rng.random((12, 19)).astype(np.float32)
    vol = mccnn_cost_volume(net, left, right, max_disp=5, chunk_pixels=40)  # several chunks per disparity
    r = net.radius
    pl, pr = np.pad(normalize_image(left), r), np.pad(normalize_image(right), r)
    ys, xs, ks = np.meshgrid(np.arange(12), np.arange(19), np.arange(5), indexing="ij")
    ok = xs - ks >= 0
    a = np.stack([_patch(pl, y, x, r) for y, x in zip(ys[ok], xs[ok])])[:, None]
    b = np.stack([_patch(pr, y, x - k, r) for y, x, k in zip(ys[ok], xs[ok], ks[ok])])[:, None]
    with torch.no_grad():
        s = net(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(vol[ok], 1 - s, atol=1e-5)
    assert np.isinf(vol[~ok]).all()


# ------------------------------------------------------------------------------------------------ sampler


def test_sampler_offsets_in_paper_ranges_and_only_valid_pixels():
    pair = _shifted_pair(seed=3, h=30, w=50, d=6)
    gt = pair.gt.copy()
    gt[10:14, 20:30] = np.nan  # unknown GT
    nonocc = np.ones(gt.shape, bool)
    nonocc[20:25, 30:40] = False  # occluded
    pair = StereoPair(pair.left, pair.right, gt=gt, nonocc=nonocc)
    scene = prepare_scene(pair)
    for setting, arch in OFFSETS:
        pos, lo, hi = OFFSETS[(setting, arch)]
        s = PatchSampler([scene], 11, (pos, lo, hi), Augmentation(), seed=5)
        b = s.draw(2000)
        assert np.all(np.abs(b["d_pos"]) <= pos)
        assert np.all((np.abs(b["d_neg"]) >= lo) & (np.abs(b["d_neg"]) <= hi))
        assert (b["d_neg"] < 0).any() and (b["d_neg"] > 0).any()
        assert np.isfinite(gt[b["y"], b["x"]]).all() and nonocc[b["y"], b["x"]].all()
        assert np.all(b["x"] - b["d"] >= 0)
    assert OFFSETS[("middlebury", "fast")] == (0.5, 1.5, 6.0) and OFFSETS[("middlebury", "acrt")] == (0.5, 1.5, 18.0)
    assert OFFSETS[("kitti", "fast")] == (1.0, 4.0, 10.0)


def test_sampler_patches_are_bilinear_cuts_at_the_offsets():
    pair = _shifted_pair(seed=4, h=30, w=50, d=4)
    scene = prepare_scene(pair)
    s = PatchSampler([scene], 9, (0.5, 1.5, 6.0), Augmentation.identity(), seed=0)
    b = s.draw(64)
    import cv2

    for i in range(64):
        y, x, d = b["y"][i], b["x"][i], b["d"][i]
        np.testing.assert_allclose(b["left"][i, 0], np.pad(scene.left, 4)[y : y + 9, x : x + 9], atol=1e-6)
        for key, off in (("pos", b["d_pos"][i]), ("neg", b["d_neg"][i])):
            xs = (np.arange(9) - 4 + x - d + off).astype(np.float32)
            ys = (np.arange(9) - 4 + y).astype(np.float32)
            mx, my = np.meshgrid(xs, ys)
            ref = cv2.remap(scene.right, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            np.testing.assert_allclose(b[key][i, 0], ref, atol=1e-2)  # cv2 uses 5-bit interpolation weights


def test_sampler_is_seeded_and_resumable():
    scene = prepare_scene(_shifted_pair())
    a = PatchSampler([scene], 11, (0.5, 1.5, 6.0), seed=7)
    b = PatchSampler([scene], 11, (0.5, 1.5, 6.0), seed=7)
    a.draw(10)
    state = a.state()
    x1 = a.draw(10)["pos"]
    b.set_state(state)
    np.testing.assert_array_equal(x1, b.draw(10)["pos"])


def test_occlusion_from_gt():
    gt = np.full((1, 12), 1.0, np.float32)
    gt[0, 6:] = 4.0  # foreground from x=6 hides background columns whose match x-1 lands on 2..7
    occ = occlusion_from_gt(gt)
    assert occ[0].tolist() == [False] * 3 + [True] * 3 + [False] * 6
    ys, xs, ds = valid_samples(gt)
    assert set(xs.tolist()) == {1, 2} | set(range(6, 12))


# ------------------------------------------------------------------------------------------------ training


def test_training_pairs_add_each_right_view_after_its_pair():
    from learned.mccnn.train import load_training_pairs

    plain = load_training_pairs(["synthetic:2:5"])
    both = load_training_pairs(["synthetic:2:5", "sample"], right_views=True)
    names = ["synthetic-00005", "synthetic-00006"]
    assert [p.name for p in plain] == names
    # sample has no right-view GT, so no mirrored copy; the copies keep their spec's index for --balance
    assert [(p.name, p.meta["train_source"]) for p in both] == [
        (names[0], 0), (names[0] + "-R", 0), (names[1], 0), (names[1] + "-R", 0), ("motorcycle", 1)]
    np.testing.assert_array_equal(both[1].left, plain[0].right[:, ::-1])


def _toy_training(monkeypatch, tmp_path, argv, n_train=3):
    from learned.mccnn import train

    monkeypatch.setattr(train, "load_training_pairs",
                        lambda specs, right_views=False: [_shifted_pair(seed=s, d=2 + s) for s in range(n_train)])
    monkeypatch.setattr(train, "load_validation_pairs", lambda spec, ds=1: [_shifted_pair(seed=99, d=4, name="teddy")])
    return train.main(argv + ["--out", str(tmp_path), "--no-progress", "--threads", "1"])


def test_resume_continues_exactly(monkeypatch, tmp_path):
    args = ["--batch-size", "16", "--iterations", "6", "--checkpoint-every", "3", "--validate-every", "100"]
    _toy_training(monkeypatch, tmp_path / "a", args)
    full = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["state_dict"]

    from learned.mccnn import train

    real_draw = PatchSampler.draw
    calls = {"n": 0}

    def interrupting_draw(self, n):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # dies after the checkpoint at iteration 3
        return real_draw(self, n)

    monkeypatch.setattr(PatchSampler, "draw", interrupting_draw)
    with pytest.raises(KeyboardInterrupt):
        _toy_training(monkeypatch, tmp_path / "b", args)
    monkeypatch.setattr(PatchSampler, "draw", real_draw)
    ck = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert ck["iteration"] == 3
    _toy_training(monkeypatch, tmp_path / "b", args + ["--resume"])
    resumed = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["state_dict"]
    for k in full:
        torch.testing.assert_close(full[k], resumed[k], rtol=0, atol=0)
    meta_a = json.loads((tmp_path / "a" / "model.json").read_text())
    meta_b = json.loads((tmp_path / "b" / "model.json").read_text())
    assert meta_a["final_loss"] == meta_b["final_loss"]
    assert len(meta_b["command"]) == 2 and "--resume" in meta_b["command"][1]
    assert train  # module imported for monkeypatching


def test_init_starts_from_given_weights_and_rejects_mismatched_ones(monkeypatch, tmp_path):
    args = ["--batch-size", "8", "--iterations", "2", "--validate-every", "100"]
    _toy_training(monkeypatch, tmp_path / "a", args + ["--seed", "1"])
    trained = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["state_dict"]
    # lr 1e-30 (0 is refused): steps far below float32 resolution leave the weights where they started, so they
    # show what --init loaded
    _toy_training(monkeypatch, tmp_path / "b", args + ["--lr", "1e-30", "--init", str(tmp_path / "a" / "model.pt")])
    _toy_training(monkeypatch, tmp_path / "c", args + ["--lr", "1e-30"])
    started = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["state_dict"]
    random = torch.load(tmp_path / "c" / "model.pt", weights_only=True)["state_dict"]
    for k in trained:
        torch.testing.assert_close(started[k], trained[k], rtol=0, atol=0)
    assert not all(torch.equal(random[k], trained[k]) for k in trained)
    assert json.loads((tmp_path / "b" / "model.json").read_text())["init"] == str(tmp_path / "a" / "model.pt")
    with pytest.raises(StereoKitError, match="'middlebury' setting, not 'kitti'"):
        _toy_training(monkeypatch, tmp_path / "d", args + ["--setting", "kitti", "--init", str(tmp_path / "a" / "model.pt")])
    with pytest.raises(StereoKitError, match="not found"):
        _toy_training(monkeypatch, tmp_path / "e", args + ["--init", str(tmp_path / "missing.pt")])


def test_rerun_into_a_run_folder_is_refused_and_resume_needs_a_checkpoint(monkeypatch, tmp_path):
    args = ["--batch-size", "8", "--iterations", "2", "--validate-every", "100"]
    _toy_training(monkeypatch, tmp_path / "a", args)
    before = {f: (tmp_path / "a" / f).read_bytes() for f in ("checkpoint.pt", "model.pt", "model.json", "log.jsonl")}
    with pytest.raises(StereoKitError, match=r"a already holds a training run \(checkpoint.pt, model.pt\); continue it "
                                             r"with --resume or choose another --out"):
        _toy_training(monkeypatch, tmp_path / "a", args)
    assert {f: (tmp_path / "a" / f).read_bytes() for f in before} == before  # nothing overwritten or appended
    with pytest.raises(StereoKitError, match="--resume: .*b holds no checkpoint to resume"):
        _toy_training(monkeypatch, tmp_path / "b", args + ["--resume"])
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("option,value,message", [
    ("--iterations", "0", "--iterations must be a positive integer, got 0"),
    ("--iterations", "-3", "--iterations must be a positive integer, got -3"),
    ("--lr", "nan", "--lr must be a positive number, got nan"),
    ("--lr", "0", "--lr must be a positive number"),
    ("--batch-size", "0", "--batch-size must be a positive integer"),
    ("--batch-size", "-8", "--batch-size must be a positive integer"),
    ("--checkpoint-every", "0", "--checkpoint-every must be a positive integer"),
    ("--validate-every", "0", "--validate-every must be a positive integer"),
    ("--threads", "-1", "--threads must be a positive integer"),
    ("--momentum", "-0.1", "--momentum must be a non-negative number"),
    ("--momentum", "1", r"--momentum must be below 1 \(SGD's velocity would never decay\), got 1.0"),
    ("--momentum", "1.5", "--momentum must be below 1"),
])
def test_bad_numeric_options_are_refused_before_the_run_folder_exists(tmp_path, option, value, message):
    from learned.mccnn.train import main

    with pytest.raises(StereoKitError, match=message):
        main(["--dataset", "synthetic:2", "--validation", "none", "--iterations", "1", "--no-progress",
              "--out", str(tmp_path / "run"), option, value])  # the option given last wins; a missed check trains once
    assert not (tmp_path / "run").exists()


def test_failed_starts_leave_no_run_folder_and_outputs_are_checked_first(tmp_path):
    from learned.mccnn.train import main

    run = tmp_path / "run"
    base = ["--dataset", "synthetic:2", "--validation", "none", "--iterations", "2", "--no-progress", "--out", str(run)]
    with pytest.raises(StereoKitError, match="unknown dataset 'nope'"):
        main(base[:1] + ["nope:2"] + base[2:])
    with pytest.raises(StereoKitError, match="--init: .*missing.pt"):
        main(base + ["--init", str(tmp_path / "missing.pt")])
    with pytest.raises(StereoKitError, match=f"--export {tmp_path} is a folder"):
        main(base + ["--export", str(tmp_path)])
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StereoKitError, match="afile is a file, not a folder"):
        main(base + ["--export", str(tmp_path / "afile" / "w.pt")])
    with pytest.raises(StereoKitError, match="--out .*afile is a file, not a folder"):
        main(base[:-1] + [str(tmp_path / "afile")])
    assert not run.exists()


def test_resume_refuses_other_settings_and_takes_left_out_ones(monkeypatch, tmp_path):
    args = ["--batch-size", "8", "--iterations", "2", "--validate-every", "100", "--seed", "1", "--lr", "0.001"]
    _toy_training(monkeypatch, tmp_path, args)
    ck = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(StereoKitError, match=r"--lr 0.01 \(checkpoint: 0.001\); --balance True \(checkpoint: False\)"):
        _toy_training(monkeypatch, tmp_path, args[:-1] + ["0.01", "--balance", "--iterations", "4", "--resume"])
    with pytest.raises(StereoKitError, match="--dataset .*--batch-size 16 .*--seed 2"):
        _toy_training(monkeypatch, tmp_path, ["--dataset", "sample", "--batch-size", "16", "--seed", "2", "--resume",
                                              "--iterations", "4"])
    assert (tmp_path / "checkpoint.pt").read_bytes() == ck
    _toy_training(monkeypatch, tmp_path, ["--iterations", "4", "--resume"])  # the rest from the checkpoint
    meta = json.loads((tmp_path / "model.json").read_text())
    assert (meta["iterations"], meta["batch_size"], meta["seed"], meta["lr"]) == (4, 8, 1, 0.001)
    assert len(meta["command"]) == 2


def _gcnet_files(tmp_path):
    """A GC-Net weights file and checkpoint (tiny network), as the GC-Net trainer writes them."""
    from learned.common import checkpoint_format
    from learned.gcnet.model import GCNet, GCNetConfig
    from learned.gcnet.train import save_weights

    net = GCNet(GCNetConfig(features=4, res_blocks=1, volume_channels=(4, 4, 4), max_disp=8))
    weights, ckpt = tmp_path / "weights.pt", tmp_path / "last.pt"
    save_weights(net, weights)
    torch.save({"format": checkpoint_format("gcnet"), "model": net.state_dict(), "config": net.cfg.to_dict(),
                "optimizer": torch.optim.RMSprop(net.parameters()).state_dict(), "iteration": 1}, ckpt)
    return weights, ckpt


def test_gcnet_files_are_named_as_such(monkeypatch, tmp_path):
    from learned.mccnn.weights import model_from_file

    weights, ckpt = _gcnet_files(tmp_path)
    with pytest.raises(StereoKitError, match="weights.pt is a GC-Net weights file, not an MC-CNN one"):
        model_from_file(weights)
    with pytest.raises(StereoKitError, match="last.pt is a GC-Net checkpoint, not an MC-CNN one"):
        model_from_file(ckpt, arch="fast")
    legacy = tmp_path / "legacy.pt"  # a checkpoint written before checkpoints had a format field
    torch.save({k: v for k, v in torch.load(ckpt, weights_only=True).items() if k != "format"}, legacy)
    with pytest.raises(StereoKitError, match="legacy.pt is a GC-Net checkpoint, not an MC-CNN one"):
        model_from_file(legacy)
    args = ["--batch-size", "8", "--iterations", "2", "--validate-every", "100"]
    with pytest.raises(StereoKitError, match="--init: .*last.pt is a GC-Net checkpoint, not an MC-CNN one"):
        _toy_training(monkeypatch, tmp_path / "a", args + ["--init", str(ckpt)])
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "checkpoint.pt").write_bytes(ckpt.read_bytes())
    with pytest.raises(StereoKitError, match="--resume: .*checkpoint.pt is a GC-Net checkpoint, not an MC-CNN one"):
        _toy_training(monkeypatch, tmp_path / "b", args + ["--resume"])
    _toy_training(monkeypatch, tmp_path / "c", args)
    (tmp_path / "c" / "checkpoint.pt").write_bytes((tmp_path / "c" / "model.pt").read_bytes())
    with pytest.raises(StereoKitError, match="is an MC-CNN weights file, not an MC-CNN checkpoint"):
        _toy_training(monkeypatch, tmp_path / "c", args + ["--iterations", "4", "--resume"])


def test_held_out_scenes_are_recognised_in_every_spelling_by_both_trainers(monkeypatch):
    from learned.gcnet.train import load_sets
    from learned.mccnn.train import load_training_pairs
    from learned.splits import is_held_out
    from stereokit.datasets.base import Dataset

    spellings = ["teddy", "ArtL", "teddyQ", "Wood2", "Art_half", "Art-2005", "wood2-full", "TEDDYQ",
                 "middlebury2005/Art", "trainingQ/Teddy", "Art-2", "Wood2H"]
    assert all(is_held_out(n) for n in spellings)
    assert not any(is_held_out(n) for n in ["Artwork", "cones", "Books", "sawtooth", "Wood1", "synthetic-00001"])

    import stereokit.datasets as datasets

    def fake_open(spec):
        names = spellings + ["cones"] if spec == "mixed" else spellings
        return Dataset(spec, [n.replace("/", "-") for n in names], lambda i: _shifted_pair(seed=i, name=names[i]))

    monkeypatch.setattr(datasets, "open_dataset", fake_open)
    assert [p.name for p in load_training_pairs(["mixed"])] == ["cones"]
    sets, info = load_sets(["mixed"], 8, None)
    assert [p.name for p in sets[0]] == ["cones"] and len(info[0]["held_out"]) == len(spellings)
    for load in (lambda: load_training_pairs(["mixed", "held"]), lambda: load_sets(["held"], 8, None)):
        with pytest.raises(StereoKitError, match="all pairs of held are held-out validation scenes: teddy, ArtL"):
            load()


@pytest.mark.slow
def test_short_training_lowers_loss_and_validation_error(monkeypatch, tmp_path):
    from learned.mccnn import train
    from stereokit.datasets.synthetic import make_scene

    def scene(seed):
        return make_scene(seed, height=120, width=160, max_disp=24)

    monkeypatch.setattr(train, "load_training_pairs", lambda specs, right_views=False: [scene(s) for s in range(4)])
    val = scene(50)
    monkeypatch.setattr(train, "load_validation_pairs", lambda spec, ds=1: [val])
    torch.manual_seed(3)  # the network train.main builds with --seed 3
    before = train.triplet_error(FastNet("middlebury"), [val], OFFSETS[("middlebury", "fast")])
    args = ["--batch-size", "64", "--iterations", "400", "--checkpoint-every", "100", "--validate-every", "200",
            "--seed", "3", "--out", str(tmp_path), "--no-progress", "--threads", "1"]
    train.main(args)
    hist = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert hist[-1]["val_triplet_err"] < before - 5, (before, hist)


# ------------------------------------------------------------------------------------------------ weights


def test_corrupt_and_mismatched_weight_files(tmp_path):
    from learned.mccnn.train import export_weights
    from learned.mccnn.weights import load_model, model_from_file

    good = tmp_path / "fast.pt"
    export_weights(FastNet("middlebury"), good, {"note": "test"})
    assert json.loads(good.with_suffix(".json").read_text())["note"] == "test"
    assert isinstance(model_from_file(good), FastNet)

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:1000])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file at all")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    for bad in (truncated, garbage, empty, tmp_path / "missing.pt"):
        with pytest.raises(StereoKitError, match=bad.name) as err:
            model_from_file(bad)
        msg = str(err.value)  # one line naming the file, never torch's advice to load unsafely
        assert "\n" not in msg and "weights_only" not in msg
        assert bad.name == "missing.pt" or f"{bad} is not a valid weights file" in msg

    acrt = tmp_path / "acrt.pt"
    export_weights(AccurateNet("middlebury"), acrt, {})
    with pytest.raises(StereoKitError, match="acrt.pt.*not MC-CNN-fast"):
        load_model("fast", weights=acrt)

    wrong_shape = tmp_path / "wrong_shape.pt"
    sd = FastNet("middlebury").state_dict()
    sd["tower.0.weight"] = torch.zeros(32, 1, 3, 3)
    torch.save({"format": "stereokit-mccnn-1", "arch": "fast", "setting": "middlebury", "in_channels": 1, "state_dict": sd}, wrong_shape)
    with pytest.raises(StereoKitError, match="wrong_shape.pt.*tower.0.weight"):
        model_from_file(wrong_shape)

    kitti_as_mb = tmp_path / "kitti_as_mb.pt"
    torch.save({"format": "stereokit-mccnn-1", "arch": "fast", "setting": "middlebury", "in_channels": 1,
                "state_dict": FastNet("kitti").state_dict()}, kitti_as_mb)
    with pytest.raises(StereoKitError, match="kitti_as_mb.pt.*missing keys"):
        model_from_file(kitti_as_mb)

    pickled = tmp_path / "pickled.pt"
    torch.save({"state_dict": FastNet("middlebury")}, pickled)  # a module object: refused by weights_only
    with pytest.raises(StereoKitError, match="pickled.pt"):
        model_from_file(pickled)


def test_bare_state_dict_needs_and_uses_arch(tmp_path):
    from learned.mccnn.weights import model_from_file

    p = tmp_path / "bare.pt"
    torch.save(FastNet("kitti").state_dict(), p)
    with pytest.raises(StereoKitError, match="which MC-CNN architecture"):
        model_from_file(p)
    m = model_from_file(p, arch="fast")
    assert isinstance(m, FastNet) and m.setting == "kitti"


# ------------------------------------------------------------------------------------------------ post-processing


def _labels_reference(dl, dr, tol=1.0):
    H, W = dl.shape
    out = np.zeros((H, W), np.uint8)
    for y in range(H):
        for x in range(W):
            d = dl[y, x]
            xr = int(np.rint(x - d))
            if 0 <= xr < W and abs(d - dr[y, xr]) <= tol:
                continue
            ok = any(abs(dp - dr[y, x - dp]) <= tol for dp in range(0, x + 1))
            out[y, x] = 1 if ok else 2
    return out


def test_lr_labels_match_the_papers_rule():
    from stereokit.postprocess import MISMATCH, OCCLUSION, lr_labels

    rng = np.random.default_rng(0)
    dl = rng.integers(0, 8, (6, 25)).astype(np.float32)
    dr = rng.integers(0, 8, (6, 25)).astype(np.float32)
    np.testing.assert_array_equal(lr_labels(dl, dr), _labels_reference(dl, dr))
    # a scene: background d=2, foreground d=9 on x >= 12; the right view sees the foreground at xr 3..10
    dl = np.array([[2] * 12 + [9] * 8], np.float32)
    dr = np.array([[2] * 3 + [9] * 8 + [2] * 9], np.float32)
    lab = lr_labels(dl, dr)
    assert (lab[0, 12:] == 0).all() and (lab[0, 2:5] == 0).all()
    # background hidden behind the foreground in the right view (x = 5 and 11 pass some d' within the 1 px tolerance)
    assert (lab[0, 6:11] == OCCLUSION).all() and lab[0, 5] == lab[0, 11] == MISMATCH
    dl2 = dl.copy()
    dl2[0, 15] = 5.0  # a visible foreground pixel with a wrong disparity
    assert lr_labels(dl2, dr)[0, 15] == MISMATCH


def test_interpolate_lr_occlusion_left_and_mismatch_median():
    from stereokit.postprocess import interpolate_lr

    disp = np.arange(35, dtype=np.float32).reshape(5, 7)
    labels = np.zeros((5, 7), np.uint8)
    labels[2, 3:5] = 2  # occlusions: take the first correct pixel to the left
    labels[0, 0] = 2  # none to the left: the first to the right
    labels[4, 6] = 1  # mismatch: median over the 16 directions' nearest correct pixels
    out = interpolate_lr(disp, labels)
    assert out[2, 3] == out[2, 4] == disp[2, 2]
    assert out[0, 0] == disp[0, 1]
    neigh = [disp[4, 5], disp[3, 5], disp[3, 6], disp[2, 5], disp[3, 4]]  # directions staying inside
    assert out[4, 6] == np.median(neigh)
    ok = labels == 0
    np.testing.assert_array_equal(out[ok], disp[ok])
    # in the left border band (range cut by the image edge) occlusions take the nearest correct pixel to the right
    out_b = interpolate_lr(disp, labels, border=4)
    assert out_b[2, 3] == disp[2, 5] and out_b[2, 4] == disp[2, 2]


def test_subpixel_parabola_recovers_quadratic_minimum():
    from stereokit.postprocess import subpixel_parabola

    d = np.arange(10, dtype=np.float32)
    true = np.array([[3.3, 5.75], [1.5, 8.1]], np.float32)
    vol = ((d[None, None, :] - true[..., None]) ** 2).astype(np.float32)
    wta = np.rint(true).astype(np.float32)
    np.testing.assert_allclose(subpixel_parabola(wta, vol), true, atol=1e-5)
    vol2 = vol.copy()
    vol2[0, 0, 2] = np.inf  # a neighbour at +inf: keep the integer value
    assert subpixel_parabola(wta, vol2)[0, 0] == 3.0
    np.testing.assert_allclose(subpixel_parabola(wta + 5, vol, min_disp=5), true + 5, atol=1e-5)


def test_thresholded_gaussian_against_brute_force_and_keeps_edges():
    from stereokit.postprocess import thresholded_gaussian

    rng = np.random.default_rng(1)
    disp = rng.uniform(0, 6, (9, 11)).astype(np.float32)
    disp[3, 4] = np.nan
    sigma, t = 1.2, 2.0
    out = thresholded_gaussian(disp, sigma, t)
    r = int(np.ceil(3 * sigma))
    ref = np.full_like(disp, np.nan)
    for y in range(9):
        for x in range(11):
            if np.isnan(disp[y, x]):
                continue
            num = den = 0.0
            for yy in range(max(0, y - r), min(9, y + r + 1)):
                for xx in range(max(0, x - r), min(11, x + r + 1)):
                    if abs(disp[yy, xx] - disp[y, x]) < t:
                        w = np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma**2))
                        num, den = num + w * disp[yy, xx], den + w
            ref[y, x] = num / den
    np.testing.assert_allclose(out, ref, rtol=1e-5, equal_nan=True)
    step = np.where(np.arange(20)[None, :] < 10, 10.0, 30.0).repeat(6, 0).astype(np.float32)
    np.testing.assert_array_equal(thresholded_gaussian(step, 3.0, 2.0), step)


# ------------------------------------------------------------------------------------------------ matcher


def test_right_cost_volume_definition():
    from learned.mccnn.matcher import right_cost_volume

    rng = np.random.default_rng(2)
    vol = rng.random((3, 12, 4)).astype(np.float32)
    for min_disp in (0, 2, -1):
        vr = right_cost_volume(vol, min_disp)
        for x in range(12):
            for k in range(4):
                xl = x + min_disp + k
                expect = vol[:, xl, k] if 0 <= xl < 12 else np.full(3, np.inf, np.float32)
                np.testing.assert_array_equal(vr[:, x, k], expect)


@pytest.fixture(scope="module")
def random_fast_weights(tmp_path_factory):
    from learned.mccnn.train import export_weights

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "random_fast.pt"
    export_weights(FastNet("middlebury"), path, {})
    return path


def test_mccnn_fast_pipeline_runs_and_is_deterministic(random_fast_weights):
    from learned.mccnn.matcher import mccnn_fast

    pair = _shifted_pair(seed=5, h=24, w=48, d=4)
    a = mccnn_fast(pair, 12, weights=random_fast_weights, device="cpu")
    b = mccnn_fast(pair, 12, weights=random_fast_weights, device="cpu")
    assert a.shape == pair.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).mean() > 0.9
    with pytest.raises(StereoKitError, match=r"mccnn-fast: unknown option\(s\) sgm_p1; known: .*sgm_P1"):
        mccnn_fast(pair, 12, weights=random_fast_weights, sgm_p1=3)
    with pytest.raises(StereoKitError, match="preset"):
        mccnn_fast(pair, 12, weights=random_fast_weights, preset="eth3d")
    with pytest.raises(StereoKitError):
        mccnn_fast(pair, 60, weights=random_fast_weights)  # range wider than the image


def _match_pair(d: int = 5, h: int = 40, w: int = 80):
    """uint8 arrays (left, right) with constant disparity d (left[x] = right[x - d]), for stereokit.match."""
    tex = (np.random.default_rng(7).random((h, w + d)) * 255).astype(np.uint8)
    return tex[:, :w], tex[:, d:]


_BAD_VALUES = [(key, value) for key in ("sgm_P1", "sgm_P2", "sgm_D", "cbca_tau1", "speckle_diff")
               for value in ("x", -1, None, float("nan"))]
_BAD_VALUES += [(key, value) for key in ("sgm_Q1", "sgm_Q2", "sgm_V", "blur_sigma", "blur_t")
                for value in ("x", 0, -1.5, float("inf"))]
_BAD_VALUES += [(key, value) for key in ("cbca_L1", "cbca_i1", "cbca_i2", "speckle_size") for value in ("x", -1, 2.5)]
_BAD_VALUES += [(key, value) for key in ("lr_interpolate", "lr_check", "lr_border") for value in ("no", 1, None)]


@pytest.mark.parametrize("key,value", _BAD_VALUES)
def test_mccnn_bad_option_values_name_the_option(key, value):
    """A wrong type or out-of-range value raises StereoKitError naming the option, before the network runs (the
    CBCA and speckle options used to pass unchecked when off, or crash inside NumPy with "x")."""
    import stereokit

    left, right = _match_pair()
    with pytest.raises(StereoKitError, match=f"^{key} must be"):
        stereokit.match(left, right, method="mccnn-fast", max_disp=16, **{key: value})


def test_mccnn_bad_preset_weights_device_and_unknown_options(tmp_path):
    import stereokit

    left, right = _match_pair()
    run = lambda **kw: stereokit.match(left, right, method="mccnn-fast", max_disp=16, **kw)  # noqa: E731
    with pytest.raises(StereoKitError, match=r"^mccnn-fast: unknown option\(s\) P1; known: "):
        run(P1="x")
    for preset in ("eth3d", None, 3, ["tuned"]):
        with pytest.raises(StereoKitError, match="unknown MC-CNN-fast preset"):
            run(preset=preset)
    with pytest.raises(StereoKitError, match="weights file not found: .*missing.pt"):
        run(weights=tmp_path / "missing.pt")
    with pytest.raises(StereoKitError, match="weights file not found"):
        run(weights=tmp_path)  # a directory
    for weights in (123, ""):
        with pytest.raises(StereoKitError, match="weights must be the path of a weights file"):
            run(weights=weights)
    for device in ("tpu", f"cuda:{torch.cuda.device_count()}"):
        with pytest.raises(StereoKitError, match=f"'{device}'.*available: auto, cpu"):
            run(device=device)


def test_every_preset_passes_the_option_checks_unchanged():
    from learned.mccnn.matcher import check_params
    from learned.mccnn.presets import PRESETS

    for params in PRESETS.values():
        assert check_params(params) == params
    checked = check_params(dict(PRESETS[("tuned", "fast")], cbca_i2=3.0))
    assert checked["cbca_i2"] == 3 and isinstance(checked["cbca_i2"], int)


@pytest.mark.parametrize("key, value, message", [
    ("cbca_i1", 10**12, "cbca_i1 must be at most 1000"),  # would loop for ever after the network ran
    ("cbca_i2", 1001, "cbca_i2 must be at most 1000"),
    ("sgm_P2", 1e39, "sgm_P2 must be at most 3.4"),  # float32 inf inside SGM
    ("sgm_Q1", True, "sgm_Q1 must be a positive number"),
    ("sgm_V", 1e-300, "sgm_V must be at least 1.18e-38"),  # float32 zero: a division by zero inside SGM
])
def test_hyperparameters_beyond_what_the_steps_can_run_are_refused_up_front(key, value, message):
    from learned.mccnn.matcher import check_params
    from learned.mccnn.presets import PRESETS

    with pytest.raises(StereoKitError, match=message):
        check_params(dict(PRESETS[("middlebury", "fast")], **{key: value}))
    assert check_params(dict(PRESETS[("middlebury", "fast")], cbca_i1=1000))["cbca_i1"] == 1000


@pytest.mark.parametrize("method", ["mccnn-fast", "mccnn-acrt"])
def test_return_cost_is_not_a_matcher_option(method):
    # the pipeline's return_cost=True returns a (disparity, volume) tuple, which no matcher caller expects
    import stereokit

    left, right = _match_pair(5)
    with pytest.raises(StereoKitError, match=f"{method}: return_cost is not a matcher option"):
        stereokit.match(left, right, method=method, max_disp=16, return_cost=True)


def test_mccnn_fast_shipped_weights_on_a_small_pair_in_range():
    """The shipped weights through stereokit.match on a 40x80 crop: float32, values in the range, found."""
    from learned.mccnn.weights import shipped_weights
    import stereokit

    if not shipped_weights("fast").is_file():
        pytest.skip("shipped MC-CNN-fast weights not built yet")
    left, right = _match_pair(5)
    disp = stereokit.match(left, right, method="mccnn-fast", max_disp=16)
    assert disp.dtype == np.float32 and disp.shape == (40, 80)
    finite = disp[np.isfinite(disp)]
    assert finite.size > 0.8 * disp.size and np.all((finite >= 0) & (finite < 16))
    assert abs(float(np.median(disp[:, 16:])) - 5) < 0.5


def test_refinement_switches_leave_lr_failures_invalid_and_remove_speckles():
    """lr_interpolate=False: NaN exactly where the left-right check fails (the filters keep NaN NaN); speckle_size:
    the output equals remove_speckles applied to the output without it. The paper's presets keep both off."""
    from learned.mccnn.matcher import aggregate, right_cost_volume, stereo_method
    from learned.mccnn.presets import PRESETS, preset_params
    from stereokit.disparity import winner_takes_all
    from stereokit.postprocess import lr_labels
    from stereokit.refine import remove_speckles

    assert all(p["lr_interpolate"] and p["speckle_size"] == 0 for (name, _), p in PRESETS.items() if name != "tuned")
    rng = np.random.default_rng(4)
    vol = rng.random((14, 30, 6)).astype(np.float32)
    left, right = (normalize_image(rng.random((14, 30)).astype(np.float32)) for _ in range(2))
    p = dict(preset_params("middlebury", "fast"), lr_interpolate=False)
    out = stereo_method(vol, left, right, p)
    flip = lambda a: np.ascontiguousarray(a[:, ::-1])  # noqa: E731
    disp_right = flip(winner_takes_all(aggregate(flip(right_cost_volume(vol)), flip(right), flip(left), p), 0,
                                       subpixel=None))
    disp_left = winner_takes_all(aggregate(vol, left, right, p), 0, subpixel=None)
    failed = lr_labels(disp_left, disp_right) != 0
    assert 0 < failed.sum() < failed.size
    np.testing.assert_array_equal(np.isnan(out), failed)
    assert np.isfinite(stereo_method(vol, left, right, preset_params("middlebury", "fast"))).mean() > 0.9
    despeckled = stereo_method(vol, left, right, dict(p, speckle_size=20, speckle_diff=1.5))
    np.testing.assert_array_equal(despeckled, remove_speckles(out, 20, 1.5))
    assert np.isnan(despeckled).sum() > np.isnan(out).sum()
    with pytest.raises(StereoKitError, match="lr_interpolate must be True or False"):
        stereo_method(vol, left, right, dict(p, lr_interpolate="no"))


def test_registered_and_acrt_without_weights_is_a_clear_error():
    from learned.mccnn.weights import shipped_weights
    from stereokit import matchers

    assert "mccnn-fast" in matchers and "mccnn-acrt" in matchers
    if shipped_weights("acrt").exists():
        pytest.skip("accurate weights are shipped")
    pair = _shifted_pair(h=24, w=48)
    with pytest.raises(StereoKitError, match="no MC-CNN-acrt weights are shipped.*stereokit train mccnn --arch acrt"):
        matchers["mccnn-acrt"](pair, 8)


def test_shipped_fast_weights_load_safely_and_beat_a_random_network(random_fast_weights):
    import cv2

    from eval.metrics import evaluate_pair
    from learned.mccnn.matcher import mccnn_fast
    from learned.mccnn.train import triplet_error
    from learned.mccnn.weights import model_from_file, shipped_weights
    from stereokit.datasets import open_dataset

    path = shipped_weights("fast")
    if not path.exists():
        pytest.skip("no shipped fast weights")
    obj = torch.load(path, weights_only=True)
    assert obj["arch"] == "fast" and obj["format"] == "stereokit-mccnn-1"
    meta = json.loads(path.with_suffix(".json").read_text())
    assert {"data", "iterations", "seed", "validation", "command"} <= set(meta)
    trained = model_from_file(path)

    full = open_dataset("sample")[0]
    h, w = full.height // 3, full.width // 3  # 1/3 scale keeps this test fast
    gt = cv2.resize(np.nan_to_num(full.gt, nan=-1), (w, h), interpolation=cv2.INTER_NEAREST) / 3
    gt[gt < 0] = np.nan
    pair = StereoPair(cv2.resize(full.left_gray, (w, h), interpolation=cv2.INTER_AREA),
                      cv2.resize(full.right_gray, (w, h), interpolation=cv2.INTER_AREA), gt=gt, name="sample-third")
    torch.manual_seed(0)
    offsets = OFFSETS[("middlebury", "fast")]
    assert triplet_error(trained, [pair], offsets) < triplet_error(FastNet("middlebury"), [pair], offsets) - 20
    bad = {}
    for name, weights in (("trained", path), ("random", random_fast_weights)):
        disp = mccnn_fast(pair, 24, weights=weights, device="cpu")
        bad[name] = evaluate_pair(disp, pair.gt).all.to_dict()["bad-2.0"]
    assert bad["trained"] < bad["random"] - 5, bad


def test_mccnn_acrt_pipeline_with_cbca_runs_with_user_weights(tmp_path):
    """The accurate pipeline (network cost -> CBCA -> SGM -> CBCA -> refinement) runs end to end on a user's file."""
    from learned.mccnn.matcher import mccnn_acrt
    from learned.mccnn.train import export_weights

    torch.manual_seed(0)
    path = tmp_path / "random_acrt.pt"
    export_weights(AccurateNet("middlebury"), path, {})
    pair = _shifted_pair(seed=3, h=20, w=40, d=3)
    a = mccnn_acrt(pair, 8, weights=path, device="cpu", cbca_i2=2)  # fewer CBCA passes than the preset's 16: speed
    assert a.shape == pair.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, mccnn_acrt(pair, 8, weights=path, device="cpu", cbca_i2=2))
    assert np.isfinite(a).mean() > 0.9


def test_tuned_preset_is_the_recorded_search_result():
    """The "tuned" preset is what benchmarks/tune_mccnn_preset.py found (its log is committed): of the searches
    in the log under the rule (the script's defaults: the training scenes' mean of its default objective), the one
    with the lowest tuning score. The log's earlier searches predate the `--tune-on` and `--objective` options (no
    "tune_on" key: the training scenes; no "objective" key: bad-2.0, then named "tune_bad2" / "train_mean_bad2")."""
    from pathlib import Path

    from learned.mccnn.presets import preset_params
    from learned.splits import VALIDATION_SCENES

    def tune_score(found):
        return found.get("tune_score", found.get("tune_bad2", found.get("train_mean_bad2")))

    log = Path(__file__).resolve().parents[1] / "benchmarks" / "results_mccnn_tune.log"
    text = log.read_text()
    decoder, searches, at = json.JSONDecoder(), [], text.find("\n{")
    while at >= 0:
        result, end = decoder.raw_decode(text, at + 1)
        searches.append(result)
        at = text.find("\n{", end)
    assert searches
    for found in searches:
        tune = tune_score(found)
        assert found["weights"] == "shipped"
        assert tune["found"] <= tune["start"]
        if found["start"] == "middlebury":  # from the paper's values the search must gain; from "tuned" it may not
            assert tune["found"] < tune["start"]
        assert set(found.get("tune_scenes", found["train_scenes"])).isdisjoint(VALIDATION_SCENES)  # never steered
    script = _tune_script()
    candidates = [f for f in searches if f.get("tune_on", "train") == script.DEFAULT_TUNE_ON
                  and f.get("objective", "bad-2.0") == script.DEFAULT_OBJECTIVE]
    assert candidates
    best = min(candidates, key=lambda f: tune_score(f)["found"])
    assert preset_params("tuned", "fast") == best["params"]
    with pytest.raises(StereoKitError, match="tuned"):
        preset_params("tuned", "acrt")


def _tune_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "tune_mccnn_preset.py"
    spec = importlib.util.spec_from_file_location("tune_mccnn_preset", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tune_search_follows_the_score_and_stops_after_a_round_that_keeps_nothing():
    from learned.mccnn.presets import preset_params

    tune = _tune_script()
    start = preset_params("middlebury", "fast")

    def score(p: dict) -> float:  # only P1 matters; best at 8
        return (p["sgm_P1"] - 8.0) ** 2

    lines: list[str] = []
    found, best = tune.coordinate_descent(start, score(start), score, rounds=5, report=lines.append)
    # round 0: 2.3 x1.4 = 3.22, then x2.0 = 6.44 kept; round 1: x1.4 = 9.016 kept; round 2 keeps nothing and ends it
    assert found == dict(start, sgm_P1=9.016)
    assert best == pytest.approx((9.016 - 8.0) ** 2)
    assert [ln for ln in lines if ln.endswith("kept")] == [
        "round 0 sgm_P1=3.22     score 22.848  kept",
        "round 0 sgm_P1=6.44     score 2.434  kept",
        "round 1 sgm_P1=9.016    score 1.032  kept",
    ]
    assert {ln.split()[1] for ln in lines} == {"0", "1", "2"}  # not rounds 3 and 4

    lines.clear()
    found, best = tune.coordinate_descent(start, 1.0, lambda p: 1.0, rounds=3, report=lines.append)
    assert (found, best) == (start, 1.0)  # nothing kept, and the unused cross arms are reported as the start's
    assert lines and {ln.split()[1] for ln in lines} == {"0"}


def test_positive_offsets_cover_both_sides():
    rng = np.random.default_rng(0)
    img = rng.standard_normal((20, 30)).astype(np.float32)
    ys, xs = np.meshgrid(np.arange(5, 15), np.arange(10, 25), indexing="ij")
    scene = Scene(img, img, ys.ravel().astype(np.int32), xs.ravel().astype(np.int32),
                  np.full(ys.size, 3.0, np.float32))
    b = PatchSampler([scene], 9, (0.5, 1.5, 6.0), Augmentation.identity(), seed=1).draw(4000)
    d_pos = b["d_pos"]
    assert np.all(np.abs(d_pos) <= 0.5)
    # U(-0.5, 0.5): about half on each side, mean about 0 (4000 draws: std of the mean ~0.005)
    assert 0.4 < (d_pos < 0).mean() < 0.6
    assert abs(d_pos.mean()) < 0.03
    assert d_pos.min() < -0.45 and d_pos.max() > 0.45


# ------------------------------------------------------------------------------------------------ mutation round D
# Behaviour the tests above left open (each test below fails on a planted bug that the suite let through).


def test_paper_presets_are_the_reference_table():
    """Every paper preset equals REFERENCE.md's table (jzbontar/mc-cnn main.lua): P1 = pi1, P2 = pi1 * pi2 as
    tabulated, Q1 = q1, Q2 = q1 * q2, V = alpha1, D = tau_so, CBCA (L1, tau1, i1, i2), blur (sigma, t)."""
    from learned.mccnn.presets import preset_params

    #            P1    P2     q1   q2   V     D     L1  tau1  i1 i2  sigma t
    table = {
        ("kitti2012", "fast"): (4.0, 222.9, 3.0, 2.5, 1.5, 0.02, 0, 0.0, 0, 0, 7.74, 5.0),
        ("kitti", "fast"): (2.3, 42.3, 3.0, 2.0, 1.25, 0.08, 0, 0.0, 0, 0, 4.64, 5.0),
        ("kitti", "acrt"): (2.3, 55.8, 3.0, 2.0, 1.75, 0.08, 5, 0.03, 2, 4, 5.99, 5.0),
        ("middlebury", "fast"): (2.3, 55.9, 4.0, 2.0, 1.5, 0.08, 0, 0.0, 0, 0, 6.0, 2.0),
        ("middlebury", "acrt"): (1.3, 18.1, 4.5, 2.0, 2.75, 0.13, 14, 0.02, 2, 16, 1.67, 2.0),
    }
    for key, (p1, p2, q1, q2, v, d, l1, tau1, i1, i2, sigma, t) in table.items():
        p = preset_params(*key)
        got = (p["sgm_P1"], p["sgm_P2"], p["sgm_Q1"], p["sgm_Q2"], p["sgm_V"], p["sgm_D"], p["cbca_L1"],
               p["cbca_tau1"], p["cbca_i1"], p["cbca_i2"], p["blur_sigma"], p["blur_t"])
        assert got == pytest.approx((p1, p2, q1, q1 * q2, v, d, l1, tau1, i1, i2, sigma, t)), key


def _pixel_scene(n_pixels, value, name):
    """A scene whose valid pixels are the first n_pixels of row 10 (x = 12..), image constant `value`."""
    img = np.full((20, 40), value, np.float32)
    xs = np.arange(12, 12 + n_pixels, dtype=np.int32)
    return Scene(img, img, np.full(n_pixels, 10, np.int32), xs, np.full(n_pixels, 2.0, np.float32), name)


def test_sampler_draws_pixels_uniformly_across_scenes_and_by_weight():
    """Without weights every valid pixel of every scene is equally likely (scenes of 1, 2 and 3 pixels: shares
    1/6, 2/6, 3/6, each pixel 1/6); with scene_weights a scene's share is weight x pixel count (normalised)."""
    scenes = [_pixel_scene(n, float(n), f"s{n}") for n in (1, 2, 3)]
    n = 6000
    b = PatchSampler(scenes, 5, (0.5, 1.5, 6.0), Augmentation.identity(), seed=0).draw(n)
    for k, sc in enumerate(scenes):
        sel = b["scene"] == k
        assert set(zip(b["y"][sel].tolist(), b["x"][sel].tolist())) == set(zip(sc.ys.tolist(), sc.xs.tolist()))
        assert np.all(b["left"][sel, 0, 2, 2] == sc.left[10, 12])  # the patch comes from that scene
    pixel_share = np.bincount(b["x"] - 12, minlength=3)[:3] / n  # x=12 in 3 scenes, x=13 in 2, x=14 in 1
    np.testing.assert_allclose(pixel_share, [3 / 6, 2 / 6, 1 / 6], atol=0.03)
    for weights, expect in (([1.0, 1 / 2, 1 / 3], [1 / 3] * 3), ([1.0, 1.0, 1.0], [1 / 6, 2 / 6, 3 / 6]),
                            ([0.0, 1.0, 1.0], [0, 2 / 5, 3 / 5])):
        b = PatchSampler(scenes, 5, (0.5, 1.5, 6.0), Augmentation.identity(), seed=1, scene_weights=weights).draw(n)
        np.testing.assert_allclose(np.bincount(b["scene"], minlength=3) / n, expect, atol=0.03)


def test_prepare_scene_normalises_each_image_on_its_own():
    """Each image to zero mean and unit std by its own statistics (the paper): a right view twice as bright with an
    offset gives the same normalised image as the left."""
    rng = np.random.default_rng(0)
    left = rng.random((24, 30)).astype(np.float32) * 0.4
    right = 0.1 + 2.0 * left
    gt = np.full((24, 30), 0.0, np.float32)
    scene = prepare_scene(StereoPair(left, right, gt=gt))
    for img in (scene.left, scene.right):
        assert abs(float(img.mean())) < 1e-5 and abs(float(img.std()) - 1) < 1e-4
    np.testing.assert_allclose(scene.left, scene.right, atol=1e-4)
    np.testing.assert_allclose(scene.left, (left - left.mean()) / left.std(), atol=1e-4)


def test_augmentation_defaults_and_the_right_patches_shared_vertical_shift():
    """Augmentation() holds the reference code's Middlebury ranges (main.lua, dataset mb); d_vtrans moves the
    positive and the negative right patch by the same vertical offset in [-d_vtrans, d_vtrans], never the left."""
    import dataclasses

    a = Augmentation()
    assert (a.rotate, a.scale, a.hscale, a.hshear, a.brightness, a.contrast) == (28.0, 0.8, 0.8, 0.1, 1.3, 1.1)
    assert (a.d_vtrans, a.d_rotate, a.d_hscale, a.d_hshear, a.d_brightness, a.d_contrast) == (1.0, 3.0, 0.9, 0.3, 0.7, 1.1)
    ramp = np.repeat(np.arange(30, dtype=np.float32)[:, None], 40, axis=1)  # value = row
    ys, xs = np.meshgrid(np.arange(8, 22), np.arange(15, 30), indexing="ij")
    scene = Scene(ramp, ramp, ys.ravel().astype(np.int32), xs.ravel().astype(np.int32), np.full(ys.size, 3.0, np.float32))
    aug = dataclasses.replace(Augmentation.identity(), d_vtrans=1.0)
    b = PatchSampler([scene], 9, (0.5, 1.5, 6.0), aug, seed=2).draw(500)
    np.testing.assert_allclose(b["left"][:, 0, 4, 4], b["y"], atol=1e-5)  # the left patch is not moved
    shift = b["pos"][:, 0, 4, 4] - b["y"]
    np.testing.assert_allclose(b["neg"][:, 0, 4, 4] - b["y"], shift, atol=1e-5)  # the same shift for both
    assert np.all(np.abs(shift) <= 1.0 + 1e-5) and shift.min() < -0.8 and shift.max() > 0.8


def test_occlusion_tolerance_is_strict():
    """Occluded = another pixel of the row lands on the same right column with a disparity larger by MORE than the
    tolerance (1 px): a difference of exactly 1 is not an occlusion, 2 is."""
    gt = np.zeros((1, 12), np.float32)
    gt[0, 5], gt[0, 6] = 2.0, 3.0  # both land on column 3; 3 - 2 = 1: not occluded
    assert not occlusion_from_gt(gt)[0, 5]
    gt[0, 6], gt[0, 7] = 0.0, 4.0  # now x=7 lands on column 3 with 4 - 2 = 2 > 1: x=5 is occluded
    occ = occlusion_from_gt(gt)
    assert occ[0, 5] and not occ[0, 7]


class _RunsCode:
    """Pickles to a call of os.mkdir(path): loading it with weights_only=False would create the folder."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        import os

        return (os.mkdir, (self.path,))


def test_weight_files_are_loaded_without_running_pickled_code(tmp_path):
    """load_checkpoint uses torch.load(weights_only=True): a file holding pickled callables is refused with
    StereoKitError and its code never runs; a file holding plain data but not a dict is refused by name."""
    from learned.common import load_checkpoint
    from learned.gcnet.train import load_weights
    from learned.mccnn.weights import model_from_file

    marker = tmp_path / "code_ran"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "stereokit-mccnn-1", "arch": "fast", "state_dict": {"w": _RunsCode(marker)}}, evil)
    for load in (load_checkpoint, model_from_file, load_weights):
        with pytest.raises(StereoKitError, match="evil.pt is not a valid weights file"):
            load(evil)
    assert not marker.exists()
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(StereoKitError, match="tensor.pt holds a Tensor, expected a dict"):
        model_from_file(tensor, arch="fast")


def test_atomic_save_keeps_the_old_file_on_failure_and_leaves_readable_files(tmp_path, monkeypatch):
    import os
    import stat

    from learned import common

    path = tmp_path / "w.pt"
    common.atomic_save({"v": torch.ones(2)}, path)
    before = path.read_bytes()
    real_save = torch.save

    def dying_save(obj, f, *a, **k):  # writes half a file, then the process is "killed"
        f.write(b"PK\x03\x04 half")
        raise KeyboardInterrupt

    monkeypatch.setattr(common.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        common.atomic_save({"v": torch.zeros(2)}, path)
    monkeypatch.setattr(common.torch, "save", real_save)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["w.pt"]
    old = os.umask(0o022)
    try:
        common.atomic_save({"v": torch.ones(2)}, tmp_path / "shared.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "shared.pt").stat().st_mode) == 0o644  # not mkstemp's 0600


def test_seeding_and_rng_state_round_trip_through_a_safe_checkpoint(tmp_path):
    """seed_everything seeds Python, NumPy and torch; rng_state() stored with torch.save and read back with
    weights_only=True restores all three streams exactly (NumPy's cached Gaussian included)."""
    import random

    from learned.common import rng_state, seed_everything, set_rng_state

    def draws():
        return (random.random(), random.gauss(0, 1), float(np.random.standard_normal()), float(np.random.random()),
                torch.rand(3).tolist())

    seed_everything(11)
    first = draws()
    seed_everything(11)
    assert draws() == first
    np.random.standard_normal()  # leaves a cached Gaussian in NumPy's state
    random.gauss(0, 1)  # and in Python's
    torch.save({"rng": rng_state()}, tmp_path / "ck.pt")
    expected = draws()
    seed_everything(99)
    set_rng_state(torch.load(tmp_path / "ck.pt", weights_only=True)["rng"])
    assert draws() == expected


def test_trainer_defaults_and_schedule_follow_the_paper(monkeypatch, tmp_path):
    """SGD with momentum 0.9 (the optimiser holds momentum buffers), batch 128, lr fast 0.002 / acrt 0.003, the
    setting's offsets; the lr is divided by 10 once, as the reference code does at the start of epoch 12 of 14: with
    14 iterations the first 11 run at lr and the last 3 at lr / 10."""
    from learned.mccnn import train

    parse = train.build_parser().parse_args
    for argv, lr, offsets in ((["--dataset", "x"], 0.002, (0.5, 1.5, 6.0)),
                              (["--dataset", "x", "--arch", "accurate"], 0.003, (0.5, 1.5, 18.0)),
                              (["--dataset", "x", "--setting", "kitti"], 0.002, (1.0, 4.0, 10.0))):
        cfg = train.run_config(parse(argv), None, tmp_path / "ck.pt")
        assert (cfg["lr"], cfg["batch_size"], cfg["momentum"], cfg["offsets"]) == (lr, 128, 0.9, offsets)
    _toy_training(monkeypatch, tmp_path / "run", ["--batch-size", "2", "--iterations", "14", "--checkpoint-every", "1",
                                                 "--validate-every", "100", "--validation", "none"], n_train=1)
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(lrs) == 14 and lrs[:11] == [0.002] * 11 and lrs[11:] == [pytest.approx(0.0002)] * 3
    assert sorted(set(lrs)) == pytest.approx([0.0002, 0.002])
    opt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["optimizer"]
    assert opt["param_groups"][0]["momentum"] == 0.9
    assert all("momentum_buffer" in s and s["momentum_buffer"].abs().sum() > 0 for s in opt["state"].values())


class _SamplerCalled(Exception):
    pass


def test_trainer_hands_the_sampler_offsets_augmentation_and_balanced_weights(monkeypatch, tmp_path):
    """What main() gives PatchSampler: the setting's offsets; Middlebury augmentation only in the Middlebury setting
    (and not with --no-augment); with --balance every --dataset spec the same total share, whatever its pixels."""
    from learned.mccnn import train

    def pairs(specs, right_views=False):
        out = []
        for src, (seed, w) in enumerate([(0, 64), (1, 64), (2, 40)]):  # spec 0: two scenes, spec 1: one smaller
            p = _shifted_pair(seed=seed, w=w)
            p.meta["train_source"] = 0 if src < 2 else 1
            out.append(p)
        return out

    seen = {}

    def fake_sampler(scenes, patch_size, offsets, augmentation, seed=0, scene_weights=None):
        seen.update(scenes=scenes, offsets=offsets, aug=augmentation, weights=scene_weights)
        raise _SamplerCalled

    monkeypatch.setattr(train, "load_training_pairs", pairs)
    monkeypatch.setattr(train, "PatchSampler", fake_sampler)
    base = ["--validation", "none", "--no-progress", "--dataset", "x"]
    for extra, offsets, aug in (([], (0.5, 1.5, 6.0), Augmentation()),
                                (["--no-augment"], (0.5, 1.5, 6.0), Augmentation.identity()),
                                (["--setting", "kitti"], (1.0, 4.0, 10.0), Augmentation.identity())):
        with pytest.raises(_SamplerCalled):
            train.main(base + extra + ["--out", str(tmp_path / "r")])
        assert seen["offsets"] == offsets and seen["aug"] == aug and seen["weights"] is None
    with pytest.raises(_SamplerCalled):
        train.main(base + ["--balance", "--out", str(tmp_path / "r")])
    counts = np.array([len(s.ys) for s in seen["scenes"]], float)
    share = np.asarray(seen["weights"]) * counts
    assert counts[0] != counts[2]
    assert share[0] + share[1] == pytest.approx(share[2])  # spec 0 (two scenes) as much as spec 1
    assert share[0] / share[1] == pytest.approx(counts[0] / counts[1])  # within a spec: by pixels


def test_loss_functions_hinge_margin_and_bce_targets():
    """fast: mean(max(0, 0.2 + cos(l, neg) - cos(l, pos))) (the paper's hinge, margin 0.2); acrt: BCE with the
    positive pair labelled 1 and the negative 0."""
    from learned.mccnn.train import loss_fn

    torch.manual_seed(0)
    fast = FastNet("kitti")
    l, p, n = (torch.randn(6, 1, 9, 9) for _ in range(3))
    with torch.no_grad():
        cos_p, cos_n = fast(l, p), fast(l, n)
        expect = torch.clamp(0.2 + cos_n - cos_p, min=0).mean()
        assert float(loss_fn(fast, l, p, n)) == pytest.approx(float(expect), abs=1e-6)
        assert float(loss_fn(fast, l, l, n)) == pytest.approx(float(torch.clamp(0.2 + cos_n - 1, min=0).mean()), abs=1e-6)
        acrt = AccurateNet("kitti")
        acrt.logits = lambda a, b: b[:, 0, 0, 0]  # the score is the right patch's first pixel
        pos, neg = torch.full((6, 1, 9, 9), 2.0), torch.full((6, 1, 9, 9), -1.0)
        bce = (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(-1.0))) / 2  # positive labelled 1, negative 0
        assert float(loss_fn(acrt, l, pos, neg)) == pytest.approx(bce, rel=1e-6)


def test_validation_uses_only_held_out_scenes_and_scores_non_occluded_pixels(monkeypatch):
    """Both trainers validate on the held-out scenes of the spec only; MC-CNN's WTA error counts valid GT pixels
    that are non-occluded (nonocc) and wrong by more than 2 px."""
    import stereokit.datasets as datasets
    from learned.gcnet.train import load_validation
    from learned.mccnn import train
    from stereokit.datasets.base import Dataset

    names = ["cones", "teddy", "Books", "ArtL"]
    monkeypatch.setattr(datasets, "open_dataset",
                        lambda spec: Dataset(spec, names, lambda i: _shifted_pair(seed=i, name=names[i])))
    assert [p.name for p in train.load_validation_pairs("mixed")] == ["teddy", "ArtL"]
    assert [p.name for p in load_validation("mixed")] == ["teddy", "ArtL"]

    gt = np.full((2, 6), 3.0, np.float32)
    gt[0, 0] = np.nan
    nonocc = np.ones((2, 6), bool)
    nonocc[1, 3:] = False
    pair = StereoPair(np.zeros((2, 6), np.float32), np.zeros((2, 6), np.float32), gt=gt, nonocc=nonocc)
    vol = np.zeros((2, 6, 8), np.float32)
    vol[..., 3] = -1  # WTA 3 everywhere ...
    vol[0, 1:3, 3], vol[0, 1:3, 6] = 0, -1  # ... but 6 (3 px off: wrong) at (0, 1), (0, 2)
    vol[1, 3:, 3], vol[1, 3:, 7] = 0, -1  # and 7 at the occluded (1, 3..5): not counted
    vol[1, 0, 3], vol[1, 0, 5] = 0, -1  # 5 at (1, 0): exactly 2 px off, not wrong
    monkeypatch.setattr(train, "mccnn_cost_volume", lambda *a, **k: vol)
    assert train.wta_error(FastNet("kitti"), [pair]) == pytest.approx(100 * 2 / 8)  # 11 valid GT, 3 occluded


def test_load_model_sees_a_replaced_file_and_checkpoints_load_as_weights(tmp_path):
    import os

    from learned.common import checkpoint_format
    from learned.mccnn.train import export_weights
    from learned.mccnn.weights import load_model, model_from_file

    path = tmp_path / "w.pt"
    torch.manual_seed(0)
    a = FastNet("middlebury")
    export_weights(a, path, {})
    first = load_model("fast", path, "cpu")
    torch.manual_seed(1)
    b = FastNet("middlebury")
    export_weights(b, path, {})
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # a later modification time
    second = load_model("fast", path, "cpu")
    assert torch.equal(second.tower[0].weight, b.tower[0].weight) and not torch.equal(first.tower[0].weight,
                                                                                        second.tower[0].weight)
    ck = tmp_path / "checkpoint.pt"  # --init and weights= accept a training checkpoint (its "model")
    torch.save({"format": checkpoint_format("mccnn"), "model": b.state_dict(), "config": json.dumps(
        {"arch": "fast", "setting": "middlebury"}), "optimizer": {}, "iteration": 1}, ck)
    m = model_from_file(ck)
    assert isinstance(m, FastNet) and all(torch.equal(v, b.state_dict()[k]) for k, v in m.state_dict().items())


def test_held_out_spellings_with_two_suffix_letters_or_separated_digits():
    """The docstring's rule: up to two MiddEval3 suffix letters, and a component's words joined ("Wood 2")."""
    from learned.splits import is_held_out

    for name in ("TEDDYHL", "artql", "wood2hq", "Wood_2", "wood-2", "Wood 2"):
        assert is_held_out(name), name
    assert not is_held_out("Wood_1") and not is_held_out("artworkq")


# ------------------------------------------------------------------------------------ damaged weights and checkpoints

def _exported(tmp_path, name, state=None, **fields):
    obj = {"format": "stereokit-mccnn-1", "arch": "fast", "setting": "middlebury", "in_channels": 1,
           "state_dict": FastNet("middlebury").state_dict() if state is None else state}
    obj.update(fields)
    path = tmp_path / name
    torch.save(obj, path)
    return path


def test_weights_with_unusable_values_or_metadata_raise_naming_the_file(tmp_path):
    from learned.mccnn.weights import model_from_file

    sd = FastNet("middlebury").state_dict()
    cases = {
        "nan.pt": ({**sd, "tower.0.bias": torch.full_like(sd["tower.0.bias"], float("nan"))}, {},
                   "tower.0.bias holds NaN or infinite values"),
        "complex.pt": ({**sd, "tower.0.bias": sd["tower.0.bias"].to(torch.complex64)}, {},
                       "tower.0.bias is a torch.complex64 tensor"),
        "ints.pt": ({**sd, "tower.0.bias": sd["tower.0.bias"].to(torch.int64)}, {}, "tower.0.bias is a torch.int64"),
        "sparse.pt": ({**sd, "tower.0.bias": sd["tower.0.bias"].to_sparse()}, {}, "tower.0.bias is a torch.float32"),
        "channels.pt": (None, {"in_channels": "abc"}, "in_channels 'abc'"),
        "colour.pt": (None, {"in_channels": 3}, "in_channels 3; MC-CNN matches gray images"),
        "setting.pt": (None, {"setting": ["x"]}, r"its setting \['x'\] is not a name"),
        "keys.pt": ({1: torch.zeros(1)}, {}, "holds no state_dict of tensors"),
    }
    for name, (state, fields, words) in cases.items():
        with pytest.raises(StereoKitError, match=rf"{name}.*{words}"):
            model_from_file(_exported(tmp_path, name, state, **fields))
    half = _exported(tmp_path, "half.pt", {k: v.half() for k, v in sd.items()})  # another float precision is cast
    assert model_from_file(half).tower[0].weight.dtype == torch.float32


def test_weights_file_with_a_flipped_byte_is_refused_by_its_checksum(tmp_path):
    from learned.mccnn.weights import model_from_file

    good = _exported(tmp_path, "good.pt").read_bytes()
    raw = bytearray(good)
    at = good.index(b"data/0") + 200  # inside the first tensor record, stored uncompressed
    raw[at] ^= 0xFF
    (tmp_path / "flipped.pt").write_bytes(bytes(raw))
    with pytest.raises(StereoKitError, match=r"flipped\.pt is corrupt: its record .* fails its checksum"):
        model_from_file(tmp_path / "flipped.pt")


def test_resume_from_a_damaged_checkpoint_names_it(monkeypatch, tmp_path):
    args = ["--batch-size", "8", "--iterations", "2", "--validate-every", "100", "--seed", "1"]
    _toy_training(monkeypatch, tmp_path, args)
    good = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    for name, change in (("no rng", lambda c: c.pop("rng")), ("bad history", lambda c: c.update(history="{bad")),
                         ("history not a list", lambda c: c.update(history="{}")),
                         ("bad sampler", lambda c: c.update(sampler="zzz")),
                         ("negative iteration", lambda c: c.update(iteration=-5))):
        ck = dict(good)
        change(ck)
        torch.save(ck, tmp_path / "checkpoint.pt")
        with pytest.raises(StereoKitError, match=r"--resume: .*checkpoint\.pt is a damaged checkpoint"):
            _toy_training(monkeypatch, tmp_path, ["--iterations", "4", "--resume"])


def test_a_run_stopped_between_its_last_checkpoint_and_its_weights_can_be_finished(monkeypatch, tmp_path, capsys):
    args = ["--batch-size", "8", "--iterations", "3", "--checkpoint-every", "3", "--validate-every", "100"]
    _toy_training(monkeypatch, tmp_path / "a", args)
    full = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["state_dict"]
    _toy_training(monkeypatch, tmp_path / "b", args)
    for name in ("model.pt", "model.json"):  # killed after checkpoint.pt (iteration 3 of 3) was written
        (tmp_path / "b" / name).unlink()
    _toy_training(monkeypatch, tmp_path / "b", args + ["--resume"])  # used to be refused, as was a fresh start
    assert "is at its last iteration (3); writing the final weights" in capsys.readouterr().err
    resumed = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    with pytest.raises(StereoKitError, match=r"--resume: .*checkpoint\.pt is at iteration 3, not below --iterations 3"):
        _toy_training(monkeypatch, tmp_path / "b", args + ["--resume"])  # finished: nothing left to do


def test_resume_on_another_thread_count_says_the_bits_will_differ(monkeypatch, tmp_path, capsys):
    args = ["--batch-size", "8", "--iterations", "2", "--validate-every", "100"]
    _toy_training(monkeypatch, tmp_path, args)  # --threads 1 (see _toy_training)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["arithmetic"] == "cpu, 1 torch threads"
    capsys.readouterr()
    from learned.mccnn import train

    monkeypatch.setattr(train, "load_training_pairs", lambda specs, right_views=False: [_shifted_pair(seed=0, d=2)])
    monkeypatch.setattr(train, "load_validation_pairs", lambda spec, ds=1: [_shifted_pair(seed=99, d=4, name="teddy")])
    threads = torch.get_num_threads()
    try:
        train.main(["--iterations", "3", "--resume", "--out", str(tmp_path), "--no-progress", "--threads", "2"])
    finally:
        torch.set_num_threads(threads)
    assert ("was trained with cpu, 1 torch threads, this run uses cpu, 2 torch threads: the weights will not be "
            "bit-identical") in capsys.readouterr().err
