"""`stereokit train mccnn ...`: train an MC-CNN network (fast or accurate) on any datasets with ground truth.

SGD with momentum 0.9, batch 128 (pixels, each giving one positive and one negative pair, as the reference code),
learning rate fast 0.002 / acrt 0.003 divided by 10 after 11/14 of the run (the reference code's 14 epochs divide it
at the start of epoch 12, so epochs 12-14 train at lr / 10; the shipped weights, trained before this was corrected,
dropped it after 12/14: their JSON lists every iteration at which it changed).
Validation on the held-out scenes (learned.splits.VALIDATION_SCENES, never trained on): `val_bad2`, the WTA of the
network's own cost, % of valid ground-truth pixels (non-occluded where known) wrong by more than 2 px; and
`val_triplet_err`, the training objective's error on held-out patch triplets (see `triplet_error`).
Checkpoints (model, optimiser, RNG states, iteration) are written atomically to OUT/checkpoint.pt every
--checkpoint-every iterations; --resume continues exactly (a different --iterations may be given on resume to
lengthen or shorten the run; the lr drop moves with it; the other training settings come from the checkpoint and
must not be given with other values). OUT/model.pt (+ .json) holds the final weights. A new run never writes into
a folder holding a previous run's checkpoint or model, and every option, dataset and output path is checked before
OUT is created. --init WEIGHTS starts a new run from trained weights instead of a random network (fine-tuning, e.g.
the shipped weights on a user's own KITTI copy); the optimiser, the schedule and the sampler start afresh.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from learned.common import (
    arithmetic,
    atomic_save,
    check_kind,
    check_options,
    check_output_file,
    check_run_folder,
    check_resume_position,
    check_resumed_iteration,
    checkpoint_format,
    choose_device,
    json_list,
    load_checkpoint,
    load_state_dict,
    merge_settings,
    note_other_arithmetic,
    open_log,
    restoring,
    rng_state,
    save_json_atomic,
    seed_everything,
    set_rng_state,
)
from learned.splits import VALIDATION_SCENES, is_held_out, training_indices
from stereokit.errors import StereoKitError

from .model import FastNet, build_model, mccnn_cost_volume
from .sampler import OFFSETS, Augmentation, PatchSampler, prepare_scene

LEARNING_RATES = {"fast": 0.002, "acrt": 0.003}
MARGIN = 0.2
WEIGHTS_FORMAT = "stereokit-mccnn-1"


def default_shared_data() -> Path | None:
    """The shared Middlebury scenes, when present (only for defaults; never required)."""
    from learned.common import shared_data_dir

    return shared_data_dir()


def loss_fn(model, left: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """fast: hinge max(0, m + s_neg - s_pos); acrt: binary cross-entropy on sigmoid outputs (1 = match)."""
    if isinstance(model, FastNet):
        n = len(left)
        f = model.features(torch.cat([left, pos, neg])).flatten(1)  # left features computed once for both pairs
        s_pos = (f[:n] * f[n : 2 * n]).sum(1)
        s_neg = (f[:n] * f[2 * n :]).sum(1)
        return F.relu(MARGIN + s_neg - s_pos).mean()
    lg = model.logits(torch.cat([left, left]), torch.cat([pos, neg]))
    target = torch.cat([torch.ones(len(left)), torch.zeros(len(left))]).to(lg)
    return F.binary_cross_entropy_with_logits(lg, target)


def scene_max_disp(pair) -> int:
    """Disparity range for validating on a pair: its ground truth's maximum + 1, capped below the width."""
    gt = pair.gt
    top = int(math.ceil(float(np.nanmax(gt)))) + 1 if np.isfinite(gt).any() else 16
    return max(1, min(top, pair.width - 1))


def wta_error(model, pairs, threshold: float = 2.0, device=None) -> float:
    """% of valid (non-occluded when known) ground-truth pixels where the WTA of the network's cost is off by > threshold."""
    bad = total = 0
    was_training = model.training
    for pair in pairs:
        vol = mccnn_cost_volume(model, pair.left_gray, pair.right_gray, scene_max_disp(pair), device=device)
        disp = np.argmin(vol, axis=2).astype(np.float32)
        ok = np.isfinite(pair.gt)
        if pair.nonocc is not None:
            ok &= pair.nonocc
        bad += int((np.abs(disp - pair.gt)[ok] > threshold).sum())
        total += int(ok.sum())
    model.train(was_training)
    return 100.0 * bad / max(total, 1)


@torch.no_grad()
def triplet_error(model, pairs, offsets, n: int = 4096, seed: int = 12345, device=None) -> float:
    """Held-out error of the training objective, in %: on (left, positive, negative) patch triplets drawn from `pairs`
    with a fixed seed and no augmentation, fast: the share of triplets not separated by the margin
    (s_pos - s_neg < 0.2, the hinge loss's errors); acrt: the share of the 2n pairs misclassified at 0.5."""
    scenes = [s for s in (prepare_scene(p) for p in pairs) if s is not None]
    if not scenes:
        return float("nan")
    was_training = model.training
    model.eval()
    b = PatchSampler(scenes, model.patch_size, offsets, Augmentation.identity(), seed=seed).draw(n)
    dev = next(model.parameters()).device if device is None else choose_device(device)
    left, pos, neg = (torch.from_numpy(b[k]).to(dev) for k in ("left", "pos", "neg"))
    s_pos, s_neg = model(left, pos), model(left, neg)
    if isinstance(model, FastNet):
        err = (s_pos - s_neg < MARGIN).float().mean()
    else:
        err = ((s_pos < 0.5).float().mean() + (s_neg >= 0.5).float().mean()) / 2
    model.train(was_training)
    return float(err) * 100.0


def load_training_pairs(specs: list[str], right_views: bool = False) -> list:
    """All pairs with ground truth from the dataset specs, never a held-out validation scene; with `right_views`,
    also each pair seen from its right camera where its right GT is known (`stereokit.datasets.views`).
    Each pair gets `meta["train_source"]` = the index of its spec (for balancing)."""
    from stereokit.datasets import open_dataset
    from stereokit.datasets.views import right_reference

    pairs = []
    for k, spec in enumerate(specs):
        ds = open_dataset(spec)
        for i in training_indices(spec, ds.names)[0]:
            pair = ds[i]
            if pair.gt is not None and not is_held_out(pair.name):
                pair.meta["train_source"] = k
                pairs.append(pair)
                mirrored = right_reference(pair) if right_views else None
                if mirrored is not None:
                    pairs.append(mirrored)
    if not pairs:
        raise StereoKitError(f"no training pair with ground truth in {specs}")
    return pairs


def load_validation_pairs(spec: str | None, downscale: int = 1) -> list:
    """Held-out scenes (VALIDATION_SCENES) from `spec` (default: the shared Middlebury data), optionally downscaled."""
    if spec is None:
        root = default_shared_data()
        if root is None:
            return []
        spec = f"middlebury:{root}"
    from stereokit.datasets import open_dataset

    ds = open_dataset(spec)
    out = []
    for i, name in enumerate(ds.names):
        if is_held_out(name):
            pair = ds[i]
            if pair.gt is not None:
                out.append(downscale_pair(pair, downscale) if downscale > 1 else pair)
    return out


def downscale_pair(pair, factor: int):
    """Pair at 1/factor resolution (area-averaged images, nearest-sampled disparities divided by factor)."""
    import cv2

    from stereokit.pair import StereoPair

    H, W = pair.shape
    size = (W // factor, H // factor)
    left = cv2.resize(pair.left_gray, size, interpolation=cv2.INTER_AREA)
    right = cv2.resize(pair.right_gray, size, interpolation=cv2.INTER_AREA)
    gt = pair.gt[factor // 2 :: factor, factor // 2 :: factor][: size[1], : size[0]] / factor
    nonocc = None if pair.nonocc is None else pair.nonocc[factor // 2 :: factor, factor // 2 :: factor][: size[1], : size[0]]
    return StereoPair(left, right, gt=gt, nonocc=nonocc, name=pair.name)


def export_weights(model, path: str | os.PathLike, meta: dict) -> None:
    """Ship `model` as {format, arch, setting, in_channels, state_dict} (+ `meta` as JSON beside it), atomically."""
    path = Path(path)
    atomic_save({"format": WEIGHTS_FORMAT, **model.config(), "state_dict": model.state_dict()}, path)
    save_json_atomic(path.with_suffix(".json"), meta)


def init_from(model: torch.nn.Module, weights: str, arch: str, setting: str) -> None:
    """Load `weights` ('shipped' or a file) into `model`, which must be MC-CNN-`arch` in `setting`."""
    from .weights import load_model, shipped_weights

    path = shipped_weights(arch) if weights == "shipped" else Path(weights)
    try:
        src = load_model(arch, None if weights == "shipped" else path, "cpu")  # missing / corrupt / other network
    except StereoKitError as exc:
        raise StereoKitError(f"--init: {exc}") from None
    if src.setting != setting:
        raise StereoKitError(f"--init: {path} holds MC-CNN-{arch} weights for the {src.setting!r} setting, "
                             f"not {setting!r}; train with --setting {src.setting}")
    load_state_dict(model, src.state_dict(), path)


# Settings stored in each checkpoint; on --resume an option given again must match it, one left out is taken from it.
SETTING_FLAGS = {
    "arch": "--arch", "setting": "--setting", "datasets": "--dataset", "iterations": "--iterations",
    "batch_size": "--batch-size", "lr": "--lr", "momentum": "--momentum", "seed": "--seed",
    "augment": "--no-augment (augment)", "balance": "--balance", "right_views": "--right-views", "init": "--init",
}
DEFAULTS = {
    "arch": "fast", "setting": "middlebury", "iterations": 20000, "batch_size": 128, "momentum": 0.9, "seed": 0,
    "augment": True, "balance": False, "right_views": False, "init": None,
}
_POS_INT = {"integer": True, "positive": True}
NUMERIC_OPTIONS = {
    "iterations": _POS_INT, "batch_size": _POS_INT, "checkpoint_every": _POS_INT, "validate_every": _POS_INT,
    "threads": _POS_INT, "validation_downscale": _POS_INT, "seed": {"integer": True}, "lr": {"positive": True},
    "momentum": {},
}
RUN_FILES = ("checkpoint.pt", "model.pt")


def build_parser() -> argparse.ArgumentParser:
    from stereokit.cli import OneLineErrorParser  # argument errors as one line, as every stereokit command

    p = OneLineErrorParser(
        prog="stereokit train mccnn", description=__doc__.split("\n")[0],
        epilog="A new run refuses an --out folder that already holds a checkpoint or model (resume it or choose "
               "another folder). With --resume, --arch, --setting, --dataset, --batch-size, --lr, --momentum, "
               "--seed, --balance, --no-augment, --right-views and --init left out are taken from the checkpoint and, if given, "
               "must equal its values; --iterations may change (lengthen or shorten the run).")
    p.add_argument("--arch", choices=["fast", "acrt", "accurate"], default=None, help="default fast")
    p.add_argument("--setting", choices=["middlebury", "kitti"], default=None, help="default middlebury")
    p.add_argument("--dataset", action="append", default=None,
                   help="dataset spec with ground truth (repeatable); default: synthetic:200 plus the shared Middlebury scenes")
    p.add_argument("--validation", default=None,
                   help="dataset spec holding the held-out scenes (default: middlebury:<shared data>); 'none' to skip")
    p.add_argument("--validation-downscale", type=int, default=1, help="validate at 1/N resolution (faster)")
    p.add_argument("--iterations", type=int, default=None,
                   help="SGD steps (default 20000); the learning rate drops to 1/10 after 11/14 of them")
    p.add_argument("--batch-size", type=int, default=None, help="default 128")
    p.add_argument("--lr", type=float, default=None, help="default: fast 0.002, acrt 0.003")
    p.add_argument("--momentum", type=float, default=None, help="default 0.9")
    p.add_argument("--seed", type=int, default=None, help="default 0")
    p.add_argument("--balance", action="store_true", default=None,
                   help="draw the same number of samples from each --dataset (default: uniform over all pixels)")
    p.add_argument("--no-augment", action="store_true", default=None, help="switch off the Middlebury augmentation")
    p.add_argument("--right-views", action="store_true", default=None,
                   help="also train on each pair seen from its right camera (mirrored), where its right GT is known")
    p.add_argument("--out", default="runs/mccnn", help="run directory (checkpoint.pt, log.jsonl, model.pt)")
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--validate-every", type=int, default=2000)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt (which must exist)")
    p.add_argument("--init", default=None,
                   help="start from these weights (an exported .pt or a checkpoint) instead of a random network; "
                        "'shipped' for the shipped weights of --arch")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default=None, help="cpu / cuda (default: CUDA when available)")
    p.add_argument("--export", default=None, help="also write the final weights (+ .json) to this path")
    p.add_argument("--no-progress", action="store_true")
    return p


def given_settings(args: argparse.Namespace) -> dict:
    """The settings given on the command line (left-out ones absent)."""
    given = {
        "arch": None if args.arch is None else ("acrt" if args.arch in ("acrt", "accurate") else "fast"),
        "setting": args.setting, "datasets": args.dataset, "iterations": args.iterations,
        "batch_size": args.batch_size, "lr": args.lr, "momentum": args.momentum, "seed": args.seed,
        "augment": None if args.no_augment is None else False, "balance": args.balance,
        "right_views": args.right_views, "init": args.init,
    }
    return {k: v for k, v in given.items() if v is not None}


def default_datasets() -> list[str]:
    """synthetic:200 plus the shared Middlebury scenes when present."""
    root = default_shared_data()
    return ["synthetic:200"] + ([f"middlebury:{root}"] if root is not None else [])


def load_resume(path: Path) -> tuple[dict, dict]:
    """The MC-CNN checkpoint at `path` and its settings; another kind of file raises StereoKitError naming it."""
    from .weights import checkpoint_config

    ck = load_checkpoint(path)
    check_kind(ck, path, "mccnn", kinds=("checkpoint",), flag="--resume")
    check_resumed_iteration(ck.get("iteration"), path)
    return ck, checkpoint_config(ck, path)


def run_config(args: argparse.Namespace, saved: dict | None, ckpt_path: Path) -> dict:
    """The run's settings: defaults + the command line, or on resume the checkpoint's (see the --help epilog)."""
    given = given_settings(args)
    if saved is not None:
        config = merge_settings(saved, given, DEFAULTS, SETTING_FLAGS, ckpt_path, free=("iterations",))
    else:
        config = {**DEFAULTS, **given}
    config.setdefault("lr", LEARNING_RATES[config["arch"]])
    config.setdefault("datasets", default_datasets())
    config["offsets"] = OFFSETS[(config["setting"], config["arch"])]
    return config


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_options(args, NUMERIC_OPTIONS)
    if args.momentum is not None and args.momentum >= 1:
        raise StereoKitError(f"--momentum must be below 1 (SGD's velocity would never decay), got {args.momentum}")
    device = choose_device(args.device)
    out = Path(args.out)
    ckpt_path = out / "checkpoint.pt"
    check_run_folder(out, RUN_FILES, args.resume, ("--resume", "--out"))
    ck, saved = load_resume(ckpt_path) if args.resume else (None, None)
    config = run_config(args, saved, ckpt_path)
    arch, setting, iterations, lr0 = config["arch"], config["setting"], config["iterations"], config["lr"]
    if ck is not None:
        check_resume_position(ck["iteration"], iterations, out / "model.pt", ckpt_path, "--iterations")
    if args.export:
        check_output_file(args.export, "--export")
    if args.threads:
        torch.set_num_threads(args.threads)
    if ck is not None:
        note_other_arithmetic(ck.get("arithmetic"), device, ckpt_path)

    seed_everything(config["seed"])
    model = build_model(arch, setting).to(device)
    if config["init"] and ck is None:  # before the data load, so that a bad --init fails at once
        init_from(model, config["init"], arch, setting)
    opt = torch.optim.SGD(model.parameters(), lr=lr0, momentum=config["momentum"])
    pairs = load_training_pairs(config["datasets"], config["right_views"])
    prepared = [(p.meta.get("train_source", 0), prepare_scene(p)) for p in pairs]
    prepared = [(src, sc) for src, sc in prepared if sc is not None]
    weights = None
    if config["balance"]:  # every dataset spec gets the same share of the samples, whatever its pixel count
        totals: dict[int, int] = {}
        for src, sc in prepared:
            totals[src] = totals.get(src, 0) + len(sc.ys)
        weights = [1.0 / totals[src] for src, _ in prepared]
    augment = Augmentation() if (setting == "middlebury" and config["augment"]) else Augmentation.identity()
    sampler = PatchSampler([sc for _, sc in prepared], model.patch_size, config["offsets"], augment,
                           seed=config["seed"], scene_weights=weights)
    val_pairs = [] if args.validation == "none" else load_validation_pairs(args.validation, args.validation_downscale)

    command = "stereokit train mccnn " + " ".join(argv if argv is not None else sys.argv[1:])
    start, history, wall0, commands, avg_resumed = 0, [], 0.0, [command], -1.0
    if ck is not None:
        # A different --iterations (a longer or shorter run) is allowed; the lr drop moves with it.
        with restoring(ckpt_path):
            load_state_dict(model, ck["model"], ckpt_path)
            opt.load_state_dict(ck["optimizer"])
            set_rng_state(ck["rng"])
            sampler.set_state(ck["sampler"])
            start, history, wall0 = ck["iteration"], json_list(ck["history"]), float(ck["wall"])
            commands = json.loads(ck.get("commands", "[]")) + [command]
            avg_resumed = float(ck.get("loss_avg", -1.0))

    def save_checkpoint(it: int, wall: float) -> None:
        atomic_save({"format": checkpoint_format("mccnn"), "model": model.state_dict(), "optimizer": opt.state_dict(),
                     "rng": rng_state(), "sampler": sampler.state(), "iteration": it, "config": json.dumps(config),
                     "history": json.dumps(history), "wall": wall, "arithmetic": arithmetic(device),
                     "commands": json.dumps(commands), "loss_avg": -1.0 if avg is None else avg}, ckpt_path)

    from tqdm import tqdm

    drop_at = int(round(iterations * 11 / 14))  # epoch 12 of 14 starts after 11
    out.mkdir(parents=True, exist_ok=True)  # everything above checked: a failed start leaves nothing behind
    log = open_log(out / "log.jsonl", history)
    t0 = time.time() - wall0
    bar = tqdm(range(start, iterations), initial=start, total=iterations, disable=args.no_progress,
               desc=f"mccnn-{arch}", dynamic_ncols=True, mininterval=5.0)
    avg = None if avg_resumed < 0 else avg_resumed
    val_err = history[-1]["val_bad2"] if history and "val_bad2" in history[-1] else float("nan")
    val_triplet = history[-1].get("val_triplet_err", float("nan")) if history else float("nan")
    model.train()
    for it in bar:
        for g in opt.param_groups:
            g["lr"] = lr0 if it < drop_at else lr0 / 10
        b = sampler.draw(config["batch_size"])
        left, pos, neg = (torch.from_numpy(b[k]).to(device) for k in ("left", "pos", "neg"))
        loss = loss_fn(model, left, pos, neg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lv = float(loss.detach())
        avg = lv if avg is None else 0.99 * avg + 0.01 * lv
        done = it + 1
        if val_pairs and (done % args.validate_every == 0 or done == iterations):
            val_err = wta_error(model, val_pairs, device=device)
            val_triplet = triplet_error(model, val_pairs, config["offsets"], device=device)
            model.train()
        if done % args.checkpoint_every == 0 or done == iterations or (val_pairs and done % args.validate_every == 0):
            rec = {"iteration": done, "loss": avg, "lr": opt.param_groups[0]["lr"], "wall_s": round(time.time() - t0, 1)}
            if val_pairs and (done % args.validate_every == 0 or done == iterations):
                rec["val_bad2"] = val_err
                rec["val_triplet_err"] = val_triplet
            history.append(rec)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            save_checkpoint(done, time.time() - t0)
        bar.set_postfix(loss=f"{avg:.4f}", val_bad2=f"{val_err:.2f}%", refresh=False)
    bar.close()
    log.close()
    wall = time.time() - t0
    meta = {
        "arch": arch, "setting": setting, "data": config["datasets"], "validation_scenes": list(VALIDATION_SCENES),
        "iterations": iterations, "batch_size": config["batch_size"], "seed": config["seed"], "lr": lr0,
        "init": config["init"], "wall_time_s": round(wall, 1), "final_loss": avg,
        "validation": {"metric": "WTA of the network cost, % pixels with |d - gt| > 2 on the held-out scenes",
                       "bad2": val_err if val_pairs else None,
                       "triplet_err": val_triplet if val_pairs else None,
                       "triplet_metric": "% of held-out patch triplets (paper offsets, no augmentation) violating the margin "
                                         "(fast) / pairs misclassified (acrt)"},
        "history": history,
        "command": commands[0] if len(commands) == 1 else commands,
        "torch": torch.__version__,
    }
    export_weights(model, out / "model.pt", meta)
    if args.export:
        export_weights(model, args.export, meta)
    print(json.dumps({k: meta[k] for k in ("iterations", "wall_time_s", "final_loss", "validation")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
