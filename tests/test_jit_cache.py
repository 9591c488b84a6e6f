"""Numba's kernel cache is dropped when any package source changes (it only watches each kernel's own file)."""

from __future__ import annotations

import os

import pytest

import stereokit
from stereokit.jit_cache import STAMP, drop_stale_jit_cache, sources_digest


def _package(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "__pycache__").mkdir(parents=True)
    (pkg / "kernels.py").write_text("from numba import njit\nx = 1\n")
    (pkg / "helpers.py").write_text("from numba import njit\ny = 2\n")
    (pkg / "cli.py").write_text("z = 3\n")
    return pkg


def _cache_files(pkg):
    for name in ("kernels.k-10.py311.nbi", "kernels.k-10.py311.1.nbc", "kernels.cpython-311.pyc"):
        (pkg / "__pycache__" / name).write_bytes(b"data")


def _left(pkg):
    return sorted(p.name for p in (pkg / "__pycache__").iterdir())


def test_cache_is_dropped_once_per_change_of_any_source(tmp_path):
    pkg = _package(tmp_path)
    _cache_files(pkg)
    assert drop_stale_jit_cache(pkg)  # no digest recorded yet: the cache's sources are unknown
    assert _left(pkg) == ["kernels.cpython-311.pyc", STAMP]  # Python's own bytecode is left alone
    assert (pkg / "__pycache__" / STAMP).read_text() == sources_digest(pkg)
    _cache_files(pkg)
    assert not drop_stale_jit_cache(pkg) and len(_left(pkg)) == 4  # same sources: the cache is kept
    (pkg / "cli.py").write_text("z = 4\n")  # a module without Numba changes: nothing compiled depends on it
    assert not drop_stale_jit_cache(pkg) and len(_left(pkg)) == 4
    (pkg / "helpers.py").write_text("from numba import njit\ny = 3\n")  # a helper module alone: its callers stale
    assert drop_stale_jit_cache(pkg) and _left(pkg) == ["kernels.cpython-311.pyc", STAMP]
    (pkg / "new.py").write_text("import numba\n")  # so does a new Numba module
    _cache_files(pkg)
    assert drop_stale_jit_cache(pkg) and not drop_stale_jit_cache(pkg)


def test_digest_covers_names_and_bytes(tmp_path):
    pkg = _package(tmp_path)
    before = sources_digest(pkg)
    os.rename(pkg / "helpers.py", pkg / "helpers2.py")
    assert sources_digest(pkg) != before
    os.rename(pkg / "helpers2.py", pkg / "helpers.py")
    assert sources_digest(pkg) == before


def test_a_read_only_install_keeps_its_cache_without_raising(tmp_path, monkeypatch):
    from pathlib import Path

    pkg = _package(tmp_path)
    _cache_files(pkg)

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "unlink", refuse)  # as in a site-packages the user cannot write
    assert not drop_stale_jit_cache(pkg)
    assert len(_left(pkg)) == 3 and not (pkg / "__pycache__" / STAMP).exists()


def test_a_missing_cache_folder_is_created_with_the_digest(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("import numba\n")
    assert drop_stale_jit_cache(pkg) and (pkg / "__pycache__" / STAMP).read_text() == sources_digest(pkg)


def test_importing_stereokit_records_the_digest_of_its_sources():
    from pathlib import Path

    pkg = Path(stereokit.__file__).resolve().parent
    stamp = pkg / "__pycache__" / STAMP
    if not os.access(pkg, os.W_OK):
        pytest.skip("read-only install")
    assert stamp.read_text() == sources_digest(pkg)
