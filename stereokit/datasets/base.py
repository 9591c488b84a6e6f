"""`Dataset`: a lazy, sized, named sequence of `StereoPair`s, and helpers shared by the loaders."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path

from ..errors import StereoKitError
from ..pair import StereoPair

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """`name` reduced to a filesystem-safe token (letters, digits, '.', '_', '-')."""
    out = _UNSAFE.sub("_", str(name)).strip("._")
    return out or "pair"


def unique_names(names: Sequence[str], prefixes: Sequence[str] | None = None) -> list[str]:
    """Make `names` filesystem-safe and unique.

    A name shared by several entries is prefixed with the matching entry of `prefixes` (e.g. the parent folder);
    any remaining clash gets a numeric suffix `-2`, `-3`, ...
    """
    safe = [safe_name(n) for n in names]
    if prefixes is not None:
        counts: dict[str, int] = {}
        for n in safe:
            counts[n] = counts.get(n, 0) + 1
        safe = [f"{safe_name(p)}-{n}" if counts[n] > 1 else n for n, p in zip(safe, prefixes)]
    seen: dict[str, int] = {}
    out = []
    for n in safe:
        k = seen.get(n, 0) + 1
        seen[n] = k
        out.append(n if k == 1 else f"{n}-{k}")
    return out


class Dataset(Sequence):
    """A lazy sequence of `StereoPair`: `len(ds)`, `ds[i]`, `ds["pair name"]`, iteration, `ds.names`.

    Nothing is read until a pair is indexed; each `__getitem__` calls `loader(i)` afresh (no caching, so iterating a
    large dataset keeps memory flat). The built-in loaders are picklable, so a dataset can be handed to worker
    processes (e.g. a PyTorch DataLoader with spawned workers). `name` is the dataset's label (usually its spec), `names` the pairs' names:
    unique and filesystem-safe, so predictions can be stored as `<pair name>.pfm`.
    """

    def __init__(self, name: str, names: Sequence[str], loader: Callable[[int], StereoPair]):
        names = list(names)
        if len(set(names)) != len(names):
            raise StereoKitError(f"dataset {name!r} has duplicate pair names")
        self.name = name
        self.names = names
        self._loader = loader

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index):
        if isinstance(index, str):
            try:
                index = self.names.index(index)
            except ValueError:
                raise StereoKitError(f"dataset {self.name!r} has no pair named {index!r}") from None
        if isinstance(index, slice):
            picked = range(len(self))[index]
            return Dataset(self.name, [self.names[i] for i in picked], partial(_subset_load, self, tuple(picked)))
        return self._load(index)

    def _load(self, index: int) -> StereoPair:
        n = len(self)
        if not isinstance(index, int) and hasattr(index, "__index__"):
            index = index.__index__()
        if not isinstance(index, int):
            raise TypeError(f"dataset indices must be integers, slices or pair names, not {type(index).__name__}")
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"dataset {self.name!r} has {n} pairs; index {index} is out of range")
        pair = self._loader(index)
        pair.name = self.names[index]
        return pair

    def __contains__(self, item) -> bool:
        """`"name" in ds` (or a pair, by its name) without loading anything."""
        name = item.name if isinstance(item, StereoPair) else item
        return isinstance(name, str) and name in self.names

    def __iter__(self) -> Iterator[StereoPair]:
        for i in range(len(self)):
            yield self._load(i)

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, {len(self)} pairs)"


def _subset_load(parent: Dataset, picked: tuple[int, ...], j: int) -> StereoPair:
    return parent._load(picked[j])


def pair_from_files(where: str, **fields) -> StereoPair:
    """`StereoPair(**fields)` for data read from files; a check that fails (sizes, types, negative GT) raises with
    `where` (the scene folder or frame file) in front, so the message names the files at fault."""
    try:
        return StereoPair(**fields)
    except StereoKitError as exc:
        raise StereoKitError(f"{where}: {exc}") from None


def require_dir(path: str | Path, spec: str) -> Path:
    """`path` as a Path, or a `StereoKitError` naming the spec when it is not an existing folder."""
    if not str(path).strip():
        raise StereoKitError(f"dataset spec {spec!r} needs a folder: {spec.split(':', 1)[0]}:PATH")
    p = Path(path).expanduser()
    if not p.exists():
        raise StereoKitError(f"dataset folder not found: {p} (from spec {spec!r})")
    if not p.is_dir():
        raise StereoKitError(f"dataset path is not a folder: {p} (from spec {spec!r})")
    return p


def first_existing(folder: Path, candidates: Sequence[str]) -> Path | None:
    """The first of `candidates` (file names in `folder`) that exists, else None."""
    for c in candidates:
        p = folder / c
        if p.is_file():
            return p
    return None
