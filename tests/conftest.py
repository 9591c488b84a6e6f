"""Shared fixtures: the `slow` marker switch and the location of the shared real scenes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("STEREOKIT_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow or STEREOKIT_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def shared_data_dir() -> Path | None:
    """`$STEREOKIT_SHARED_DATA`, else `../shared/data` beside the repository; None when absent."""
    env = os.environ.get("STEREOKIT_SHARED_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return path if path.is_dir() else None


@pytest.fixture
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("shared Middlebury data (../shared/data) not present")
    return path
