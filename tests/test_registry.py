"""The matcher registry: lazy discovery, run-time registration, availability, clear errors."""

import re
import subprocess
import sys

import numpy as np
import pytest

import stereokit
from stereokit import StereoKitError, StereoPair, matchers


def test_builtin_and_entry_point_matchers_are_listed():
    names = set(matchers)
    assert {"sgm", "bm-sad", "bm-ssd", "bm-ncc", "bm-census"} <= names
    assert {"opencv-bm", "opencv-sgbm", "opencv-sgbm-hh", "opencv-sgbm-3way", "mccnn-fast", "gcnet"} <= names


def test_unknown_matcher_names_the_choices():
    with pytest.raises(StereoKitError, match="unknown matcher 'nope'.*sgm"):
        matchers["nope"]


def test_runtime_registration_and_unavailable_reason():
    def shift(pair, max_disp, **params):
        return np.full(pair.shape, 2.0, np.float32)

    shift.unavailable_reason = lambda: "needs a licence"
    matchers.register("test-shift", shift)
    try:
        assert "test-shift" in matchers
        assert matchers.unavailable_reason("test-shift") == "needs a licence"
        assert matchers.unavailable_reason("sgm") is None
        left = np.random.default_rng(0).integers(0, 255, (8, 20), dtype=np.uint8)
        out = stereokit.match(left, left, method="test-shift", max_disp=4)
        assert out.dtype == np.float32 and np.all(out == 2.0)
    finally:
        matchers.unregister("test-shift")
    assert "test-shift" not in matchers


def test_matcher_returning_wrong_shape_is_an_error():
    matchers.register("test-bad", lambda pair, max_disp, **p: np.zeros((2, 2), np.float32))
    try:
        img = np.zeros((8, 20), np.uint8)
        with pytest.raises(StereoKitError, match="shape"):
            stereokit.run_matcher(StereoPair(img, img), "test-bad", 4)
    finally:
        matchers.unregister("test-bad")


def test_match_refuses_a_parameter_named_after_its_own_arguments():
    img = np.zeros((8, 16), np.uint8)
    with pytest.raises(StereoKitError, match="'pair' is the stereo pair"):  # was a TypeError from run_matcher
        stereokit.match(img, img, "sgm", 4, pair=img)


def test_match_given_a_pair_points_to_run_matcher():
    from stereokit import match, run_matcher

    img = np.random.default_rng(0).random((12, 20)).astype(np.float32)
    pair = StereoPair(img, img)
    with pytest.raises(StereoKitError, match=r"left image is a StereoPair: call run_matcher\(pair, method, max_disp\)"):
        match(pair, "sgm", max_disp=4)  # not "image file not found: sgm"
    np.testing.assert_array_equal(match(pair.left, pair.right, "sgm", 4), run_matcher(pair, "sgm", 4))


def test_importing_stereokit_and_classical_matchers_does_not_load_torch():
    code = (
        "import sys, numpy as np, stereokit\n"
        "img = np.random.default_rng(0).integers(0, 255, (16, 40), dtype=np.uint8)\n"
        "stereokit.match(img, img, method='bm-sad', max_disp=8)\n"
        "list(stereokit.matchers)\n"
        "assert 'torch' not in sys.modules and 'eval' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- clashes and plug-ins that do not load --------------------------------------------------------------------------


def five(pair, max_disp, **params):
    return np.full(pair.shape, 5.0, np.float32)


def test_register_over_an_existing_name_needs_replace():
    img = np.random.default_rng(0).integers(0, 255, (8, 20), dtype=np.uint8)
    builtin = stereokit.match(img, img, method="bm-sad", max_disp=4)
    with pytest.raises(StereoKitError, match=r"'bm-sad' is already registered \(stereokit.classical:bm_sad.*replace=True"):
        matchers.register("bm-sad", five)
    np.testing.assert_array_equal(stereokit.match(img, img, method="bm-sad", max_disp=4), builtin)  # untouched
    matchers.register("bm-sad", five, replace=True)
    try:
        assert matchers.source("bm-sad").startswith("runtime test_registry:five (replaces stereokit.classical:bm_sad")
        assert np.all(stereokit.match(img, img, method="bm-sad", max_disp=4) == 5.0)
    finally:
        matchers.unregister("bm-sad")
    np.testing.assert_array_equal(stereokit.match(img, img, method="bm-sad", max_disp=4), builtin)  # restored

    matchers.register("test-five", five)
    try:
        with pytest.raises(StereoKitError, match="'test-five' is already registered"):
            matchers.register("test-five", lambda pair, max_disp: None)
        assert matchers.raw("test-five") is five
    finally:
        matchers.unregister("test-five")


def test_unregister_what_was_not_registered_in_process_raises():
    with pytest.raises(StereoKitError, match=r"'sgm' was not registered in-process.*stereokit.classical:sgm_matcher"):
        matchers.unregister("sgm")
    assert "sgm" in matchers
    with pytest.raises(StereoKitError, match="'nope' is not registered"):
        matchers.unregister("nope")


def test_register_refuses_a_wrong_signature():
    def one_arg(pair):
        return pair

    with pytest.raises(StereoKitError, match=r"matcher 'test-one'.*test_registry:.*one_arg.*wrong signature \(pair\)"):
        matchers.register("test-one", one_arg)
    assert "test-one" not in matchers


PLUGIN_FILES = {
    "badplug-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: badplug\nVersion: 0.1\n",
    "badplug-0.1.dist-info/entry_points.txt": (
        "[stereokit.matchers]\n"
        "plug-runtime = badplug_rt:f\n"
        "plug-syntax = badplug_syntax:f\n"
        "plug-missing = no_such_module_xyz:f\n"
        "plug-sig = okplug:onearg\n"
        "plug-ok = okplug:good\n"
        "plug-strict = okplug:strict\n"
        "sgm = okplug:good\n"
    ),
    "badplug_rt.py": 'raise RuntimeError("plugin init failed: CUDA not found")\n',
    "badplug_syntax.py": "def f(:\n",
    "okplug.py": (
        "import numpy as np\n"
        "def onearg(pair): return np.full(pair.shape, 5.0, np.float32)\n"
        "def good(pair, max_disp, **kw): return np.full(pair.shape, 5.0, np.float32)\n"
        "def strict(pair, max_disp, scale=1.0): return np.full(pair.shape, 5.0 * scale, np.float32)\n"
    ),
}


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """A third-party distribution 'badplug' declaring the plug-ins above; the registry rediscovers entry points."""
    from stereokit import registry

    for rel, text in PLUGIN_FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    for attr in ("_targets", "_clashes", "_loaded", "_raw", "_runtime"):  # as in a fresh process
        monkeypatch.setattr(matchers, attr, None if attr == "_targets" else {})
    for mod in ("badplug_rt", "badplug_syntax", "okplug"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    registry._source_digest.cache_clear()
    return registry


def test_an_entry_points_origin_changes_with_its_code_not_only_its_version(plugins, tmp_path):
    before = matchers.origin("plug-ok")
    assert before.startswith("okplug:good (badplug 0.1) code okplug ") and ", stereokit " in before
    assert matchers.origin("plug-strict") == before.replace("okplug:good", "okplug:strict")  # same module, same code
    (tmp_path / "okplug.py").write_text(PLUGIN_FILES["okplug.py"].replace("5.0", "6.0"))  # edited, same version 0.1
    plugins._source_digest.cache_clear()  # as a new process would
    after = matchers.origin("plug-ok")
    assert after != before and after.startswith("okplug:good (badplug 0.1) code okplug ")


@pytest.mark.parametrize("name, words", [
    ("plug-runtime", ["badplug_rt:f (badplug 0.1)", "RuntimeError: plugin init failed"]),
    ("plug-syntax", ["badplug_syntax:f (badplug 0.1)", "SyntaxError"]),
    ("plug-missing", ["no_such_module_xyz:f (badplug 0.1)", "ModuleNotFoundError"]),
    ("plug-sig", ["okplug:onearg (badplug 0.1)", "wrong signature (pair)"]),
])
def test_a_plugin_that_cannot_load_is_a_stereokit_error_naming_it(plugins, name, words):
    with pytest.raises(StereoKitError) as info:
        matchers[name]
    assert f"matcher {name!r}" in str(info.value)
    for word in words:
        assert word in str(info.value)
    with pytest.raises(StereoKitError, match=name):  # also through unavailable_reason, as `compare` asks
        matchers.unavailable_reason(name)


def test_plugin_calls_with_wrong_arguments_name_the_plugin(plugins):
    img = np.zeros((8, 20), np.uint8)
    assert np.all(stereokit.match(img, img, method="plug-strict", max_disp=4, scale=2.0) == 10.0)
    with pytest.raises(StereoKitError, match=r"'plug-strict' \(entry point okplug:strict \(badplug 0.1\)\).*'bogus'"):
        stereokit.match(img, img, method="plug-strict", max_disp=4, bogus=1)


def test_entry_point_named_like_a_builtin_is_skipped_and_reported(plugins, capsys):
    from stereokit.cli import main

    assert matchers.source("sgm").startswith("stereokit.classical:sgm_matcher")
    assert matchers.raw("sgm").__module__ == "stereokit.classical"  # the built-in, not okplug:good
    [note] = matchers.clashes()["sgm"]
    assert "sgm = okplug:good (badplug 0.1) skipped" in note
    assert main(["matchers"]) == 0
    [line] = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("sgm ")]
    assert "okplug:good (badplug 0.1) skipped" in line and "built-in" in line


@pytest.mark.parametrize("name, word", [("plug-runtime", "RuntimeError"), ("plug-syntax", "SyntaxError"),
                                        ("plug-sig", "wrong signature")])
def test_cli_match_with_a_broken_plugin_is_one_line(plugins, name, word, tmp_path, capsys):
    from stereokit.cli import main

    img = tmp_path / "l.png"
    import cv2

    cv2.imwrite(str(img), np.random.default_rng(0).integers(0, 255, (12, 40), dtype=np.uint8))
    rc = main(["match", str(img), str(img), "--method", name, "--max-disp", "4", "--out", str(tmp_path / "o.pfm")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"matcher {name!r}" in err and word in err and "badplug 0.1" in err
    assert not (tmp_path / "o.pfm").exists()


def test_compare_without_methods_skips_plugins_that_cannot_load(plugins, monkeypatch, tmp_path):
    import io

    from eval.compare import run_compare

    # only this distribution's matchers and one built-in, so the run stays small
    every = plugins.entry_points
    only_badplug = lambda group: [ep for ep in every(group=group) if ep.dist.name == "badplug"]
    monkeypatch.setattr(plugins, "entry_points", only_badplug)
    monkeypatch.setattr(plugins, "_BUILTIN", {"sgm": "test_registry:five"})
    stream = io.StringIO()
    results = run_compare(["synthetic:1"], out=tmp_path / "r", report=False, progress=False, stream=stream)
    assert sorted(results["methods"]) == ["plug-ok", "plug-strict", "sgm"]
    assert results["failures"] == []
    log = stream.getvalue()
    for name, word in (("plug-runtime", "RuntimeError"), ("plug-syntax", "SyntaxError"),
                       ("plug-missing", "no_such_module_xyz"), ("plug-sig", "wrong signature")):
        assert re.search(rf"skipping {name}: matcher '{name}' .*\(badplug 0.1\).*{word}", log), (name, log)
    assert "entry point sgm = okplug:good (badplug 0.1) skipped" in log


# --- match()'s defaults and range check (pinned by mutation testing) -------------------------------------------------


def test_match_defaults_to_sgm_with_64_disparities_and_checks_the_shifted_range():
    calls = []

    def record(pair, max_disp, **params):
        calls.append(dict(params, max_disp=max_disp))
        return np.zeros(pair.shape, np.float32)

    img = np.random.default_rng(0).integers(0, 255, (8, 80), dtype=np.uint8)
    matchers.register("sgm", record, replace=True)
    try:
        stereokit.match(img, img)
        assert calls == [{"max_disp": 64}]
        # [70, 78) fits in 80 columns; [75, 83) does not, though its max_disp alone would
        stereokit.match(img, img, max_disp=8, min_disp=70)
        assert calls[-1] == {"max_disp": 8, "min_disp": 70}
        with pytest.raises(StereoKitError, match=r"\[75, 83\) reaches beyond the image \(80 px\)"):
            stereokit.match(img, img, max_disp=8, min_disp=75)
        assert len(calls) == 2  # refused before the matcher ran
    finally:
        matchers.unregister("sgm")


def test_an_entry_point_named_like_another_packages_is_skipped_and_reported(plugins, tmp_path):
    """Two distributions declare 'plug-ok': the one found first is used, the other named, never silently shadowed."""
    files = {
        "otherplug-0.2.dist-info/METADATA": "Metadata-Version: 2.1\nName: otherplug\nVersion: 0.2\n",
        "otherplug-0.2.dist-info/entry_points.txt": "[stereokit.matchers]\nplug-ok = otherplug:seven\n",
        "otherplug.py": "import numpy as np\ndef seven(pair, max_disp, **kw): return np.full(pair.shape, 7.0, np.float32)\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    [note] = matchers.clashes()["plug-ok"]
    used = matchers.source("plug-ok")
    kept, skipped = ("okplug:good (badplug 0.1)", "otherplug:seven (otherplug 0.2)")
    if not used.startswith(kept):
        kept, skipped = skipped, kept
    assert used.startswith(kept) and f"entry point plug-ok = {skipped} skipped" in note
    assert f"taken by the entry point {kept}" in note
    img = np.zeros((8, 20), np.uint8)
    value = 5.0 if kept.startswith("okplug") else 7.0
    assert np.all(stereokit.match(img, img, method="plug-ok", max_disp=4) == value)
