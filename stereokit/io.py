"""Reading and writing images and disparity maps (PFM, KITTI PNG, Middlebury PNG, NumPy) and `calib.txt`.

Conventions at this boundary: in memory a disparity is float32 (H, W) with NaN invalid. On disk:

* PFM (Middlebury 2014/MiddEval3, ETH3D, Scene Flow): float32, rows stored bottom to top, `inf` = unknown;
  a negative scale means little-endian. `read_pfm` returns the raw values (inf kept), `read_disparity` maps
  non-finite to NaN, and `write_disparity(... .pfm)` writes NaN as inf.
* KITTI PNG: uint16, d = value / 256, 0 = invalid; valid values are written as max(round(d * 256), 1).
* Middlebury 2001-2006 GT PNG/PGM: 8-bit, d = value / scale, 0 = unknown; the scale depends on the dataset and
  image size (`middlebury_gt_scale`).
* `.npy`: float32 with NaN.

Every writer is atomic: the file is encoded in memory, written to a temporary file in the destination folder and
moved into place with `os.replace`, so an error never leaves a half-written output. Every reader raises
`StereoKitError` naming the file when it is missing, empty, truncated or not in the expected format.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import cv2
import numpy as np

from .errors import StereoKitError
from .pair import Calibration, as_mask, check_image, to_uint8

PathLike = str | os.PathLike

DISPARITY_SUFFIXES = (".pfm", ".png", ".npy")
KITTI_MAX_DISPARITY = 65535 / 256.0

# the process umask, read once, so atomically written files get the usual permissions rather than mkstemp's 0600
_UMASK = os.umask(0)
os.umask(_UMASK)


# ---------------------------------------------------------------- helpers

def _existing_file(path: PathLike, what: str) -> Path:
    path = Path(path)
    try:
        if not path.exists():
            raise StereoKitError(f"{what} not found: {path}")
        if not path.is_file():
            raise StereoKitError(f"{what} is not a file: {path}")
        if path.stat().st_size == 0:
            raise StereoKitError(f"{what} is empty: {path}")
    except OSError as exc:
        raise StereoKitError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    return path


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StereoKitError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk's type and CRC: the last 8 bytes of every complete PNG
_JPEG_START, _JPEG_END = b"\xff\xd8", b"\xff\xd9"


def _decode_file(path: Path, what: str) -> np.ndarray:
    """Decode an image file with OpenCV, refusing truncated PNG and JPEG first: libjpeg returns a truncated JPEG
    half grey with only a warning on stderr (a silent wrong answer), libpng prints its own error line."""
    data = _read_bytes(path, what)
    # Bytes after IEND (padding some writers add) are legal for decoders; a missing IEND means a truncated file.
    if data.startswith(_PNG_SIGNATURE) and _PNG_END not in data[-4096:]:
        raise StereoKitError(f"truncated PNG {what} (no IEND chunk at its end): {path}")
    if data.startswith(_JPEG_START) and not data.rstrip(b"\x00").endswith(_JPEG_END):
        raise StereoKitError(f"truncated JPEG {what} (no end-of-image marker): {path}")
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # our exception says it; no stderr line
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # e.g. a header claiming more pixels than OpenCV's limit (CV_IO_MAX_IMAGE_PIXELS)
        raise StereoKitError(f"cannot decode {what} {path}: {exc.err}") from exc
    finally:
        cv2.utils.logging.setLogLevel(level)
    if img is None:
        raise StereoKitError(f"cannot decode {what} (unreadable, truncated or unsupported format): {path}")
    return img


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (temporary file in the same folder, then `os.replace`).

    Missing parent folders are created. On any error the temporary file is removed and the destination is left
    as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StereoKitError(f"cannot create the folder for {path}: {exc.strerror or exc}") from exc
    if path.is_dir():
        raise StereoKitError(f"cannot write {path}: it is a folder")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise StereoKitError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise StereoKitError(f"cannot write {path}: {exc.strerror or exc}") from exc
        raise
    return path


def _as_disparity(disp: np.ndarray, path: PathLike) -> np.ndarray:
    disp = np.asarray(disp)
    if disp.ndim == 3 and disp.shape[2] == 1:
        disp = disp[:, :, 0]
    if disp.ndim != 2 or disp.size == 0:
        raise StereoKitError(f"cannot write {path}: a disparity map must be a non-empty 2-D array, got shape {disp.shape}")
    if not (np.issubdtype(disp.dtype, np.number) or disp.dtype == np.bool_) or np.iscomplexobj(disp):
        raise StereoKitError(f"cannot write {path}: disparity has non-numeric dtype {disp.dtype}")
    with np.errstate(over="ignore"):  # overflow is reported below, as an error
        out = disp.astype(np.float32, copy=False)
    if out is not disp and np.isinf(out).sum() > np.isinf(disp).sum():
        raise StereoKitError(f"cannot write {path}: disparity values beyond float32's range (max {np.abs(disp).max():g})")
    return out


def _encode_png(img: np.ndarray, path: PathLike) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise StereoKitError(f"cannot encode {path} as PNG")
    return buf.tobytes()


# ---------------------------------------------------------------- images

def read_image(path: PathLike) -> np.ndarray:
    """Read an image as uint8/uint16, gray (H, W) or RGB (H, W, 3); a missing or undecodable file raises."""
    path = _existing_file(path, "image file")
    img = _decode_file(path, "image")
    if img.dtype not in (np.uint8, np.uint16):
        raise StereoKitError(f"image {path} has pixel type {img.dtype}; expected 8 or 16 bits per channel")
    if img.ndim == 3 and img.shape[2] not in (1, 3, 4):
        raise StereoKitError(f"image {path} has {img.shape[2]} channels; expected gray, RGB or RGBA")
    if img.ndim == 3:
        if img.shape[2] == 1:
            img = img[:, :, 0]
        else:
            img = cv2.cvtColor(np.ascontiguousarray(img[:, :, :3]), cv2.COLOR_BGR2RGB)
    return img


# Formats OpenCV writes with 8 bits per channel only; uint16 data would be saturated there.
_EIGHT_BIT_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".bmp", ".webp"})


def write_image(path: PathLike, img: np.ndarray) -> Path:
    """Write a gray or RGB image atomically; the format follows the suffix (.png, .ppm, .tif, .jpg, ...).

    uint8 is written as is, uint16 too where the format has 16 bits (PNG, PPM/PGM, TIFF; JPEG, BMP and WebP refuse
    it), float in [0, 1] as uint8 (x 255, rounded); other types raise.
    """
    img = check_image(img, f"cannot write {path}: the")  # the image conventions: shape, type, floats in [0, 1]
    suffix = Path(path).suffix.lower() or ".png"
    if np.issubdtype(img.dtype, np.floating):
        img = to_uint8(img)
    if img.dtype == np.uint16 and suffix in _EIGHT_BIT_SUFFIXES:
        raise StereoKitError(f"cannot write {path}: {suffix} stores 8 bits per channel, the image is uint16; "
                             "use .png or .tif, or convert to uint8")
    try:
        if img.ndim == 3:
            img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(suffix, img)
    except cv2.error as exc:
        raise StereoKitError(f"cannot encode {path} ({img.dtype}, suffix {suffix!r}): {exc.err}") from exc
    if not ok:
        raise StereoKitError(f"cannot encode {path} ({img.dtype}, suffix {suffix!r})")
    return atomic_write_bytes(path, buf.tobytes())


# ---------------------------------------------------------------- PFM

_PFM_TOKEN = re.compile(rb"\S+")


def read_pfm(path: PathLike) -> np.ndarray:
    """Read a PFM file: float32 (H, W) for "Pf" or (H, W, 3) for "PF", top row first, raw values (inf kept)."""
    path = _existing_file(path, "PFM file")
    data = _read_bytes(path, "PFM file")
    tokens = []
    pos = 0
    while len(tokens) < 4:
        m = _PFM_TOKEN.search(data, pos, min(len(data), pos + 256))
        if m is None:
            raise StereoKitError(f"bad PFM header in {path}: expected 'PF|Pf', width, height and scale")
        if m.group().startswith(b"#"):  # tolerate comment lines in the header
            end = data.find(b"\n", m.start())
            pos = len(data) if end < 0 else end + 1
            continue
        tokens.append(m.group())
        pos = m.end()
    magic, w_tok, h_tok, s_tok = tokens
    if magic not in (b"PF", b"Pf"):
        raise StereoKitError(f"not a PFM file (magic {magic[:8]!r}, expected 'PF' or 'Pf'): {path}")
    try:
        width, height, scale = int(w_tok), int(h_tok), float(s_tok)
    except ValueError:
        raise StereoKitError(f"bad PFM header in {path}: size {w_tok!r} x {h_tok!r}, scale {s_tok!r}") from None
    if width <= 0 or height <= 0 or scale == 0 or not np.isfinite(scale):
        raise StereoKitError(f"bad PFM header in {path}: size {width} x {height}, scale {scale}")
    # exactly one whitespace character ends the header (tolerate a Windows "\r\n")
    if data[pos:pos + 2] == b"\r\n":
        pos += 2
    else:
        pos += 1
    channels = 3 if magic == b"PF" else 1
    count = width * height * channels
    need = count * 4
    have = len(data) - pos
    if have > need:
        raise StereoKitError(f"PFM file {path} holds {have - need} bytes more than its header's {width}x{height}x"
                             f"{channels} floats (header and data disagree)")
    if have < need:
        raise StereoKitError(f"truncated PFM file {path}: {width}x{height}x{channels} floats need {need} bytes, "
                             f"found {max(have, 0)}")
    dtype = np.dtype("<f4") if scale < 0 else np.dtype(">f4")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=pos).astype(np.float32)
    shape = (height, width, 3) if channels == 3 else (height, width)
    return np.ascontiguousarray(arr.reshape(shape)[::-1])


def encode_pfm(arr: np.ndarray, little_endian: bool = True) -> bytes:
    """PFM bytes for a float (H, W) or (H, W, 3) array (values as given; rows written bottom to top)."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)) or arr.size == 0:
        raise StereoKitError(f"PFM holds (H, W) or (H, W, 3) arrays, got shape {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise StereoKitError(f"PFM holds numbers, got dtype {arr.dtype}")
    magic = "PF" if arr.ndim == 3 else "Pf"
    h, w = arr.shape[:2]
    dtype = np.dtype("<f4") if little_endian else np.dtype(">f4")
    header = f"{magic}\n{w} {h}\n{-1.0 if little_endian else 1.0}\n".encode("ascii")
    return header + np.ascontiguousarray(arr[::-1], dtype=dtype).tobytes()


def write_pfm(path: PathLike, arr: np.ndarray, little_endian: bool = True) -> Path:
    """Write a float (H, W) or (H, W, 3) array as PFM atomically (values as given, e.g. inf for unknown)."""
    try:
        data = encode_pfm(arr, little_endian)
    except StereoKitError as exc:
        raise StereoKitError(f"cannot write {path}: {exc}") from None
    return atomic_write_bytes(path, data)


# ---------------------------------------------------------------- KITTI PNG

def read_kitti_disparity(path: PathLike) -> np.ndarray:
    """KITTI 16-bit disparity PNG -> float32 (value / 256), NaN where the value is 0."""
    path = _existing_file(path, "disparity PNG")
    img = _decode_file(path, "disparity PNG")
    if img.dtype != np.uint16 or img.ndim != 2:
        chans = 1 if img.ndim == 2 else img.shape[2]
        raise StereoKitError(f"not a KITTI disparity PNG (expected 16-bit single-channel, got {img.dtype} with "
                             f"{chans} channel(s)): {path}")
    disp = img.astype(np.float32) / 256.0
    disp[img == 0] = np.nan
    return disp


def encode_kitti_disparity(disp: np.ndarray, path: PathLike = "<array>") -> bytes:
    """KITTI PNG bytes for a float disparity (NaN/inf -> 0 invalid; valid -> max(round(d * 256), 1))."""
    disp = _as_disparity(disp, path)
    valid = np.isfinite(disp)
    if valid.any():
        lo, hi = float(disp[valid].min()), float(disp[valid].max())
        if lo < 0:
            raise StereoKitError(f"cannot write {path}: KITTI PNG cannot store negative disparities (min {lo:g}); "
                                 f"use .pfm or .npy")
        if np.round(hi * 256.0) > 65535:  # the rounded value must fit: 65536 would wrap to 0 (invalid)
            raise StereoKitError(f"cannot write {path}: disparity {hi:g} exceeds the KITTI PNG range "
                                 f"(< {KITTI_MAX_DISPARITY:.2f}); use .pfm or .npy")
    out = np.zeros(disp.shape, dtype=np.uint16)
    out[valid] = np.maximum(np.round(disp[valid].astype(np.float64) * 256.0), 1).astype(np.uint16)
    return _encode_png(out, path)


def write_kitti_disparity(path: PathLike, disp: np.ndarray) -> Path:
    """Write a disparity as a KITTI 16-bit PNG atomically."""
    return atomic_write_bytes(path, encode_kitti_disparity(disp, path))


# ---------------------------------------------------------------- Middlebury

# Middlebury 2003 (cones, teddy) image sizes -> GT scale: full 1800x1500 /1, half /2, quarter 450x375 /4
_MB2003_SIZES = {(1800, 1500): 1, (900, 750): 2, (450, 375): 4}


def middlebury_gt_scale(scene: str, width: int, height: int, layout: str) -> int:
    """Divisor of the 8-bit Middlebury 2001-2006 GT PNGs.

    layout "im2" (2001 / 2003: im2, im6, disp2): tsukuba (or a 384x288 image) /16; 2003 cones/teddy by size
    (full /1, half /2, quarter 450x375 /4); every other 2001 scene (sawtooth, venus, bull, poster, barn1, barn2,
    map) /8. layout "view1" (2005 / 2006: view1, view5, disp1): by width, full (about 1300-1400 px) /1,
    half (620-700) /2, third (410-470) /3.
    """
    name = scene.lower()
    if layout == "view1":
        if width >= 1000:
            return 1
        return 2 if width >= 550 else 3
    if layout != "im2":
        raise StereoKitError(f"unknown Middlebury layout {layout!r} (expected 'im2' or 'view1')")
    if name.startswith("tsukuba") or (width, height) == (384, 288):
        return 16
    if (width, height) in _MB2003_SIZES:
        return _MB2003_SIZES[(width, height)]
    if name.startswith(("cone", "tedd")):  # resized 2003 copies: scale by width relative to the full 1800 px
        return max(1, round(1800 / width))
    return 8


def _gray_uint8(img: np.ndarray, path: PathLike, what: str) -> np.ndarray:
    """An 8-bit gray image (gray stored as RGB/RGBA taken as gray); else StereoKitError: a 16-bit or colour file
    here would be read with the wrong scale or channel."""
    if img.dtype != np.uint8:
        raise StereoKitError(f"{what} {path} is {img.dtype}; expected an 8-bit gray image")
    if img.ndim == 3:
        if not all(np.array_equal(img[..., 0], img[..., c]) for c in (1, 2)):
            raise StereoKitError(f"{what} {path} is a colour image; expected gray (or gray stored as RGB)")
        img = img[..., 0]
    return img


def read_middlebury_gt(path: PathLike, scale: float) -> np.ndarray:
    """Middlebury GT: an 8-bit gray PNG/PGM (gray stored as RGB accepted) divided by `scale` (0 -> NaN), or a PFM
    (inf -> NaN, `scale` ignored)."""
    if Path(path).suffix.lower() == ".pfm":
        return _pfm_disparity(path)
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.number)) or not (0 < scale < np.inf):
        raise StereoKitError(f"Middlebury GT scale must be a positive number, got {scale!r} (for {path})")
    img = _gray_uint8(read_image(path), path, "Middlebury 2001-2006 GT")
    disp = img.astype(np.float32) / np.float32(scale)
    disp[img == 0] = np.nan
    return disp


def read_mask(path: PathLike) -> np.ndarray:
    """Boolean non-occlusion mask from an 8-bit image (Middlebury/ETH3D mask0nocc.png: 255 non-occluded, 128
    occluded, 0 invalid; 0/1 images are read as booleans); any other value raises, naming the file."""
    img = _gray_uint8(read_image(path), path, "mask")
    return as_mask(img, img.shape, f"mask file {path}:", middlebury=True)


def _parse_calib_value(text: str):
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        rows = [r.split() for r in text[1:-1].split(";")]
        if len({len(r) for r in rows}) != 1:
            raise ValueError(f"ragged matrix {text!r}")
        return np.array([[float(x) for x in r] for r in rows], dtype=np.float64)
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def read_calib(path: PathLike) -> dict:
    """Parse a Middlebury 2014 / MiddEval3 / ETH3D `calib.txt`: `key=value` lines; matrices like `[f 0 cx; 0 f cy;
    0 0 1]` become 3x3 float arrays, numbers int or float, anything else stays a string."""
    path = _existing_file(path, "calibration file")
    try:
        text = path.read_text(encoding="utf-8-sig", errors="strict")
    except (UnicodeDecodeError, OSError) as exc:
        raise StereoKitError(f"cannot read calibration file {path}: {exc}") from None
    calib = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise StereoKitError(f"bad line {n} in calibration file {path}: {line[:60]!r} (expected key=value)")
        if key.strip() in calib:
            raise StereoKitError(f"calibration file {path} sets {key.strip()!r} twice (line {n})")
        try:
            calib[key.strip()] = _parse_calib_value(value)
        except ValueError as exc:
            raise StereoKitError(f"bad value on line {n} of calibration file {path}: {exc}") from None
    return calib


def calibration_from_calib(calib: dict, path: PathLike = "calib.txt") -> Calibration:
    """`Calibration` from a parsed calib.txt: focal = cam0[0, 0], baseline, doffs (or cam1 cx - cam0 cx)."""
    cam0 = calib.get("cam0")
    if not isinstance(cam0, np.ndarray) or cam0.shape != (3, 3):
        raise StereoKitError(f"calibration {path} has no 3x3 cam0 matrix")
    baseline = calib.get("baseline")
    if not isinstance(baseline, (int, float)):
        raise StereoKitError(f"calibration {path} has no numeric baseline")
    doffs = calib.get("doffs")
    if doffs is None:
        cam1 = calib.get("cam1")
        doffs = float(cam1[0, 2] - cam0[0, 2]) if isinstance(cam1, np.ndarray) and cam1.shape == (3, 3) else 0.0
    elif not isinstance(doffs, (int, float)):
        raise StereoKitError(f"calibration {path}: doffs {doffs!r} is not a number")
    try:
        return Calibration(focal=float(cam0[0, 0]), baseline=float(baseline), doffs=float(doffs))
    except StereoKitError as exc:
        raise StereoKitError(f"{path}: {exc}") from None


# ---------------------------------------------------------------- by suffix

def _pfm_disparity(path: PathLike) -> np.ndarray:
    arr = read_pfm(path)
    if arr.ndim == 3:
        raise StereoKitError(f"PFM file has 3 channels; a disparity map needs 1 ('Pf'): {path}")
    arr[~np.isfinite(arr)] = np.nan
    return arr


def read_disparity(path: PathLike) -> np.ndarray:
    """Read a disparity map by suffix: .pfm (inf -> NaN), .png (KITTI 16-bit), .npy; float32 (H, W), NaN invalid."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".pfm":
        return _pfm_disparity(path)
    if suffix == ".png":
        return read_kitti_disparity(path)
    if suffix == ".npy":
        path = _existing_file(path, "disparity file")
        try:
            # mapped, not read: a header claiming more than the file holds is refused instead of allocated
            mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise StereoKitError(f"cannot read NumPy disparity {path} (truncated or not a .npy array): {exc}") from None
        if not isinstance(mapped, np.ndarray) or mapped.ndim != 2 or not np.issubdtype(mapped.dtype, np.number) \
                or np.iscomplexobj(mapped):
            if hasattr(mapped, "close"):  # an .npz archive under a .npy name
                mapped.close()
            raise StereoKitError(f"{path} does not hold a real 2-D disparity array (got "
                                 f"{getattr(mapped, 'shape', '?')}, {getattr(mapped, 'dtype', '?')})")
        expected = mapped.offset + mapped.nbytes if isinstance(mapped, np.memmap) else None
        if expected is not None and path.stat().st_size != expected:
            raise StereoKitError(f"{path} holds {path.stat().st_size - expected} bytes more than its header's "
                                 f"{mapped.shape} {mapped.dtype} array (header and data disagree)")
        if mapped.dtype.kind not in "iuf":
            raise StereoKitError(f"{path} holds {mapped.dtype} values, not disparities")
        if mapped.size == 0:
            raise StereoKitError(f"{path} holds an empty disparity array (shape {mapped.shape})")
        with np.errstate(over="ignore"):
            arr = np.array(mapped, dtype=np.float32)
        # only a float wider than float32 can overflow it (every int64 is below float32's maximum)
        if mapped.dtype.itemsize > 4 and mapped.dtype.kind == "f" and np.isinf(arr).sum() > np.isinf(mapped).sum():
            raise StereoKitError(f"{path} holds values beyond float32's range (max {np.nanmax(np.abs(mapped)):g})")
        arr[~np.isfinite(arr)] = np.nan
        return arr
    raise StereoKitError(f"unknown disparity file type {suffix or '(none)'!r} for {path}; use one of "
                         f"{', '.join(DISPARITY_SUFFIXES)}")


def disparity_suffix(path: PathLike) -> str:
    """The disparity file type of `path` (".pfm", ".png" or ".npy"); raises for any other suffix or for a folder, so
    a caller can check an output path before computing what goes in it."""
    path = Path(path)
    if path.is_dir():
        raise StereoKitError(f"{path} is a folder; give a disparity file such as {path / 'disp.pfm'}")
    suffix = path.suffix.lower()
    if suffix not in DISPARITY_SUFFIXES:
        raise StereoKitError(f"unknown disparity file type {suffix or '(none)'!r} for {path}; use one of "
                             f"{', '.join(DISPARITY_SUFFIXES)}")
    return suffix


def write_disparity(path: PathLike, disp: np.ndarray) -> Path:
    """Write a disparity map atomically, format by suffix: .pfm (NaN -> inf), .png (KITTI 16-bit), .npy (float32)."""
    return atomic_write_bytes(path, encode_disparity(path, disp))


def encode_disparity(path: PathLike, disp: np.ndarray) -> bytes:
    """The bytes `write_disparity(path, disp)` writes (format by the suffix of `path`)."""
    path = Path(path)
    suffix = disparity_suffix(path)
    disp = _as_disparity(disp, path)
    if suffix == ".pfm":
        out = disp.copy()
        out[~np.isfinite(out)] = np.inf
        data = encode_pfm(out)
    elif suffix == ".png":
        data = encode_kitti_disparity(disp, path)
    else:
        import io as _io

        buf = _io.BytesIO()
        np.save(buf, np.ascontiguousarray(disp, dtype=np.float32), allow_pickle=False)
        data = buf.getvalue()
    return data
