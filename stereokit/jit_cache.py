"""Drop Numba's on-disk kernel cache when any of this package's Numba sources has changed.

Numba keys a cached kernel on its own source file only (numba/numba#1833; Numba's docs: "Cache invalidation fails to
recognize changes in functions defined in a different file"). The block-matching and post-processing kernels call
jitted helpers of `stereokit.disparity`, so in an editable install an edit there alone would leave them running the
old machine code. A digest of every module here that uses Numba, kept beside the cache, catches any edit to them;
the cache is then dropped and Numba compiles afresh (once). Installed copies never change piecemeal, so for them this
only reads the sources. Only Numba's default cache, `__pycache__` beside the sources, is handled; a `NUMBA_CACHE_DIR`
is the user's to clear.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

STAMP = "numba-sources.sha256"
_PACKAGE = Path(__file__).resolve().parent


def sources_digest(package_dir: Path = _PACKAGE) -> str:
    """SHA-256 over the names and bytes of the package's top-level modules that use Numba (where every kernel and
    jitted helper lives; an edit elsewhere, e.g. the CLI, keeps the cache)."""
    h = hashlib.sha256()
    for src in sorted(package_dir.glob("*.py")):
        data = src.read_bytes()
        if b"numba" in data:
            h.update(src.name.encode() + b"\0" + data + b"\0")
    return h.hexdigest()


def drop_stale_jit_cache(package_dir: Path = _PACKAGE) -> bool:
    """Remove `package_dir/__pycache__/*.nbi|*.nbc` when the sources differ from the digest recorded with them (or
    none is recorded); True when it did. Never raises: a read-only install keeps the cache it has."""
    cache = package_dir / "__pycache__"
    stamp = cache / STAMP
    try:
        digest = sources_digest(package_dir)
        if stamp.is_file() and stamp.read_text() == digest:
            return False
        for f in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
            f.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        tmp = cache / f"{STAMP}.{os.getpid()}.tmp"
        tmp.write_text(digest)
        os.replace(tmp, stamp)  # whole or absent: a concurrent import never reads half a digest
        return True
    except OSError:
        return False
