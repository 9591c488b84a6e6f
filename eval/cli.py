"""`stereokit eval --dataset SPEC --pred DIR [--json FILE] [--no-fill]`: score a folder of predictions."""

from __future__ import annotations

import argparse
from pathlib import Path

from stereokit.errors import StereoKitError

from .metrics import evaluate_dataset, evaluate_pair, format_table, save_json

# Looked up in this order when several files exist for one pair: float formats before the 1/256-px KITTI PNG.
PREDICTION_SUFFIXES: tuple[str, ...] = (".pfm", ".npy", ".png")


def find_prediction(pred_dir: str | Path, pair_name: str) -> Path | None:
    """DIR/<pair name>.pfm, .npy or .png (first that exists, in that order), or None."""
    for suffix in PREDICTION_SUFFIXES:
        path = Path(pred_dir) / f"{pair_name}{suffix}"
        if path.is_file():
            return path
    return None


def _missing_message(missing: list[str], total: int, pred_dir: Path) -> str:
    expected = "/".join(PREDICTION_SUFFIXES)
    if len(missing) == 1:
        return f"no prediction for pair {missing[0]!r} in {pred_dir} (expected {missing[0]}{expected.replace('/', ', ')})"
    shown = ", ".join(repr(n) for n in missing[:5]) + (", ..." if len(missing) > 5 else "")
    return (
        f"no predictions for {len(missing)} of {total} pairs in {pred_dir}: {shown} "
        f"(expected <pair name>{{{expected.replace('/', ',')}}})"
    )


def run_eval(args: argparse.Namespace) -> int:
    """Score every pair of `args.dataset` against `args.pred`/<pair name>.{pfm,png,npy}, print the table, and write
    `args.json` if given. `args.no_fill` scores only valid estimates instead of filling invalid ones first.

    All predictions are located before any is read, so a missing file fails at once with every missing pair named.
    """
    from stereokit.datasets import open_dataset
    from stereokit.io import read_disparity

    pred_dir = Path(args.pred)
    if not pred_dir.is_dir():
        raise StereoKitError(f"prediction folder not found: {pred_dir}")
    json_path = getattr(args, "json", None)
    if json_path and Path(json_path).is_dir():  # fail before scoring, not after
        raise StereoKitError(f"--json {json_path} is a folder; give a file name")
    dataset = open_dataset(args.dataset)
    names = list(dataset.names)
    if not names:
        raise StereoKitError(f"dataset {args.dataset!r} has no pairs")
    paths = {name: find_prediction(pred_dir, name) for name in names}
    missing = [name for name, path in paths.items() if path is None]
    if missing:
        raise StereoKitError(_missing_message(missing, len(names), pred_dir))

    fill = not getattr(args, "no_fill", False)
    results = {}
    for i, name in enumerate(names):
        pair = dataset[i]
        if pair.gt is None:
            raise StereoKitError(f"pair {name!r} of dataset {args.dataset!r} has no ground truth to score against")
        path = paths[name]
        pred = read_disparity(path)
        try:
            results[name] = evaluate_pair(pred, pair.gt, nonocc=pair.nonocc, fg=pair.fg, fill=fill)
        except StereoKitError as exc:
            raise StereoKitError(f"{path} (pair {name!r}): {exc}") from None
        del pair, pred  # one pair in memory at a time

    result = evaluate_dataset(getattr(dataset, "name", None) or args.dataset, results)
    print(format_table(result))
    if json_path:
        save_json(json_path, result)
        print(f"wrote {json_path}")
    return 0
