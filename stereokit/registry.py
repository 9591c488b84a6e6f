"""The registry of named matchers `f(pair, max_disp, **params) -> disparity`.

StereoKit's own matchers are listed here by import path; other packages (the OpenCV baselines, the learned
matchers, a user's plug-in) declare theirs under the entry-point group ``stereokit.matchers``. Nothing is imported
until a matcher is asked for, so a classical user never pays for torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import entry_points

import numpy as np

from .errors import StereoKitError

Matcher = Callable[..., np.ndarray]
ENTRY_POINT_GROUP = "stereokit.matchers"

# name -> "module:attribute" of the matchers that ship inside the stereokit package itself.
_BUILTIN: dict[str, str] = {
    "bm-sad": "stereokit.classical:bm_sad",
    "bm-ssd": "stereokit.classical:bm_ssd",
    "bm-ncc": "stereokit.classical:bm_ncc",
    "bm-census": "stereokit.classical:bm_census",
    "sgm": "stereokit.classical:sgm_matcher",
}


class MatcherRegistry(Mapping):
    """Read-only mapping from matcher name to matcher function, resolved lazily."""

    def __init__(self) -> None:
        self._targets: dict[str, str] | None = None
        self._loaded: dict[str, Matcher] = {}
        self._runtime: dict[str, Matcher] = {}

    def _discover(self) -> dict[str, str]:
        if self._targets is None:
            targets = dict(_BUILTIN)
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                targets.setdefault(ep.name, ep.value)
            self._targets = targets
        return self._targets

    def register(self, name: str, func: Matcher | None = None):
        """Register `func` under `name` at run time (usable as a decorator)."""

        def deco(f: Matcher) -> Matcher:
            self._runtime[name] = f
            return f

        return deco(func) if func is not None else deco

    def unregister(self, name: str) -> None:
        """Remove a matcher registered at run time."""
        self._runtime.pop(name, None)

    def __getitem__(self, name: str) -> Matcher:
        if name in self._runtime:
            return self._runtime[name]
        if name in self._loaded:
            return self._loaded[name]
        targets = self._discover()
        if name not in targets:
            raise StereoKitError(f"unknown matcher {name!r}; available: {', '.join(sorted(self)) or 'none'}")
        module_name, _, attr = targets[name].partition(":")
        try:
            func = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise StereoKitError(f"matcher {name!r} could not be loaded from {targets[name]}: {exc}") from exc
        self._loaded[name] = func
        return func

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(set(self._discover()) | set(self._runtime)))

    def __len__(self) -> int:
        return len(set(self._discover()) | set(self._runtime))

    def __contains__(self, name: object) -> bool:
        return name in self._runtime or name in self._discover()

    def unavailable_reason(self, name: str) -> str | None:
        """Why matcher `name` cannot run as installed (e.g. a learned matcher without shipped weights), else None.

        A matcher declares this with an attribute `unavailable_reason` on its function: a callable returning the
        reason or None. Matchers without it are always available.
        """
        check = getattr(self[name], "unavailable_reason", None)
        return check() if callable(check) else None

    def fingerprint(self, name: str, params: dict | None = None) -> str | None:
        """What matcher `name`'s output depends on beyond its inputs and `params` (e.g. the contents of a learned
        matcher's weights file), as a short string; None when nothing (classical matchers).

        A matcher declares this with an attribute `fingerprint` on its function: a callable taking the params dict.
        `stereokit compare` stores it beside each cached prediction, so new weights are never scored from old
        predictions.
        """
        func = getattr(self[name], "fingerprint", None)
        return func(dict(params or {})) if callable(func) else None

    def source(self, name: str) -> str:
        """Where a matcher comes from ('module:attribute' or 'runtime')."""
        if name in self._runtime:
            return "runtime"
        return self._discover()[name]


matchers = MatcherRegistry()
