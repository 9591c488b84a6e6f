"""The `gcnet` matcher: GC-Net inference on any image size and disparity range.

* Weights: the shipped `learned/weights/gcnet_compact.pt` unless `weights=` names a user's file (written by
  `stereokit train gcnet`); loaded with `torch.load(weights_only=True)` and cached per process.
* Range: the network resolves disparities [0, D) with D its trained `max_disp` (64 for `compact`). A wider request
  is run at a reduced scale (`scale="auto"`): both images are downscaled by s = D / max_disp, matched, and the
  disparity is upsampled (bilinear) and divided by the actual horizontal factor. `scale=1` (or None) disables
  this and a range beyond D raises `StereoKitError`; a number in (0, 4] forces that scale.
* `min_disp` shifts the right image by min_disp pixels before matching and adds it back after.
* Memory: the image is processed in tiles whose estimated peak memory stays under `max_memory_gb` (default 2 GiB):
  full-width horizontal strips with 16 px overlap, or, for very wide images, tiles that also carry D + 16 px of
  context on their left (every candidate match of the kept pixels lies inside the tile).
* Output: float32 disparity (soft argmin, sub-pixel) in the requested range [min_disp, min_disp + max_disp). The
  network always resolves its trained D, so a range narrower than D at the scale it runs at can yield estimates
  beyond it: those pixels are NaN (no match in the range), never clipped to its end. With scale="auto" and
  max_disp >= D every estimate lies in the range and the output is dense. `min_confidence` also makes NaN the
  pixels whose confidence falls below it. `predict()` also returns the confidence map ("peak" probability or
  "entropy"-based).
* Device: CPU by default, CUDA when available (or `device=`).
"""

from __future__ import annotations

import inspect
import math
import os
import threading
from numbers import Real

import cv2
import numpy as np
import torch

from stereokit.errors import StereoKitError
from stereokit.pair import StereoPair
from stereokit.validation import check_disparity_range, reject_unknown

from ..common import WEIGHTS_DIR, check_number, choose_device, weights_fingerprint, weights_path
from .model import GCNet, normalize_image, pad_to_multiple
from .train import load_weights

DEFAULT_WEIGHTS = WEIGHTS_DIR / "gcnet_compact.pt"
TILE_OVERLAP = 16
CONFIDENCE_KINDS = ("peak", "entropy")
_CACHE: dict[tuple, GCNet] = {}
_LOCK = threading.Lock()


def load_model(weights: str | os.PathLike | None = None, device: str | torch.device | None = None) -> GCNet:
    """The GCNet for `weights` (default: the shipped compact weights) on `device`, cached per process."""
    path = weights_path(weights, DEFAULT_WEIGHTS)
    dev = choose_device(device)
    if not path.is_file():
        raise StereoKitError(f"GCNet weights file not found: {path}")
    key = (str(path.resolve()), path.stat().st_mtime_ns, str(dev))
    with _LOCK:
        net = _CACHE.get(key)
        if net is None:
            net = load_weights(path, dev)
            _CACHE[key] = net
    return net


def _is_confidence_kind(kind) -> bool:
    return isinstance(kind, str) and kind in CONFIDENCE_KINDS


def bytes_per_pixel(net: GCNet, num_disp: int) -> float:
    """Estimated peak inference memory per (padded, full-resolution) pixel: cost volume, the 3-D tensors alive
    together at the volume's resolution, and the full-resolution costs/probabilities (x3)."""
    cfg = net.cfg
    half = num_disp / 2 / 4  # voxels of the (D/2, H/2, W/2) volume per full-res pixel
    return 4.0 * (half * (2 * cfg.features + 2 * cfg.volume_channels[0] + cfg.volume_channels[1]) + 3 * num_disp)


def _spans(length: int, core: int, before: int, after: int) -> list[tuple[int, int, int, int]]:
    """Cover [0, length) by cores of `core` px; each with an input window widened by `before` / `after` (clipped)."""
    out = []
    for c0 in range(0, length, core):
        c1 = min(length, c0 + core)
        out.append((c0, c1, max(0, c0 - before), min(length, c1 + after)))
    return out


def _round_down(x: float, m: int) -> int:
    return int(x // m) * m


def _run_tiles(
    net: GCNet, left: torch.Tensor, right: torch.Tensor, num_disp: int, conf: str | None, max_memory_gb: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """Network on normalised (1, C, H, W) images, tiled to stay under `max_memory_gb`; returns (disp, conf)."""
    h, w = left.shape[-2:]
    m = net.cfg.multiple
    budget_px = max_memory_gb * 2**30 / bytes_per_pixel(net, num_disp)
    ov = TILE_OVERLAP
    hp, wp = math.ceil(h / m) * m, math.ceil(w / m) * m
    if hp * wp <= budget_px:
        row_spans, col_spans = [(0, h, 0, h)], [(0, w, 0, w)]
    else:
        core_h = _round_down(budget_px / wp - 2 * ov - m, m)
        if core_h >= 4 * m:  # full-width strips
            row_spans, col_spans = _spans(h, core_h, ov, ov), [(0, w, 0, w)]
        else:  # square-ish tiles with the disparity range as left context
            side = math.sqrt(budget_px)
            core_h = _round_down(side - 2 * ov - m, m)
            core_w = _round_down(side - num_disp - 2 * ov - m, m)
            if core_h < m or core_w < m:
                raise StereoKitError(
                    f"max_memory_gb={max_memory_gb} is too small for GCNet with {num_disp} disparities "
                    f"(needs about {bytes_per_pixel(net, num_disp) * (num_disp + 4 * ov + 4 * m) ** 2 / 2**30:.2f} GiB "
                    f"for the smallest tile); raise max_memory_gb or lower the scale"
                )
            row_spans, col_spans = _spans(h, core_h, ov, ov), _spans(w, core_w, num_disp + ov, ov)
    disp = np.empty((h, w), np.float32)
    cmap = np.empty((h, w), np.float32) if conf else None
    dev = next(net.parameters()).device
    for r0, r1, ri0, ri1 in row_spans:
        for c0, c1, ci0, ci1 in col_spans:
            lt, (th, tw) = pad_to_multiple(left[..., ri0:ri1, ci0:ci1], m)
            rt, _ = pad_to_multiple(right[..., ri0:ri1, ci0:ci1], m)
            d, c = net.predict(lt.to(dev), rt.to(dev), num_disp, conf)
            keep = (slice(r0 - ri0, r1 - ri0), slice(c0 - ci0, c1 - ci0))
            disp[r0:r1, c0:c1] = d[0, :th, :tw][keep].float().cpu().numpy()
            if conf:
                cmap[r0:r1, c0:c1] = c[0, :th, :tw][keep].float().cpu().numpy()
    return disp, cmap


def _shift_right(img: np.ndarray, shift: int) -> np.ndarray:
    """`out[:, x] = img[:, x - shift]`, edge-replicated where x - shift leaves the image."""
    if shift == 0:
        return img
    w = img.shape[1]
    idx = np.clip(np.arange(w) - shift, 0, w - 1)
    return img[:, idx]


def resolve_scale(scale, max_disp: int, trained: int) -> float:
    """The image scale factor for a request of `max_disp` disparities on a network trained for `trained`."""
    if scale is None or scale is False or (isinstance(scale, str) and scale.lower() in ("none", "off", "1")):
        scale = 1.0
    bad = f"scale must be 'auto', a number in (0, 4] or None, got {scale!r}"
    if isinstance(scale, str):
        if scale.lower() != "auto":
            raise StereoKitError(bad)
        return 1.0 if max_disp <= trained else trained / max_disp
    if scale is True:  # float(True) is 1.0: scaling off, the opposite of what True suggests
        raise StereoKitError(bad)
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        raise StereoKitError(bad) from None
    if not 0 < scale <= 4:
        raise StereoKitError(f"scale must be in (0, 4], got {scale}")
    if max_disp * scale > trained + 1e-6:
        raise StereoKitError(
            f"max_disp {max_disp} at scale {scale:g} is {max_disp * scale:g} disparities, beyond the {trained} this "
            f"GCNet was trained for; use scale='auto' (runs at scale {trained / max_disp:.3g}) or scale <= "
            f"{trained / max_disp:.3g}"
        )
    return scale


@torch.inference_mode()
def predict(
    pair: StereoPair,
    max_disp: int,
    *,
    min_disp: int = 0,
    weights: str | os.PathLike | None = None,
    scale: float | str | None = "auto",
    device: str | None = None,
    confidence: str | None = None,
    max_memory_gb: float = 2.0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """GC-Net disparity (float32, in [min_disp, min_disp + max_disp), NaN where the estimate falls outside that
    range) and optional confidence map.

    `confidence`: None, "peak" (softmax peak probability) or "entropy" (1 - normalised entropy), at the image's size.
    See the module docstring for `scale`, tiling and `min_disp`.
    """
    min_disp, max_disp = check_disparity_range(pair.width, max_disp, min_disp)
    if confidence is not None and not _is_confidence_kind(confidence):  # checked before the network runs
        raise StereoKitError(f"unknown confidence kind {confidence!r}; use 'peak' or 'entropy'")
    max_memory_gb = check_number("max_memory_gb", max_memory_gb, positive=True)
    net = load_model(weights, device)
    trained = net.cfg.max_disp
    s = resolve_scale(scale, max_disp, trained)
    h, w = pair.shape
    hs, ws = max(1, round(h * s)), max(1, round(w * s))
    sx = ws / w  # the actual horizontal factor after rounding the size
    m = net.cfg.multiple
    if hs < m or ws < m:
        raise StereoKitError(
            f"image {w}x{h} is too small for GCNet{' at scale %.3g' % s if s != 1 else ''}: it needs at least "
            f"{m}x{m} px after scaling"
        )
    if math.ceil(max_disp * sx - 1e-6) > trained:  # rounding of the image size pushed the range over
        sx = trained / max_disp
        ws = max(m, math.floor(w * sx))
        sx = ws / w
    left, right = pair.left_float, _shift_right(pair.right_float, min_disp)
    if (hs, ws) != (h, w):
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        left = cv2.resize(left, (ws, hs), interpolation=interp)
        right = cv2.resize(right, (ws, hs), interpolation=interp)
    ch = net.cfg.in_channels
    disp, conf = _run_tiles(net, normalize_image(left, ch), normalize_image(right, ch), trained, confidence, max_memory_gb)
    if (hs, ws) != (h, w):
        disp = cv2.resize(disp, (w, h), interpolation=cv2.INTER_LINEAR) / np.float32(sx)
        if conf is not None:
            conf = cv2.resize(conf, (w, h), interpolation=cv2.INTER_LINEAR)
    disp = disp.astype(np.float32, copy=False)
    # An estimate beyond the requested range (possible when the network searches more than max_disp) is no answer
    # within it; clipping would report the range's last disparity as a confident, wrong match.
    disp[~((disp >= 0) & (disp < max_disp))] = np.nan
    disp += np.float32(min_disp)
    return disp, conf


def gcnet(
    pair: StereoPair,
    max_disp: int,
    *,
    min_disp: int = 0,
    weights: str | os.PathLike | None = None,
    scale: float | str | None = "auto",
    device: str | None = None,
    min_confidence: float | None = None,
    confidence: str = "peak",
    max_memory_gb: float = 2.0,
    **params: object,
) -> np.ndarray:
    """GC-Net matcher: float32 (H, W) disparity of the left view, NaN where the estimate lies outside
    [min_disp, min_disp + max_disp) and, when `min_confidence` is given, where `confidence` falls below it (dense
    otherwise). Unknown keyword options raise StereoKitError. See `predict` and the module docstring."""
    options = [n for n in inspect.signature(gcnet).parameters if n not in ("pair", "max_disp", "params")]
    reject_unknown("gcnet", params, options)
    if min_confidence is not None:  # both kinds lie in [0, 1]: beyond it every pixel or none would go
        if isinstance(min_confidence, bool) or not isinstance(min_confidence, Real) or not 0 <= min_confidence <= 1:
            raise StereoKitError(f"min_confidence must be a number in [0, 1] or None, got {min_confidence!r}")
    if not _is_confidence_kind(confidence):  # refused even when unused (no min_confidence): it would be ignored
        raise StereoKitError(f"unknown confidence kind {confidence!r}; use 'peak' or 'entropy'")
    disp, conf = predict(
        pair, max_disp, min_disp=min_disp, weights=weights, scale=scale, device=device,
        confidence=confidence if min_confidence is not None else None, max_memory_gb=max_memory_gb,
    )
    if min_confidence is not None:
        disp[conf < float(min_confidence)] = np.nan
    return disp


gcnet.fingerprint = weights_fingerprint(DEFAULT_WEIGHTS)  # stereokit compare's cache key: the weights' hash
