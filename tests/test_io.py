"""stereokit.io: PFM, KITTI PNG, Middlebury GT, calib.txt, images, suffix dispatch and atomic writes."""

from __future__ import annotations

import os
import struct
import zlib

import cv2
import numpy as np
import pytest

from stereokit import StereoKitError
from stereokit import io as skio
from stereokit.io import (
    KITTI_MAX_DISPARITY,
    calibration_from_calib,
    disparity_suffix,
    middlebury_gt_scale,
    read_calib,
    read_disparity,
    read_image,
    read_kitti_disparity,
    read_middlebury_gt,
    read_pfm,
    write_disparity,
    write_image,
    write_kitti_disparity,
    write_pfm,
)


def _disp(h=5, w=7, seed=0):
    rng = np.random.default_rng(seed)
    d = rng.uniform(0, 100, size=(h, w)).astype(np.float32)
    d[1, 2] = np.nan
    return d


# ---------------------------------------------------------------- PFM

@pytest.mark.parametrize("little", [True, False])
@pytest.mark.parametrize("channels", [1, 3])
def test_pfm_round_trip_exact(tmp_path, little, channels):
    rng = np.random.default_rng(1)
    shape = (4, 6) if channels == 1 else (4, 6, 3)
    a = rng.normal(size=shape).astype(np.float32)
    a.flat[3] = np.inf
    p = write_pfm(tmp_path / "a.pfm", a, little_endian=little)
    b = read_pfm(p)
    assert b.dtype == np.float32 and b.shape == shape
    assert np.array_equal(a, b)
    assert p.read_bytes()[:2] == (b"PF" if channels == 3 else b"Pf")


def test_pfm_layout_bottom_up_and_byte_order(tmp_path):
    """A hand-written big-endian file: rows are stored bottom to top, positive scale = big endian."""
    rows_bottom_up = [[4.0, 5.0, 6.0], [1.0, 2.0, 3.0]]
    data = b"Pf\n3 2\n1.0\n" + b"".join(struct.pack(">3f", *r) for r in rows_bottom_up)
    (tmp_path / "be.pfm").write_bytes(data)
    assert np.array_equal(read_pfm(tmp_path / "be.pfm"), np.array([[1, 2, 3], [4, 5, 6]], np.float32))
    little = b"Pf\n3 2\n-1.0\n" + b"".join(struct.pack("<3f", *r) for r in rows_bottom_up)
    (tmp_path / "le.pfm").write_bytes(little)
    assert np.array_equal(read_pfm(tmp_path / "le.pfm"), np.array([[1, 2, 3], [4, 5, 6]], np.float32))
    # what we write is little endian with scale -1 and bottom-up rows
    write_pfm(tmp_path / "ours.pfm", np.array([[1, 2, 3], [4, 5, 6]], np.float32))
    assert (tmp_path / "ours.pfm").read_bytes() == little


def test_pfm_truncated_and_bad(tmp_path):
    p = write_pfm(tmp_path / "a.pfm", np.ones((8, 8), np.float32))
    cut = tmp_path / "cut.pfm"
    cut.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(StereoKitError, match=r"truncated.*cut\.pfm"):
        read_pfm(cut)
    bad = tmp_path / "bad.pfm"
    bad.write_bytes(b"P5\n3 2\n255\n" + bytes(6))
    with pytest.raises(StereoKitError, match="not a PFM"):
        read_pfm(bad)
    bad.write_bytes(b"Pf\nx 2\n-1\n")
    with pytest.raises(StereoKitError, match="bad PFM header"):
        read_pfm(bad)
    with pytest.raises(StereoKitError, match="not found"):
        read_pfm(tmp_path / "nope.pfm")
    (tmp_path / "empty.pfm").write_bytes(b"")
    with pytest.raises(StereoKitError, match="empty"):
        read_pfm(tmp_path / "empty.pfm")


# ---------------------------------------------------------------- KITTI PNG

def test_kitti_png_round_trip_and_encoding(tmp_path):
    d = _disp()
    d[0, 0] = 0.0  # valid zero disparity must not read back as invalid
    d[0, 1] = 1e-4
    p = write_kitti_disparity(tmp_path / "d.png", d)
    raw = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.ndim == 2
    assert raw[1, 2] == 0 and raw[0, 0] == 1 and raw[0, 1] == 1
    assert raw[2, 3] == max(round(float(d[2, 3]) * 256), 1)
    back = read_kitti_disparity(p)
    assert np.isnan(back[1, 2]) and np.isnan(back).sum() == 1
    valid = np.isfinite(d)
    assert np.abs(back[valid] - d[valid]).max() <= 1 / 256 + 1e-6  # round trip to 1/256 px
    big = valid & (d >= 1 / 256)
    assert np.abs(back[big] - d[big]).max() <= 0.5 / 256 + 1e-6  # rounding, except where 0 was lifted to 1


def test_kitti_png_rejects(tmp_path):
    with pytest.raises(StereoKitError, match="negative"):
        write_kitti_disparity(tmp_path / "n.png", np.full((3, 3), -1.0, np.float32))
    with pytest.raises(StereoKitError, match="range"):
        write_kitti_disparity(tmp_path / "big.png", np.full((3, 3), 300.0, np.float32))
    # 255.998046875 * 256 = 65535.5 rounds to 65536, which would wrap to 0 (invalid) in uint16
    with pytest.raises(StereoKitError, match="range"):
        write_kitti_disparity(tmp_path / "edge.png", np.array([[255.998046875, 100.0]], np.float32))
    with pytest.raises(StereoKitError, match="float32"):
        write_kitti_disparity(tmp_path / "huge.png", np.array([[1e300, 1.0]]))
    assert not list(tmp_path.iterdir())
    cv2.imwrite(str(tmp_path / "u8.png"), np.zeros((3, 3), np.uint8))
    with pytest.raises(StereoKitError, match="16-bit"):
        read_kitti_disparity(tmp_path / "u8.png")
    full = write_kitti_disparity(tmp_path / "full.png", np.random.default_rng(0).uniform(0, 90, (60, 80)))
    data = full.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: int(len(data) * 0.8)])
    with pytest.raises(StereoKitError, match=r"cut\.png"):
        read_disparity(tmp_path / "cut.png")


# ---------------------------------------------------------------- Middlebury

def test_middlebury_gt_scale_table():
    assert middlebury_gt_scale("tsukuba", 384, 288, "im2") == 16
    assert middlebury_gt_scale("venus", 434, 383, "im2") == 8
    assert middlebury_gt_scale("sawtooth", 434, 380, "im2") == 8
    assert middlebury_gt_scale("cones", 450, 375, "im2") == 4
    assert middlebury_gt_scale("scene", 450, 375, "im2") == 4  # 2003 told apart by size
    assert middlebury_gt_scale("teddy", 900, 750, "im2") == 2
    assert middlebury_gt_scale("teddy", 1800, 1500, "im2") == 1
    assert middlebury_gt_scale("Art", 1390, 1110, "view1") == 1
    assert middlebury_gt_scale("Dolls", 695, 555, "view1") == 2
    assert middlebury_gt_scale("Art", 463, 370, "view1") == 3
    with pytest.raises(StereoKitError):
        middlebury_gt_scale("x", 10, 10, "other")


def test_read_middlebury_gt(tmp_path):
    raw = np.array([[0, 4, 8], [200, 255, 1]], np.uint8)
    cv2.imwrite(str(tmp_path / "disp2.png"), np.dstack([raw] * 3))  # RGB copy (OpenCV's test data)
    cv2.imwrite(str(tmp_path / "disp2.pgm"), raw)
    for name in ("disp2.png", "disp2.pgm"):
        d = read_middlebury_gt(tmp_path / name, 4)
        assert d.dtype == np.float32 and np.isnan(d[0, 0])
        assert np.allclose(d[np.isfinite(d)], raw[raw > 0] / 4.0)
    with pytest.raises(StereoKitError, match="scale"):
        read_middlebury_gt(tmp_path / "disp2.png", 0)


CALIB = """cam0=[3979.911 0 1244.772; 0 3979.911 1019.507; 0 0 1]
cam1=[3979.911 0 1369.115; 0 3979.911 1019.507; 0 0 1]
doffs=124.343
baseline=193.001
width=2964
height=1988
ndisp=270
isint=0
vmin=27
vmax=248
dyavg=0
dymax=0
"""


def test_read_calib(tmp_path):
    (tmp_path / "calib.txt").write_text(CALIB)
    c = read_calib(tmp_path / "calib.txt")
    assert c["cam0"].shape == (3, 3) and c["cam0"][0, 0] == pytest.approx(3979.911)
    assert c["ndisp"] == 270 and isinstance(c["ndisp"], int) and c["doffs"] == pytest.approx(124.343)
    cal = calibration_from_calib(c)
    assert (cal.focal, cal.baseline, cal.doffs) == pytest.approx((3979.911, 193.001, 124.343))
    # doffs missing -> from the principal points
    del c["doffs"]
    assert calibration_from_calib(c).doffs == pytest.approx(1369.115 - 1244.772)
    (tmp_path / "bad.txt").write_text("cam0 3979\n")
    with pytest.raises(StereoKitError, match="line 1"):
        read_calib(tmp_path / "bad.txt")
    with pytest.raises(StereoKitError, match="baseline"):
        calibration_from_calib({"cam0": np.eye(3)})


# ---------------------------------------------------------------- images

def test_read_write_image(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, size=(6, 5, 3), dtype=np.uint8)
    write_image(tmp_path / "a.png", rgb)
    assert np.array_equal(read_image(tmp_path / "a.png"), rgb)  # RGB order kept
    g16 = np.arange(30, dtype=np.uint16).reshape(5, 6) * 1000
    write_image(tmp_path / "b.png", g16)
    b = read_image(tmp_path / "b.png")
    assert b.dtype == np.uint16 and np.array_equal(b, g16)
    # floats in [0, 1] are written as 8 bit; floats in 0..255, uint16 to an 8-bit format and int32 are refused
    f = rgb / 255.0
    write_image(tmp_path / "f.png", f)
    assert np.array_equal(read_image(tmp_path / "f.png"), rgb)
    for name, bad, words in [
        ("f255.png", rgb.astype(np.float32), "[0, 1]"),
        ("u16.jpg", g16, "8 bits"),
        ("i32.png", rgb.astype(np.int32), "int32"),
        ("i64rgb.ppm", rgb.astype(np.float64) * 2, "[0, 1]"),
    ]:
        with pytest.raises(StereoKitError) as exc:
            write_image(tmp_path / name, bad)
        assert words in str(exc.value) and name in str(exc.value)
        assert not (tmp_path / name).exists()


def test_png_with_bytes_after_iend_is_read(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 255, size=(6, 5, 3), dtype=np.uint8)
    data = write_image(tmp_path / "a.png", rgb).read_bytes()
    (tmp_path / "padded.png").write_bytes(data + b"\x00" * 64)  # some writers pad after IEND; decoders accept it
    assert np.array_equal(read_image(tmp_path / "padded.png"), rgb)


def test_read_image_errors_name_the_file(tmp_path):
    with pytest.raises(StereoKitError, match="not found.*nope.png"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(StereoKitError, match="empty.*empty.png"):
        read_image(tmp_path / "empty.png")
    noise = np.random.default_rng(0).integers(0, 255, size=(50, 50, 3), dtype=np.uint8)
    data = write_image(tmp_path / "ok.png", noise).read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: int(len(data) * 0.8)])
    with pytest.raises(StereoKitError, match="cut.png"):
        read_image(tmp_path / "cut.png")
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(StereoKitError, match="decode.*junk.png"):
        read_image(tmp_path / "junk.png")


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".ppm", ".tif"])
def test_truncated_image_raises_quietly(tmp_path, capfd, suffix):
    # libjpeg decodes a truncated JPEG half grey with only a warning: it must raise like the other formats
    noise = np.random.default_rng(0).integers(0, 255, size=(40, 50, 3), dtype=np.uint8)
    data = write_image(tmp_path / f"ok{suffix}", noise).read_bytes()
    assert read_image(tmp_path / f"ok{suffix}").shape == noise.shape
    (tmp_path / f"cut{suffix}").write_bytes(data[: len(data) * 2 // 3])
    capfd.readouterr()
    with pytest.raises(StereoKitError, match=rf"cut\{suffix}"):
        read_image(tmp_path / f"cut{suffix}")
    assert capfd.readouterr().err == ""  # the exception says it all: no codec line on stderr


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height 8-bit grey pixels, with one tiny IDAT and its IEND."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))


@pytest.mark.parametrize("name, data", [
    ("huge.pgm", b"P5\n100000 100000\n255\n\x00"),
    ("huge.png", _png_claiming(100000, 100000)),
], ids=["pgm", "png"])
def test_header_claiming_too_many_pixels_is_a_stereokit_error(tmp_path, name, data):
    # OpenCV refuses such a header with cv2.error (not a ValueError) before reading the body
    (tmp_path / name).write_bytes(data)
    with pytest.raises(StereoKitError, match=rf"decode.*{name}"):
        read_image(tmp_path / name)
    if name.endswith(".png"):
        with pytest.raises(StereoKitError, match=rf"decode.*{name}"):
            read_disparity(tmp_path / name)


# ---------------------------------------------------------------- by suffix

@pytest.mark.parametrize("suffix, tol", [(".pfm", 0.0), (".npy", 0.0), (".png", 0.5 / 256 + 1e-6)])
def test_disparity_round_trip_by_suffix(tmp_path, suffix, tol):
    d = _disp()
    p = write_disparity(tmp_path / f"sub/d{suffix}", d)  # parent folder created
    back = read_disparity(p)
    assert back.dtype == np.float32 and back.shape == d.shape
    assert np.array_equal(np.isnan(back), np.isnan(d))
    v = np.isfinite(d)
    assert np.abs(back[v] - d[v]).max() <= tol


def test_npy_disparity_header_claiming_more_than_the_file_holds_is_refused_not_allocated(tmp_path):
    np.save(tmp_path / "d.npy", np.ones((3, 3), np.int16))
    data = (tmp_path / "d.npy").read_bytes()
    assert b"(3, 3)" in data
    (tmp_path / "huge.npy").write_bytes(data.replace(b"(3, 3)", b"(99999999, 99999)"))  # 18 TiB claimed, 18 B held
    with pytest.raises(StereoKitError, match=r"cannot read NumPy disparity .*huge\.npy"):
        read_disparity(tmp_path / "huge.npy")
    (tmp_path / "cut.npy").write_bytes(data[:-3])
    with pytest.raises(StereoKitError, match=r"cannot read NumPy disparity .*cut\.npy"):
        read_disparity(tmp_path / "cut.npy")
    np.save(tmp_path / "empty.npy", np.ones((0, 3), np.float32))
    with pytest.raises(StereoKitError, match=r"empty\.npy holds an empty disparity array \(shape \(0, 3\)\)"):
        read_disparity(tmp_path / "empty.npy")
    np.save(tmp_path / "f.npy", np.asfortranarray(np.arange(6, dtype=">f8").reshape(2, 3)))  # still read exactly
    back = read_disparity(tmp_path / "f.npy")
    assert type(back) is np.ndarray and back.dtype == np.float32
    assert np.array_equal(back, np.arange(6, dtype=np.float32).reshape(2, 3))


def test_pfm_disparity_writes_inf_for_invalid(tmp_path):
    write_disparity(tmp_path / "d.pfm", _disp())
    raw = read_pfm(tmp_path / "d.pfm")
    assert np.isinf(raw[1, 2]) and np.isfinite(raw).sum() == raw.size - 1


def test_disparity_suffix_and_content_errors(tmp_path):
    with pytest.raises(StereoKitError, match="unknown disparity file type '.tif'"):
        write_disparity(tmp_path / "d.tif", _disp())
    with pytest.raises(StereoKitError, match="unknown disparity file type"):
        read_disparity(tmp_path / "d.jpg")
    (tmp_path / "out.pfm").mkdir()
    for folder in (tmp_path, tmp_path / "out.pfm"):  # named before any matcher runs (`stereokit match --out`)
        with pytest.raises(StereoKitError, match=f"{folder} is a folder; give a disparity file such as .*disp.pfm"):
            disparity_suffix(folder)
    with pytest.raises(StereoKitError, match="2-D"):
        write_disparity(tmp_path / "d.pfm", np.zeros((2, 3, 4)))
    write_pfm(tmp_path / "rgb.pfm", np.zeros((2, 3, 3), np.float32))
    with pytest.raises(StereoKitError, match="3 channels"):
        read_disparity(tmp_path / "rgb.pfm")
    np.save(tmp_path / "v.npy", np.zeros(5))
    with pytest.raises(StereoKitError, match="2-D"):
        read_disparity(tmp_path / "v.npy")
    (tmp_path / "cut.npy").write_bytes((tmp_path / "v.npy").read_bytes()[:20])
    with pytest.raises(StereoKitError, match="cut.npy"):
        read_disparity(tmp_path / "cut.npy")


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "d.pfm"
    write_disparity(target, np.ones((3, 3), np.float32))
    before = target.read_bytes()

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(skio.os, "replace", boom)
    with pytest.raises(StereoKitError, match="No space left"):
        write_disparity(target, np.zeros((4, 4), np.float32))
    assert target.read_bytes() == before  # old file intact
    assert sorted(os.listdir(tmp_path)) == ["d.pfm"]  # temp file removed
    monkeypatch.undo()
    # the output gets the usual permissions (umask), not the temp file's private 0600
    old = os.umask(0o022)
    os.umask(old)
    p = write_disparity(tmp_path / "new.npy", np.zeros((2, 2), np.float32))
    assert p.stat().st_mode & 0o777 == 0o666 & ~old


def test_atomic_write_cleans_up_when_encoding_fails(tmp_path):
    with pytest.raises(StereoKitError):
        write_disparity(tmp_path / "x.png", np.full((2, 2), -3.0, np.float32))
    assert os.listdir(tmp_path) == []


def test_kitti_png_stores_its_largest_value_65535(tmp_path):
    # 65535 / 256 = 255.99609375 is exactly representable and is the largest value a uint16 PNG can hold
    d = np.array([[KITTI_MAX_DISPARITY, 1.0]], np.float32)
    assert float(d[0, 0]) == 255.99609375
    p = write_kitti_disparity(tmp_path / "max.png", d)
    raw = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    assert raw.tolist() == [[65535, 256]]
    assert read_kitti_disparity(p).tolist() == [[255.99609375, 1.0]]


def test_resized_2003_copies_take_the_nearest_integer_scale():
    # a resized cones/teddy copy is scaled by width relative to the full 1800 px, to the NEAREST integer:
    # 1800 / 904 = 1.99 -> 2 (a half-size copy), 1800 / 602 = 2.99 -> 3 (a third-size copy)
    assert middlebury_gt_scale("cones", 904, 752, "im2") == 2
    assert middlebury_gt_scale("teddy", 602, 500, "im2") == 3


# ---------------------------------------------------------------- PFM header and body edge cases (hand-written files)

_ROWS_BOTTOM_UP = [[4.0, 5.0, 6.0], [1.0, 2.0, 3.0]]
_TOP_DOWN = np.array([[1, 2, 3], [4, 5, 6]], np.float32)


def test_pfm_header_with_comment_line_and_windows_line_ends(tmp_path):
    body = b"".join(struct.pack("<3f", *r) for r in _ROWS_BOTTOM_UP)
    (tmp_path / "comment.pfm").write_bytes(b"Pf\n# written by some tool\n3 2\n-1.0\n" + body)
    assert np.array_equal(read_pfm(tmp_path / "comment.pfm"), _TOP_DOWN)
    # a header written on Windows ends each line with "\r\n"; the body starts right after the last "\r\n"
    (tmp_path / "crlf.pfm").write_bytes(b"Pf\r\n3 2\r\n-1.0\r\n" + body)
    assert np.array_equal(read_pfm(tmp_path / "crlf.pfm"), _TOP_DOWN)


def test_pfm_body_may_start_with_a_whitespace_byte(tmp_path):
    # exactly one whitespace byte ends the header: a first float whose first byte is "\n" or " " is data
    body = b"\x0a\x00\x80\x3f" + b"\x20\x00\x00\x40"  # little endian 0x3f80000a, 0x40000020
    (tmp_path / "le.pfm").write_bytes(b"Pf\n2 1\n-1.0\n" + body)
    assert read_pfm(tmp_path / "le.pfm").tolist() == [list(struct.unpack("<2f", body))]
    body = b"\x20\x00\x00\x01" + b"\x09\x00\x00\x02"  # big endian, first bytes " " and "\t"
    (tmp_path / "be.pfm").write_bytes(b"Pf\n2 1\n1.0\n" + body)
    assert read_pfm(tmp_path / "be.pfm").tolist() == [list(struct.unpack(">2f", body))]


@pytest.mark.parametrize("cut", [1, 3, 4])
def test_pfm_short_by_a_few_bytes_is_truncated(tmp_path, cut):
    data = b"Pf\n3 2\n-1.0\n" + b"".join(struct.pack("<3f", *r) for r in _ROWS_BOTTOM_UP)
    (tmp_path / "cut.pfm").write_bytes(data[:-cut])
    with pytest.raises(StereoKitError, match=r"truncated.*cut\.pfm"):
        read_pfm(tmp_path / "cut.pfm")


@pytest.mark.parametrize("scale", [b"0", b"0.0", b"nan", b"inf"])
def test_pfm_scale_without_a_sign_or_finite_value_is_refused(tmp_path, scale):
    # the scale's sign gives the byte order: zero, NaN or inf tell nothing
    (tmp_path / "s.pfm").write_bytes(b"Pf\n1 1\n" + scale + b"\n" + struct.pack("<f", 1.0))
    with pytest.raises(StereoKitError, match="bad PFM header"):
        read_pfm(tmp_path / "s.pfm")


def test_pfm_disparity_maps_every_non_finite_value_to_nan(tmp_path):
    row = [np.inf, -np.inf, np.nan, 2.5]
    (tmp_path / "d.pfm").write_bytes(b"Pf\n4 1\n-1.0\n" + struct.pack("<4f", *row))
    d = read_disparity(tmp_path / "d.pfm")
    assert d.dtype == np.float32 and np.isnan(d[0, :3]).all() and d[0, 3] == 2.5


def test_middlebury_2005_2006_scale_over_the_published_widths():
    # Middlebury 2005/2006 sizes: full 1240-1396 px wide (x1110), half 620-698 (x555), third 413-465 (x370);
    # e.g. 2006 Baby1 full 1240, 2005 Reindeer/Laundry full 1342, half 671, third 447
    for width, height, scale in [(1240, 1110, 1), (1342, 1110, 1), (1396, 1110, 1), (620, 555, 2), (671, 555, 2),
                                 (698, 555, 2), (413, 370, 3), (447, 370, 3), (465, 370, 3)]:
        assert middlebury_gt_scale("Scene", width, height, "view1") == scale, (width, height)
    # tsukuba is told by its 384x288 size too, whatever the folder is called ("head and lamp")
    assert middlebury_gt_scale("head_and_lamp", 384, 288, "im2") == 16


# ---------------------------------------------------------------- crafted and damaged files

def test_image_with_two_channels_is_refused_naming_it(tmp_path):
    pam = b"P7\nWIDTH 2\nHEIGHT 2\nDEPTH 2\nMAXVAL 255\nTUPLTYPE GRAYSCALE_ALPHA\nENDHDR\n" + bytes(8)
    (tmp_path / "ga.pam").write_bytes(pam)
    with pytest.raises(StereoKitError, match=r"ga\.pam has 2 channels; expected gray, RGB or RGBA"):
        read_image(tmp_path / "ga.pam")


def test_unreadable_file_is_a_stereokit_error(tmp_path, monkeypatch):
    write_image(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    write_pfm(tmp_path / "d.pfm", np.zeros((4, 4), np.float32))

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(type(tmp_path), "read_bytes", denied)
    for reader, name in ((read_image, "a.png"), (read_pfm, "d.pfm")):
        with pytest.raises(StereoKitError, match=rf"cannot read .*{name}: Permission denied"):
            reader(tmp_path / name)


def test_pfm_with_more_data_than_its_header_is_refused(tmp_path):
    data = np.arange(12, dtype="<f4").tobytes()
    (tmp_path / "long.pfm").write_bytes(b"Pf\n2 2\n-1.0\n" + data)  # a 4x3 map under a 2x2 header
    with pytest.raises(StereoKitError, match=r"long\.pfm holds 32 bytes more than its header's 2x2x1 floats"):
        read_pfm(tmp_path / "long.pfm")
    (tmp_path / "shifted.pfm").write_bytes(b"Pf\n4 3\n-1.0\n\n" + data)  # one separator too many: data off by a byte
    with pytest.raises(StereoKitError, match=r"shifted\.pfm holds 1 bytes more"):
        read_disparity(tmp_path / "shifted.pfm")
    (tmp_path / "ok.pfm").write_bytes(b"Pf\r\n4 3\r\n-1.0\r\n" + data)  # Windows line ends stay fine
    np.testing.assert_array_equal(read_pfm(tmp_path / "ok.pfm"), np.arange(12, dtype=np.float32).reshape(3, 4)[::-1])


def test_npy_disparity_with_trailing_bytes_out_of_range_values_or_non_numbers_is_refused(tmp_path):
    np.save(tmp_path / "d.npy", np.ones((3, 3), np.float32))
    (tmp_path / "long.npy").write_bytes((tmp_path / "d.npy").read_bytes() + b"\x00" * 8)
    with pytest.raises(StereoKitError, match=r"long\.npy holds 8 bytes more than its header's"):
        read_disparity(tmp_path / "long.npy")
    np.save(tmp_path / "big.npy", np.full((2, 2), 1e300))  # NaN (invalid) after the float32 cast, silently
    with pytest.raises(StereoKitError, match=r"big\.npy holds values beyond float32's range"):
        read_disparity(tmp_path / "big.npy")
    np.save(tmp_path / "td.npy", np.ones((2, 2), "timedelta64[s]"))
    with pytest.raises(StereoKitError, match=r"td\.npy (holds timedelta64|does not hold a real)"):
        read_disparity(tmp_path / "td.npy")
    inf = np.full((2, 2), np.inf)  # inf itself stays "invalid", as in PFM
    np.save(tmp_path / "inf.npy", inf)
    assert np.isnan(read_disparity(tmp_path / "inf.npy")).all()


def test_mask_file_values_are_checked_and_0_1_masks_read_as_booleans(tmp_path):
    from stereokit.io import read_mask

    m = np.array([[0, 1], [1, 0]], np.uint8)
    write_image(tmp_path / "01.png", m)
    np.testing.assert_array_equal(read_mask(tmp_path / "01.png"), m == 1)
    write_image(tmp_path / "mb.png", m * 127 + 128)  # 128 occluded, 255 non-occluded
    np.testing.assert_array_equal(read_mask(tmp_path / "mb.png"), m == 1)
    write_image(tmp_path / "odd.png", m * 7)
    with pytest.raises(StereoKitError, match=r"odd\.png.*values 0, 7"):
        read_mask(tmp_path / "odd.png")
    write_image(tmp_path / "wide.png", m.astype(np.uint16) * 65535)
    with pytest.raises(StereoKitError, match=r"wide\.png is uint16"):
        read_mask(tmp_path / "wide.png")


def test_calibration_refuses_values_that_give_no_depth():
    from stereokit import Calibration

    for kw, name in ((dict(focal=0.0, baseline=1.0), "focal"), (dict(focal=1.0, baseline=-1.0), "baseline"),
                     (dict(focal=1.0, baseline=np.nan), "baseline"), (dict(focal=1.0, baseline=1.0, doffs=np.inf),
                                                                    "doffs")):
        with pytest.raises(StereoKitError, match=f"calibration {name} must be a finite"):
            Calibration(**kw)
    with pytest.raises(StereoKitError, match=r"x/calib\.txt: calibration baseline"):
        calibration_from_calib({"cam0": np.eye(3), "baseline": 0}, "x/calib.txt")
