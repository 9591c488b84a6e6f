"""Train GC-Net: `stereokit train gcnet [options]` or `python -m learned.gcnet.train [options]`.

Supervised L1 loss on valid ground truth inside the network's disparity range (as the paper), random crops from
any dataset specs with ground truth (`--dataset`, repeatable; a spec may end in `@SCALE` to resample its pairs, GT
disparities multiplied by the same factor), RMSProp lr 1e-3 (the paper) or Adam, seeded, tqdm progress bar,
periodic validation (EPE / bad-2.0) on the held-out Middlebury scenes, atomic checkpoints with model, optimiser,
RNG state, iteration, settings, loss window, wall time and commands (`--resume`: continues exactly, as MC-CNN's;
settings left out come from the checkpoint, different ones are refused), fine-tuning from weights (`--init`).
A new run never writes into a folder holding a previous run's checkpoint or weights; every option, dataset and
output path is checked before the run folder is created.

The held-out scenes of `learned.splits.VALIDATION_SCENES` are removed from every training dataset, always.

Example (the shipped compact weights; see learned/weights/gcnet_compact.json for the exact commands):

    stereokit train gcnet --config compact --dataset synthetic:400:1000 --iters 3000 --run runs/gcnet-synth
    stereokit train gcnet --init runs/gcnet-synth/weights.pt --dataset middlebury:../shared/data@0.5 \\
        --dataset synthetic:400:1000 --iters 1500 --lr 2e-4 --run runs/gcnet-ft --out learned/weights/gcnet_compact.pt
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from stereokit.errors import StereoKitError
from stereokit.pair import StereoPair

from ..common import (
    arithmetic,
    atomic_save,
    check_kind,
    check_options,
    check_output_file,
    check_output_folder,
    check_run_folder,
    check_resume_position,
    check_resumed_iteration,
    check_state_dict,
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
from ..splits import is_held_out, training_indices
from .model import CONFIGS, GCNet, GCNetConfig, normalize_image, pad_to_multiple

WEIGHTS_FORMAT = "stereokit-gcnet-1"


# ----------------------------------------------------------------------------------------------- weights files


def save_weights(net: GCNet, path: str | os.PathLike, meta: dict | None = None) -> None:
    """Write `{"format", "config", "state_dict"}` (loadable with weights_only=True) and, if `meta`, a sibling .json."""
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    atomic_save({"format": WEIGHTS_FORMAT, "config": net.cfg.to_dict(), "state_dict": state}, path)
    if meta is not None:
        save_json_atomic(Path(path).with_suffix(".json"), meta)


def load_weights(path: str | os.PathLike, device: str | torch.device = "cpu") -> GCNet:
    """GCNet built from a weights file written by `save_weights` (or a training checkpoint); StereoKitError if unusable
    (e.g. an MC-CNN file: "X is an MC-CNN weights file, not a GC-Net one")."""
    obj = load_checkpoint(path, map_location="cpu")
    if check_kind(obj, path, "gcnet") == "checkpoint":
        obj = {"format": WEIGHTS_FORMAT, "config": obj.get("config"), "state_dict": obj.get("model")}
    if not isinstance(obj.get("config"), dict) or not isinstance(obj.get("state_dict"), dict):
        raise StereoKitError(f"{path} is not a usable GC-Net weights file (no config or state_dict)")
    try:
        cfg = GCNetConfig.from_dict(obj["config"])
    except (TypeError, StereoKitError) as exc:
        raise StereoKitError(f"{path}: bad GCNet config {obj['config']!r}: {exc}") from exc
    try:
        with torch.device("meta"):  # shapes first: a config asking for a huge network is refused before allocating it
            skeleton = GCNet(cfg)
    except (RuntimeError, ValueError, OverflowError) as exc:
        raise StereoKitError(f"{path}: GCNet config {obj['config']!r} describes no network that can be built ({exc})"
                             ) from None
    check_state_dict(skeleton, obj["state_dict"], path)
    net = GCNet(cfg)
    load_state_dict(net, obj["state_dict"], path)
    return net.to(choose_device(device)).eval()


# ----------------------------------------------------------------------------------------------- data


def resize_pair(pair: StereoPair, scale: float) -> StereoPair:
    """`pair` resampled by `scale` (area for downscaling, linear up); GT resampled nearest and multiplied by `scale`."""
    if scale == 1.0:
        return pair
    h, w = pair.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    left = cv2.resize(pair.left_float, size, interpolation=interp)
    right = cv2.resize(pair.right_float, size, interpolation=interp)
    gt = None
    if pair.gt is not None:
        gt = cv2.resize(pair.gt, size, interpolation=cv2.INTER_NEAREST) * np.float32(scale)
    return StereoPair(left, right, gt=gt, name=pair.name)


def parse_spec(spec: str) -> tuple[str, float]:
    """`"middlebury:PATH@0.5"` -> ("middlebury:PATH", 0.5); no suffix -> scale 1. An `@` followed by a path
    separator or colon belongs to the path."""
    m = re.fullmatch(r"(.*)@([^@/\\:]*)", spec)
    if not m:
        return spec, 1.0
    try:
        scale = float(m.group(2))
    except ValueError:
        scale = math.nan
    if not 0 < scale <= 4:
        raise StereoKitError(f"bad scale in dataset spec {spec!r}: must be a number in (0, 4]")
    return m.group(1), scale


def _open(spec: str, synthetic_max_disp: int | None):
    from stereokit.datasets import open_dataset, synthetic_spec_args

    if spec.strip().partition(":")[0].lower() == "synthetic" and synthetic_max_disp:
        # Our domain-randomised FlyingThings: generated with the network's disparity range.
        from stereokit.datasets.synthetic import synthetic_dataset

        count, seed = synthetic_spec_args(spec)
        return synthetic_dataset(count, seed, max_disp=synthetic_max_disp, height=256, width=320)
    return open_dataset(spec)


class CropSampler:
    """Random training crops from in-memory pairs (images kept as float32, GT NaN-invalid, already rescaled)."""

    def __init__(self, sets: list[list[StereoPair]], crop: tuple[int, int], max_disp: int, rng: np.random.Generator,
                 multiple: int = 1):
        self.sets = [s for s in sets if s]
        if not self.sets:
            raise StereoKitError("no training pairs with ground truth")
        # Smaller pairs are padded up to the crop, but a crop beyond every pair (rounded up to the network's size
        # multiple) is padding alone: no more signal, and memory that grows with it (a mistyped --crop 64 64000
        # would exhaust the machine's).
        most = [-(-max(p.shape[i] for s in self.sets for p in s) // multiple) * multiple for i in (0, 1)]
        if crop[0] > most[0] or crop[1] > most[1]:
            raise StereoKitError(f"--crop {crop[0]} {crop[1]} is larger than every training pair (after any @SCALE); "
                                 f"the largest useful crop is {most[0]} {most[1]}")
        self.crop, self.max_disp, self.rng = crop, max_disp, rng

    def sample(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ch, cw = self.crop
        ls, rs, gs = [], [], []
        for _ in range(batch):
            pairs = self.sets[int(self.rng.integers(len(self.sets)))]
            pair = pairs[int(self.rng.integers(len(pairs)))]
            h, w = pair.shape
            y = int(self.rng.integers(0, h - ch + 1)) if h > ch else 0
            x = int(self.rng.integers(0, w - cw + 1)) if w > cw else 0
            sl = (slice(y, y + ch), slice(x, x + cw))
            left, right, gt = pair.left_float[sl], pair.right_float[sl], pair.gt[sl]
            if left.shape[:2] != (ch, cw):  # smaller than the crop: pad (images replicate, GT invalid)
                ph, pw = ch - left.shape[0], cw - left.shape[1]
                pad = ((0, ph), (0, pw)) + ((0, 0),) * (left.ndim - 2)
                left, right = np.pad(left, pad, mode="edge"), np.pad(right, pad, mode="edge")
                gt = np.pad(gt, ((0, ph), (0, pw)), constant_values=np.nan)
            ls.append(normalize_image(left))
            rs.append(normalize_image(right))
            gs.append(torch.from_numpy(np.ascontiguousarray(gt)))
        return torch.cat(ls), torch.cat(rs), torch.stack(gs)


def load_sets(specs: list[str], max_disp: int, synthetic_max_disp: int | None) -> tuple[list[list[StereoPair]], list[dict]]:
    sets, info = [], []
    for full in specs:
        spec, scale = parse_spec(full)
        ds = _open(spec, synthetic_max_disp)
        pairs = []
        keep, skipped = training_indices(full, ds.names)
        for i in keep:
            pair = ds[i]
            if pair.gt is None:
                continue
            pair = resize_pair(pair, scale)
            pair.left_float, pair.right_float  # cache the float views once
            pairs.append(pair)
        sets.append(pairs)
        info.append({"spec": full, "pairs": len(pairs), "names": [p.name for p in pairs][:50], "held_out": skipped})
    return sets, info


def load_validation(spec: str | None) -> list[StereoPair]:
    """Validation pairs: only the held-out scenes of `spec` (default: the shared Middlebury data at half scale)."""
    if not spec:
        return []
    from stereokit.datasets import open_dataset

    base, scale = parse_spec(spec)
    ds = open_dataset(base)
    return [resize_pair(ds[i], scale) for i, n in enumerate(ds.names) if is_held_out(n)]


@torch.no_grad()
def validate(net: GCNet, pairs: list[StereoPair], max_disp: int, device: torch.device) -> dict:
    """EPE and bad-2.0 (%) over valid GT below max_disp, pixel-weighted over `pairs` (at their stored scale)."""
    if not pairs:
        return {}
    was_training = net.training
    net.eval()
    err_sum, bad, n = 0.0, 0, 0
    for pair in pairs:
        left, (h, w) = pad_to_multiple(normalize_image(pair.left_float), net.cfg.multiple)
        right, _ = pad_to_multiple(normalize_image(pair.right_float), net.cfg.multiple)
        disp, _ = net.predict(left.to(device), right.to(device), max_disp)
        disp = disp[0, :h, :w].cpu().numpy()
        valid = np.isfinite(pair.gt) & (pair.gt < max_disp)
        e = np.abs(disp[valid] - pair.gt[valid])
        err_sum += float(e.sum())
        bad += int((e > 2.0).sum())
        n += int(valid.sum())
    net.train(was_training)
    return {"epe": err_sum / max(n, 1), "bad2": 100.0 * bad / max(n, 1)}


# ----------------------------------------------------------------------------------------------- training


# Settings stored in each checkpoint; on --resume an option given again must match it, one left out is taken from it.
SETTING_FLAGS = {
    "config_name": "--config", "datasets": "--dataset", "synthetic_max_disp": "--synthetic-max-disp", "batch": "--batch",
    "crop": "--crop", "optim": "--optim", "lr": "--lr", "seed": "--seed", "init": "--init", "iters": "--iters",
}
DEFAULTS = {
    "config_name": "compact", "datasets": ["synthetic:200:1000"], "synthetic_max_disp": None, "batch": 2,
    "crop": [64, 128], "optim": "rmsprop", "lr": 1e-3, "seed": 0, "init": None, "iters": 3000,
}
_POS_INT = {"integer": True, "positive": True}
NUMERIC_OPTIONS = {
    "iters": _POS_INT, "batch": _POS_INT, "crop": _POS_INT, "synthetic_max_disp": _POS_INT, "threads": _POS_INT,
    "ckpt_every": _POS_INT, "val_every": _POS_INT, "seed": {"integer": True}, "lr": {"positive": True},
    "max_minutes": {"positive": True},
}
LOSS_WINDOW = 25  # iterations averaged in each logged loss


def build_parser() -> argparse.ArgumentParser:
    from stereokit.cli import OneLineErrorParser  # argument errors as one line, as every stereokit command

    p = OneLineErrorParser(
        prog="stereokit train gcnet", description=__doc__.split("\n\n")[0],
        epilog="A new run refuses a --run folder that already holds a checkpoint or weights (resume it or choose "
               "another folder). With --resume, --config, --dataset, --synthetic-max-disp, --batch, --crop, --optim, "
               "--lr, --seed and --init left out are taken from the checkpoint and, if given, must equal its values; --iters "
               "may change (lengthen or shorten the run).")
    p.add_argument("--config", default=None, choices=sorted(CONFIGS), help="network configuration (default compact)")
    p.add_argument("--dataset", action="append", default=None, metavar="SPEC[@SCALE]",
                   help="training data with GT (repeatable; sampled equally per dataset); default synthetic:200:1000")
    p.add_argument("--synthetic-max-disp", type=int, default=None,
                   help="generate synthetic specs with this disparity range (default: the network's max_disp)")
    p.add_argument("--val", default="auto", metavar="SPEC[@SCALE]",
                   help="validation data: its held-out scenes only (default: the shared Middlebury data @0.5; 'none')")
    p.add_argument("--iters", type=int, default=None, help="training iterations (default 3000)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop (and save) after this much wall time in this session")
    p.add_argument("--batch", type=int, default=None, help="crops per iteration (default 2)")
    p.add_argument("--crop", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="crop size, multiples of the network's size multiple (16 for compact; default 64 128)")
    p.add_argument("--optim", choices=("rmsprop", "adam"), default=None, help="rmsprop (the paper, default) or adam")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-3)")
    p.add_argument("--seed", type=int, default=None, help="seed (default 0)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)")
    p.add_argument("--device", default=None, help="cpu / cuda (default: CUDA when available)")
    p.add_argument("--run", default=None,
                   help="run folder: checkpoints and log (default runs/gcnet, or the folder of the --resume checkpoint)")
    p.add_argument("--out", default=None, help="final weights file (default RUN/weights.pt); a .json beside it")
    p.add_argument("--init", default=None, help="start from these weights (fine-tuning)")
    p.add_argument("--resume", default=None, metavar="CHECKPOINT",
                   help="resume a checkpoint (RUN/last.pt) exactly: model, optimiser, RNG, iteration, settings")
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--val-every", type=int, default=250)
    p.add_argument("--no-progress", action="store_true")
    return p


def _default_val() -> str | None:
    from learned.common import shared_data_dir

    path = shared_data_dir()
    return f"middlebury:{path}@0.5" if path is not None else None


def load_resume(path: Path) -> dict:
    """The GC-Net training checkpoint to resume; a missing file or another kind of file raises StereoKitError."""
    if not path.is_file():
        raise StereoKitError(f"--resume: no checkpoint at {path}")
    ckpt = load_checkpoint(path)
    check_kind(ckpt, path, "gcnet", kinds=("checkpoint",), flag="--resume")
    if not isinstance(ckpt.get("config"), dict) or "model" not in ckpt or "iteration" not in ckpt:
        raise StereoKitError(f"--resume: {path} is an incomplete GC-Net checkpoint")
    check_resumed_iteration(ckpt["iteration"], path)
    return ckpt


def saved_settings(ckpt: dict) -> dict:
    """The settings a checkpoint was trained with (older checkpoints: its config's name and its optimiser)."""
    if isinstance(ckpt.get("settings"), dict):
        return dict(ckpt["settings"])
    name = next((n for n, c in CONFIGS.items() if c.to_dict() == ckpt["config"]), None)
    groups = ckpt.get("optimizer", {}).get("param_groups") or [{}]
    return {"config_name": name, "optim": "adam" if "betas" in groups[0] else "rmsprop"}


def given_settings(args: argparse.Namespace) -> dict:
    """The settings given on the command line (None = left out)."""
    given = {
        "config_name": args.config, "datasets": args.dataset, "synthetic_max_disp": args.synthetic_max_disp,
        "batch": args.batch, "crop": list(args.crop) if args.crop else None, "optim": args.optim, "lr": args.lr,
        "seed": args.seed, "init": args.init, "iters": args.iters,
    }
    return {k: v for k, v in given.items() if v is not None}


def check_run(run: Path, resume: Path | None) -> None:
    """A new run must not overwrite another's checkpoint or weights; a resumed one only its own checkpoint."""
    if resume is None:
        check_run_folder(run, ("last.pt", "weights.pt"), False, (f"--resume {run / 'last.pt'}", "--run"))
        return
    check_output_folder(run, "--run")
    last = run / "last.pt"
    if last.exists() and not last.samefile(resume):
        raise StereoKitError(f"--run {run} already holds another checkpoint ({last}); resume that one or choose another --run")


def check_crop(crop: list[int], cfg: GCNetConfig) -> tuple[int, int]:
    """The crop as (H, W), each a multiple of the network's size multiple; else StereoKitError."""
    if any(c % cfg.multiple for c in crop):
        up = [int(math.ceil(c / cfg.multiple) * cfg.multiple) for c in crop]
        raise StereoKitError(f"--crop {crop[0]} {crop[1]}: both must be multiples of {cfg.multiple} for this network "
                             f"(e.g. --crop {up[0]} {up[1]})")
    return int(crop[0]), int(crop[1])


def make_optimizer(net: GCNet, name: str, lr: float) -> torch.optim.Optimizer:
    """RMSprop (the paper) or Adam over the network's parameters."""
    cls = torch.optim.Adam if name == "adam" else torch.optim.RMSprop
    return cls(net.parameters(), lr=lr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_options(args, NUMERIC_OPTIONS)
    device = choose_device(args.device)
    resume = Path(args.resume) if args.resume else None
    run = Path(args.run) if args.run else (resume.parent if resume else Path("runs/gcnet"))
    ckpt = load_resume(resume) if resume else None
    check_run(run, resume)
    given = given_settings(args)
    if ckpt:
        settings = merge_settings(saved_settings(ckpt), given, DEFAULTS, SETTING_FLAGS, resume, free=("iters",))
    else:
        settings = {**DEFAULTS, **given}
    cfg = GCNetConfig.from_dict(ckpt["config"]) if ckpt else CONFIGS[settings["config_name"]]
    crop = check_crop(settings["crop"], cfg)
    iters = settings["iters"]
    out = check_output_file(Path(args.out) if args.out else run / "weights.pt", "--out")
    if ckpt:
        check_resume_position(ckpt["iteration"], iters, out, resume, "--iters")
    torch.set_num_threads(args.threads)
    if ckpt:
        note_other_arithmetic(ckpt.get("arithmetic"), device, resume)
    argv = argv if argv is not None else sys.argv[1:]
    command = "stereokit train gcnet " + " ".join(shlex.quote(a) for a in argv)

    seed_everything(settings["seed"])
    net = GCNet(cfg)
    if settings["init"] and not ckpt:
        try:
            init = load_weights(settings["init"])
        except StereoKitError as exc:
            raise StereoKitError(f"--init: {exc}") from None
        if init.cfg != cfg:
            raise StereoKitError(f"--init weights have config {init.cfg}, but --config {settings['config_name']} is {cfg}")
        net.load_state_dict(init.state_dict())
    net.to(device).train()
    opt = make_optimizer(net, settings["optim"], settings["lr"])

    sets, data_info = load_sets(settings["datasets"], cfg.max_disp, settings["synthetic_max_disp"] or cfg.max_disp)
    val_spec = _default_val() if args.val == "auto" else (None if args.val.lower() == "none" else args.val)
    val_pairs = load_validation(val_spec)
    rng = np.random.default_rng(settings["seed"])
    sampler = CropSampler(sets, crop, cfg.max_disp, rng, multiple=cfg.multiple)
    start, history, losses, wall0, commands = 0, [], [], 0.0, [command]
    if ckpt:
        with restoring(resume):
            load_state_dict(net, ckpt["model"], resume)
            opt.load_state_dict(ckpt["optimizer"])
            set_rng_state(ckpt["rng"])
            rng.bit_generator.state = json.loads(ckpt["sampler_rng"])
            start, history = ckpt["iteration"], json_list(ckpt["history"])
            losses = json.loads(ckpt.get("loss_window", "[]"))
            wall0 = float(ckpt.get("wall", 0.0))
            commands = json.loads(ckpt.get("commands", "[]")) + [command]

    def checkpoint(it: int) -> None:
        atomic_save(
            {
                "format": checkpoint_format("gcnet"),
                "model": net.state_dict(),
                "optimizer": opt.state_dict(),
                "rng": rng_state(),
                "sampler_rng": json.dumps(rng.bit_generator.state),
                "iteration": it,
                "config": cfg.to_dict(),
                "settings": settings,
                "history": json.dumps(history),
                "loss_window": json.dumps(losses[-LOSS_WINDOW:]),
                "wall": time.time() - t0,
                "commands": json.dumps(commands),
                "arithmetic": arithmetic(device),
            },
            run / "last.pt",
        )

    from tqdm import tqdm

    run.mkdir(parents=True, exist_ok=True)  # everything above checked: a failed start leaves nothing behind
    log = open_log(run / "log.jsonl", history)
    session0 = time.time()
    t0 = session0 - wall0  # elapsed times and train_wall_s count every session of the run
    it = start
    bar = tqdm(range(start, iters), initial=start, total=iters, disable=args.no_progress, desc="gcnet",
               dynamic_ncols=True, mininterval=5)
    last_val: dict = history[-1]["val"] if history and "val" in history[-1] else {}
    for it in bar:
        left, right, gt = sampler.sample(settings["batch"])
        left, right, gt = left.to(device), right.to(device), gt.to(device)
        disp, _ = net.predict(left, right, cfg.max_disp)
        valid = torch.isfinite(gt) & (gt >= 0) & (gt < cfg.max_disp)
        if not bool(valid.any()):
            continue
        loss = torch.nn.functional.l1_loss(disp[valid], gt[valid])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        del losses[:-LOSS_WINDOW]
        done = it + 1
        if done % args.val_every == 0 or done == iters:
            last_val = validate(net, val_pairs, cfg.max_disp, device)
        if done % LOSS_WINDOW == 0 or done == iters:
            rec = {"iter": done, "loss": float(np.mean(losses)), "elapsed_s": round(time.time() - t0, 1)}
            if done % args.val_every == 0 or done == iters:
                rec["val"] = last_val
            history.append(rec)
            log.write(json.dumps(rec) + "\n")
            log.flush()
        bar.set_postfix(loss=f"{np.mean(losses):.3f}", **{f"val_{k}": f"{v:.2f}" for k, v in last_val.items()})
        if done % args.ckpt_every == 0:
            checkpoint(done)
        if args.max_minutes is not None and time.time() - session0 > 60 * args.max_minutes:
            it = done
            break
    else:
        it = iters
    bar.close()
    it = max(it, start)
    if not last_val or (history and history[-1].get("iter") != it):
        last_val = validate(net, val_pairs, cfg.max_disp, device)
    checkpoint(it)
    meta = {
        "model": "gcnet",
        "config_name": settings["config_name"],
        "config": cfg.to_dict(),
        "iterations": it,
        "seed": settings["seed"],
        "optimizer": {"name": settings["optim"], "lr": settings["lr"]},
        "batch": settings["batch"],
        "crop": list(crop),
        "loss": "L1 on valid GT in [0, max_disp)",
        "data": data_info,
        "init": settings["init"],
        "validation": {"spec": val_spec, "scenes": [p.name for p in val_pairs], "at_end": last_val,
                       "note": "EPE (px) and bad-2.0 (%) at the validation spec's scale"},
        "train_wall_s": round(time.time() - t0, 1),
        "command": commands[0] if len(commands) == 1 else commands,
        "torch": torch.__version__,
    }
    save_weights(net, out, meta)
    log.close()
    print(f"saved {out} after {it} iterations; validation {last_val}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
