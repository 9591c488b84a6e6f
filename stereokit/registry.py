"""The registry of named matchers `f(pair, max_disp, **params) -> disparity`.

StereoKit's own matchers are listed here by import path; other packages (the OpenCV baselines, the learned
matchers, a user's plug-in) declare theirs under the entry-point group ``stereokit.matchers``. Nothing is imported
until a matcher is asked for, so a classical user never pays for torch.

Names are never shadowed silently: an entry point named like a built-in (or like an entry point of another package
found first) is skipped and reported by `source` (so `stereokit matchers` lists it); `register` over an existing
name raises unless `replace=True`; `unregister` of a name not registered in-process raises. A plug-in that cannot
be imported (whatever it raises) or cannot be called as `f(pair, max_disp, **params)` raises `StereoKitError`
naming the matcher and its entry point.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Target:
    """Where a discovered matcher comes from."""

    value: str  # "module:attribute"
    dist: str | None  # the distribution declaring it ("stereokit" for built-ins)
    version: str | None

    def describe(self) -> str:
        if self.dist is None:
            return self.value
        return f"{self.value} ({self.dist} {self.version})" if self.version else f"{self.value} ({self.dist})"


def _stereokit_version() -> str | None:
    from . import __version__

    return __version__


def _dist_of(module_name: str) -> tuple[str | None, str | None]:
    """(distribution, version) installing the top-level package of `module_name`, or (None, None)."""
    from importlib.metadata import PackageNotFoundError, packages_distributions, version

    top = module_name.partition(".")[0]
    if top == "stereokit":
        return "stereokit", _stereokit_version()
    global _PACKAGES
    if _PACKAGES is None:
        _PACKAGES = packages_distributions()
    dists = _PACKAGES.get(top) or []
    if len(dists) != 1:
        return None, None
    try:
        return dists[0], version(dists[0])
    except PackageNotFoundError:
        return dists[0], None


_PACKAGES: dict[str, list[str]] | None = None  # top-level package -> distributions (read once)


@functools.lru_cache(maxsize=None)
def _source_digest(top: str) -> str | None:
    """A short hash of the Python sources of top-level package or module `top` (every .py file below its folder),
    found without importing it; None if it has no source files. A version number alone misses code edited in an
    editable install, and a cache keyed by it would serve predictions of the old code."""
    import importlib.util
    from pathlib import Path

    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        files = sorted((f.relative_to(root).as_posix(), f) for root in map(Path, spec.submodule_search_locations)
                       for f in root.rglob("*.py"))
    elif spec.origin and spec.origin.endswith(".py"):
        files = [(Path(spec.origin).name, Path(spec.origin))]
    else:
        return None
    if not files:
        return None
    h = hashlib.sha256()
    for rel, path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:16]


def _code_digest(func) -> str | None:
    """A short hash of a Python function's code (bytecode, names, constants; not line numbers or comments), or None
    for callables without code. Stable across processes (no addresses, sets sorted)."""
    code = getattr(inspect.unwrap(func), "__code__", None)
    if code is None:
        call = getattr(type(func), "__call__", None)
        code = getattr(call, "__code__", None)
    if code is None:
        return None
    h = hashlib.sha256()

    def feed(obj) -> None:
        if isinstance(obj, type(code)):
            h.update(b"<code>")
            h.update(obj.co_code)
            h.update(repr((obj.co_names, obj.co_varnames, obj.co_freevars, obj.co_cellvars, obj.co_argcount,
                           obj.co_kwonlyargcount, obj.co_flags)).encode())
            for c in obj.co_consts:
                feed(c)
            h.update(b"</code>")
        elif isinstance(obj, (tuple, list)):
            h.update(b"(")
            for c in obj:
                feed(c)
            h.update(b")")
        elif isinstance(obj, (set, frozenset)):
            h.update(repr(sorted(repr(c) for c in obj)).encode())
        else:
            h.update(repr(obj).encode())
        h.update(b";")

    feed(code)
    return h.hexdigest()[:16]


def qualified_name(func) -> str:
    """'module:qualname' of a function (the spawned-worker alias '__mp_main__' reads '__main__')."""
    module = getattr(func, "__module__", None) or "?"
    if module == "__mp_main__":
        module = "__main__"
    qual = getattr(func, "__qualname__", None) or type(func).__qualname__
    return f"{module}:{qual}"


def _check_signature(name: str, func, where: str) -> inspect.Signature | None:
    """The signature of `func` after checking that it can be called as f(pair, max_disp); None if it has none."""
    if not callable(func):
        raise StereoKitError(f"matcher {name!r} ({where}) is not callable but {type(func).__name__}")
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # some C callables have no signature: checked when called
        return None
    try:
        sig.bind_partial(None, 0)
    except TypeError as exc:
        raise StereoKitError(
            f"matcher {name!r} ({where}) has the wrong signature {sig}: a matcher is called as "
            f"f(pair, max_disp, **params) ({exc})"
        ) from None
    return sig


def _guarded(name: str, func: Matcher, where: str) -> Matcher:
    """`func` behind a check of each call's arguments against its signature: a call that does not fit (an unknown
    parameter, a missing required one) raises StereoKitError naming the matcher instead of a bare TypeError."""
    sig = _check_signature(name, func, where)
    if sig is None:
        return func

    @functools.wraps(func)
    def call(*args, **kwargs):
        try:
            sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise StereoKitError(f"matcher {name!r} ({where}) cannot take these arguments: {exc}") from None
        return func(*args, **kwargs)

    return call


class MatcherRegistry(Mapping):
    """Read-only mapping from matcher name to matcher function, resolved lazily."""

    def __init__(self) -> None:
        self._targets: dict[str, _Target] | None = None
        self._clashes: dict[str, list[str]] = {}  # name -> skipped entry points, described
        self._loaded: dict[str, Matcher] = {}  # name -> guarded function (entry points and built-ins)
        self._raw: dict[str, Matcher] = {}  # name -> the function as imported
        self._runtime: dict[str, tuple[Matcher, Matcher]] = {}  # name -> (function, guarded function)

    def _discover(self) -> dict[str, _Target]:
        if self._targets is None:
            version = _stereokit_version()
            targets = {name: _Target(value, "stereokit", version) for name, value in _BUILTIN.items()}
            clashes: dict[str, list[str]] = {}
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                dist = getattr(ep, "dist", None)
                target = _Target(ep.value, getattr(dist, "name", None), getattr(dist, "version", None))
                if ep.name in targets:
                    if targets[ep.name] != target:
                        taken = "the built-in" if ep.name in _BUILTIN else "the entry point"
                        clashes.setdefault(ep.name, []).append(
                            f"entry point {ep.name} = {target.describe()} skipped: the name is taken by {taken} "
                            f"{targets[ep.name].describe()}"
                        )
                    continue
                targets[ep.name] = target
            self._targets, self._clashes = targets, clashes
        return self._targets

    def clashes(self) -> dict[str, list[str]]:
        """Entry points skipped because their name was taken: {name: [description, ...]}."""
        self._discover()
        return {k: list(v) for k, v in self._clashes.items()}

    def register(self, name: str, func: Matcher | None = None, *, replace: bool = False):
        """Register `func` under `name` at run time (usable as a decorator).

        A name already registered (in-process, built-in or by an entry point) raises StereoKitError unless
        `replace=True`; `unregister` then restores what was there before.
        """
        if not isinstance(name, str) or not name.strip():
            raise StereoKitError(f"a matcher name must be a non-empty string, got {name!r}")

        def deco(f: Matcher) -> Matcher:
            where = f"registered in-process as {qualified_name(f)}"
            guarded = _guarded(name, f, where)
            if not replace and name in self:
                raise StereoKitError(
                    f"matcher {name!r} is already registered ({self.source(name)}); pass replace=True to replace "
                    f"it, or choose another name"
                )
            self._runtime[name] = (f, guarded)
            return f

        return deco(func) if func is not None else deco

    def unregister(self, name: str) -> None:
        """Remove a matcher registered at run time; a name not registered in-process raises StereoKitError."""
        if name not in self._runtime:
            if name in self._discover():
                raise StereoKitError(
                    f"matcher {name!r} was not registered in-process (it comes from {self.source(name)}); only "
                    f"names added with register() can be unregistered"
                )
            raise StereoKitError(f"matcher {name!r} is not registered")
        del self._runtime[name]

    def _where(self, name: str) -> str:
        target = self._discover()[name]
        kind = "built-in" if name in _BUILTIN else "entry point"
        return f"{kind} {target.describe()}"

    def _load(self, name: str) -> Matcher:
        """The function of a discovered (built-in or entry-point) matcher as imported; StereoKitError if it cannot be
        imported, whatever the import raised."""
        if name in self._raw:
            return self._raw[name]
        targets = self._discover()
        if name not in targets:
            raise StereoKitError(f"unknown matcher {name!r}; available: {', '.join(sorted(self)) or 'none'}")
        value = targets[name].value
        module_name, _, attr = value.partition(":")
        try:
            obj = importlib.import_module(module_name)
            for part in attr.split(".") if attr else ():
                obj = getattr(obj, part)
        except (Exception, SystemExit) as exc:  # a plug-in's import may raise anything (RuntimeError, SyntaxError)
            raise StereoKitError(
                f"matcher {name!r} could not be loaded from {self._where(name)}: {type(exc).__name__}: {exc}"
            ) from exc
        self._loaded[name] = _guarded(name, obj, self._where(name))
        self._raw[name] = obj
        return obj

    def raw(self, name: str) -> Matcher:
        """The matcher function itself, as registered or imported (not behind the call check)."""
        if name in self._runtime:
            return self._runtime[name][0]
        return self._load(name)

    def __getitem__(self, name: str) -> Matcher:
        if name in self._runtime:
            return self._runtime[name][1]
        self._load(name)
        return self._loaded[name]

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
        check = getattr(self.raw(name), "unavailable_reason", None)
        return check() if callable(check) else None

    def fingerprint(self, name: str, params: dict | None = None) -> str | None:
        """What matcher `name`'s output depends on beyond its inputs and `params` (e.g. the contents of a learned
        matcher's weights file), as a short string; None when nothing (classical matchers).

        A matcher declares this with an attribute `fingerprint` on its function: a callable taking the params dict.
        `stereokit compare` stores it beside each cached prediction, so new weights are never scored from old
        predictions.
        """
        func = getattr(self.raw(name), "fingerprint", None)
        return func(dict(params or {})) if callable(func) else None

    def runtime_target(self, name: str) -> str | None:
        """'module:qualname' of a matcher registered in-process, None for built-ins and entry points."""
        if name not in self._runtime:
            return None
        return qualified_name(self._runtime[name][0])

    def origin(self, name: str) -> str:
        """What identifies matcher `name`'s code, for caches: the entry point or built-in 'module:attribute' with
        its distribution's version and a hash of the sources of its top-level package and of stereokit's, or for a
        matcher registered in-process 'runtime module:qualname', the version of the distribution installing that
        module (if any), a hash of the function's code and of stereokit's sources."""
        if name in self._runtime:
            func = self._runtime[name][0]
            target = qualified_name(func)
            dist, version = _dist_of(target.partition(":")[0])
            parts = [f"runtime {target}"]
            if dist:
                parts.append(f"({dist} {version})" if version else f"({dist})")
            digest = _code_digest(func)
            if digest:
                parts.append(f"code {digest}")
            if stereokit_digest := _source_digest("stereokit"):  # the steps it may compose
                parts.append(f"stereokit {stereokit_digest}")
            return " ".join(parts)
        targets = self._discover()
        if name not in targets:
            raise StereoKitError(f"unknown matcher {name!r}; available: {', '.join(sorted(self)) or 'none'}")
        target = targets[name]
        # The sources of the matcher's package and of stereokit, whose steps every matcher may compose.
        tops = dict.fromkeys((target.value.partition(":")[0].partition(".")[0], "stereokit"))
        digests = [f"{top} {d}" for top in tops if (d := _source_digest(top))]
        return target.describe() + (f" code {', '.join(digests)}" if digests else "")

    def source(self, name: str) -> str:
        """Where a matcher comes from ('module:attribute (distribution version)' or 'runtime module:qualname'), with
        any entry point of the same name that was skipped."""
        if name in self._runtime:
            text = f"runtime {self.runtime_target(name)}"
            if name in self._discover():
                text += f" (replaces {self._discover()[name].describe()})"
        else:
            text = self._discover()[name].describe()
        for note in self._clashes.get(name, ()):
            text += f"; {note}"
        return text


matchers = MatcherRegistry()
