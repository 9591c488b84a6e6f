"""`stereokit train MODEL ...`: hands the remaining arguments to the model's trainer."""

from __future__ import annotations

import argparse
import importlib

TRAINERS = {"mccnn": "learned.mccnn.train", "gcnet": "learned.gcnet.train"}


def run_train(args: argparse.Namespace) -> int:
    """Run `learned.<model>.train.main(argv)` with the arguments after the model name."""
    module = importlib.import_module(TRAINERS[args.model])
    return int(module.main(list(args.rest)) or 0)
