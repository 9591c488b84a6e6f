"""The `stereokit` command: match, eval, compare, report, datasets, matchers, train.

Commands owned by other packages (`eval`, `learned`) are imported only when run, so `stereokit match` with a
classical method never loads torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import numpy as np

from .errors import StereoKitError


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.lower() == "none":
        return None
    return text


def parse_params(items: Sequence[str] | None) -> dict:
    """`["P1=10", "paths=4"]` -> `{"P1": 10, "paths": 4}` (ints, floats, true/false/none, else strings)."""
    params = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise StereoKitError(f"bad --param {item!r}: expected NAME=VALUE")
        params[key.replace("-", "_")] = _parse_value(value)
    return params


def _cmd_match(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .api import check_param_names, match
    from .io import disparity_suffix, write_disparity

    disparity_suffix(args.out)  # a bad output type fails now, not after the matcher ran
    out = Path(args.out).resolve()
    for image in (args.left, args.right):
        if Path(image).resolve() == out:
            raise StereoKitError(f"--out {args.out} is an input image; choose another output file")
    params = parse_params(args.param)
    check_param_names(params, "--param {name}=...", cli=True, instead={"min_disp": ("--min-disp", "min_disp=")})
    if args.min_disp:
        params["min_disp"] = args.min_disp
    disp = match(args.left, args.right, method=args.method, max_disp=args.max_disp, **params)
    write_disparity(args.out, disp)
    valid = float((~np.isnan(disp)).mean() * 100)
    print(f"wrote {args.out} ({disp.shape[1]}x{disp.shape[0]}, {valid:.1f}% valid, method {args.method})")
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from .datasets import describe_specs

    for spec, text in describe_specs():
        print(f"{spec:28s} {text}")
    return 0


def _cmd_matchers(args: argparse.Namespace) -> int:
    from .registry import matchers

    for name in matchers:
        print(f"{name:20s} {matchers.source(name)}")
    return 0


def _delegate(target: str):
    """Run `module:function(args)` of another package, imported only now."""

    def run(args: argparse.Namespace) -> int:
        module_name, _, func = target.partition(":")
        return getattr(importlib.import_module(module_name), func)(args)

    return run


class OneLineErrorParser(argparse.ArgumentParser):
    """Argument errors as one line on stderr (no usage dump), exit status 2; sub-commands inherit it."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="stereokit",
        description="Dense stereo matching: classical and learned matchers, OpenCV baselines, KITTI/Middlebury evaluation.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("match", help="compute the disparity of a rectified pair", description="Compute the left view's disparity of a rectified pair and write it (.pfm, .png as KITTI 16-bit, or .npy).")
    p.add_argument("left", help="left (reference) image")
    p.add_argument("right", help="right image")
    p.add_argument("--method", default="sgm", help="matcher name (see `stereokit matchers`; default sgm)")
    p.add_argument("--max-disp", type=int, default=64, help="number of disparities searched (default 64)")
    p.add_argument("--min-disp", type=int, default=0, help="smallest disparity searched (default 0)")
    p.add_argument("--out", required=True, help="output file: .pfm, .png (KITTI uint16 x256) or .npy")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="extra matcher parameter (repeatable)")
    p.set_defaults(func=_cmd_match)

    p = sub.add_parser("eval", help="score a folder of predictions against a dataset's ground truth", description="Score predictions named <pair name>.{pfm,png,npy} in DIR against the dataset's ground truth (KITTI D1, EPE, Middlebury bad-x).")
    p.add_argument("--dataset", required=True, help="dataset spec (see `stereokit datasets`)")
    p.add_argument("--pred", required=True, metavar="DIR", help="folder of predicted disparities")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--no-fill", action="store_true", help="score without the KITTI background interpolation of invalid pixels")
    p.set_defaults(func=_delegate("eval.cli:run_eval"))

    p = sub.add_parser("datasets", help="list the dataset specs and what each needs")
    p.set_defaults(func=_cmd_datasets)

    p = sub.add_parser("matchers", help="list the registered matchers")
    p.set_defaults(func=_cmd_matchers)

    p = sub.add_parser("compare", help="run matchers on datasets, score them and write an error-map report", description="Run every matcher on every pair, score with the evaluator, cache predictions and write DIR/results.json, results.csv and index.html.")
    p.add_argument("--dataset", action="append", metavar="SPEC", help="dataset spec, repeatable (default: sample and synthetic:3)")
    p.add_argument("--methods", help="comma-separated matcher names (default: every registered matcher)")
    p.add_argument("--max-disp", type=int, default=None, help="disparities searched (default: from the ground truth, rounded up to 16)")
    p.add_argument("--out", default="stereokit-report", metavar="DIR", help="output folder (default ./stereokit-report)")
    p.add_argument("--jobs", type=int, default=1, help="pairs run in parallel processes (default 1)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask distributed scheduler address to run pairs on a cluster")
    p.add_argument("--force", action="store_true", help="recompute predictions already cached in DIR/pred")
    p.add_argument("--no-progress", action="store_true", help="plain log lines instead of a progress bar")
    p.add_argument("--param", action="append", metavar="METHOD.NAME=VALUE", help="matcher parameter, e.g. sgm.paths=8 (repeatable)")
    p.add_argument("--gallery", type=int, default=6, metavar="N", help="pairs per dataset shown with images in the report (default 6)")
    p.set_defaults(func=_delegate("eval.compare:cli"))

    p = sub.add_parser("report", help="rebuild DIR/index.html from an existing results folder")
    p.add_argument("dir", metavar="DIR", help="a folder written by `stereokit compare`")
    p.set_defaults(func=_delegate("eval.report:cli"))

    p = sub.add_parser("train", help="train a learned matcher (mccnn or gcnet); `stereokit train MODEL --help`", add_help=False)
    # Before MODEL only: `train mccnn --help` goes to the trainer with the rest.
    p.add_argument("-h", "--help", action="help", help="show this help message and exit")
    p.add_argument("model", choices=["mccnn", "gcnet"], help="which network")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="the trainer's own options")
    p.set_defaults(func=_delegate("learned.cli:run_train"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("stereokit: interrupted", file=sys.stderr)
        return 130
    except (StereoKitError, OSError, ValueError) as exc:
        print(f"stereokit: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError as exc:
        print(f"stereokit: error: out of memory ({exc}); reduce --max-disp or the image size", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
