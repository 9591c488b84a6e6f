"""Patch-pair sampling for MC-CNN training (the paper's positive / negative offsets and Middlebury augmentation).

For a left pixel (y, x) with ground-truth disparity d whose match x - d lies in the right image, the positive right
patch is centred at x - d + U(-pos, pos) and the negative at x - d +- U(neg_low, neg_high). Patches are cut with
bilinear sampling through an affine map (rotation, scale, horizontal scale, shear, plus a slightly different map for
the right patch, as in the reference implementation's make_patch), then brightness and contrast are changed.
Images are normalised to zero mean / unit std each and zero-padded, which is also what inference sees at borders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from stereokit.errors import StereoKitError

from .model import normalize_image

# (pos, neg_low, neg_high) per (setting, arch), from the paper / reference code.
OFFSETS = {
    ("middlebury", "fast"): (0.5, 1.5, 6.0),
    ("middlebury", "acrt"): (0.5, 1.5, 18.0),
    ("kitti", "fast"): (1.0, 4.0, 10.0),
    ("kitti", "acrt"): (1.0, 4.0, 10.0),
}


@dataclass(frozen=True)
class Augmentation:
    """The reference code's augmentation ranges (Middlebury defaults); `identity()` switches it off."""

    rotate: float = 28.0  # degrees, phi ~ U(-rotate, rotate)
    scale: float = 0.8  # s ~ U(scale, 1)
    hscale: float = 0.8  # horizontal scale s * U(hscale, 1)
    hshear: float = 0.1
    brightness: float = 1.3  # additive, U(-b, b)
    contrast: float = 1.1  # multiplicative, U(1/c, c)
    d_vtrans: float = 1.0  # right patch: extra vertical translation U(-v, v)
    d_rotate: float = 3.0
    d_hscale: float = 0.9
    d_hshear: float = 0.3
    d_brightness: float = 0.7
    d_contrast: float = 1.1

    @classmethod
    def identity(cls) -> "Augmentation":
        return cls(0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0)


@dataclass
class Scene:
    """One training pair prepared for sampling: normalised gray images and the valid (y, x, d) samples."""

    left: np.ndarray
    right: np.ndarray
    ys: np.ndarray
    xs: np.ndarray
    ds: np.ndarray
    name: str = "scene"


def occlusion_from_gt(gt: np.ndarray, tolerance: float = 1.0) -> np.ndarray:
    """Pixels of the left view hidden in the right one, from the left ground truth alone (a z-buffer per row):
    a pixel is occluded when another pixel of its row lands on the same right-image column with a disparity
    larger by more than `tolerance`."""
    gt = np.asarray(gt, np.float32)
    H, W = gt.shape
    ys, xs = np.nonzero(np.isfinite(gt))
    cols = np.rint(xs - gt[ys, xs]).astype(np.int64)
    inside = (cols >= 0) & (cols < W)
    zbuf = np.full((H, W), -np.inf, np.float32)
    np.maximum.at(zbuf, (ys[inside], cols[inside]), gt[ys[inside], xs[inside]])
    occ = np.zeros((H, W), bool)
    occ[ys[inside], xs[inside]] = gt[ys[inside], xs[inside]] < zbuf[ys[inside], cols[inside]] - tolerance
    return occ


def valid_samples(gt: np.ndarray, nonocc: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, x, d) of pixels with finite ground truth whose match x - d is inside the right image and visible there
    (the `nonocc` mask when given, else `occlusion_from_gt`): an occluded pixel has no true positive to sample."""
    gt = np.asarray(gt, np.float32)
    W = gt.shape[1]
    ok = np.isfinite(gt)
    ok &= np.asarray(nonocc, bool) if nonocc is not None else ~occlusion_from_gt(gt)
    ys, xs = np.nonzero(ok)
    ds = gt[ys, xs]
    keep = (xs - ds >= 0) & (xs - ds <= W - 1)
    return ys[keep].astype(np.int32), xs[keep].astype(np.int32), ds[keep].astype(np.float32)


def prepare_scene(pair) -> Scene | None:
    """Scene from a StereoPair with ground truth; None when it has no usable pixel."""
    if pair.gt is None:
        return None
    ys, xs, ds = valid_samples(pair.gt, pair.nonocc)
    if len(ys) == 0:
        return None
    return Scene(normalize_image(pair.left_gray), normalize_image(pair.right_gray), ys, xs, ds, getattr(pair, "name", "scene"))


def _affine(cx, cy, sx, sy, phi, hshear, ty, half):
    """Per-sample 2x3 maps from image to patch coordinates (reference make_patch order); returns their inverses."""
    n = len(cx)
    c, s = np.cos(phi), np.sin(phi)
    # forward: shear @ rotate @ scale @ translate(trans) @ translate(-centre), then + half
    a11 = sx * (c + hshear * -s)
    a12 = sy * (s + hshear * c)
    a21 = sx * -s
    a22 = sy * c
    # translation part: A @ (-cx, -cy + ty) + half
    tx_ = -(a11 * cx + a12 * (cy - ty)) + half
    ty_ = -(a21 * cx + a22 * (cy - ty)) + half
    det = a11 * a22 - a12 * a21
    i11, i12, i21, i22 = a22 / det, -a12 / det, -a21 / det, a11 / det
    # inverse translation: -Ainv @ t
    itx = -(i11 * tx_ + i12 * ty_)
    ity = -(i21 * tx_ + i22 * ty_)
    return np.stack([i11, i12, itx, i21, i22, ity], 1).reshape(n, 2, 3)


def _bilinear(img: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinear samples of `img` at float coordinates, zero outside (the zero-padding of normalised images)."""
    H, W = img.shape
    pad = np.pad(img, 1)
    x = np.clip(xs + 1.0, 0.0, W + 1.0)
    y = np.clip(ys + 1.0, 0.0, H + 1.0)
    x0 = np.minimum(np.floor(x).astype(np.int64), W)
    y0 = np.minimum(np.floor(y).astype(np.int64), H)
    fx = (x - x0).astype(np.float32)
    fy = (y - y0).astype(np.float32)
    v00 = pad[y0, x0]
    v01 = pad[y0, x0 + 1]
    v10 = pad[y0 + 1, x0]
    v11 = pad[y0 + 1, x0 + 1]
    return (v00 * (1 - fx) + v01 * fx) * (1 - fy) + (v10 * (1 - fx) + v11 * fx) * fy


def cut_patches(img: np.ndarray, inv: np.ndarray, size: int) -> np.ndarray:
    """Patches (N, size, size) of `img` through inverse affine maps `inv` (N, 2, 3) (patch -> image coordinates)."""
    g = np.arange(size, dtype=np.float64)
    u, v = np.meshgrid(g, g)  # u: column, v: row
    xs = inv[:, 0, 0, None, None] * u + inv[:, 0, 1, None, None] * v + inv[:, 0, 2, None, None]
    ys = inv[:, 1, 0, None, None] * u + inv[:, 1, 1, None, None] * v + inv[:, 1, 2, None, None]
    return _bilinear(img, xs, ys).astype(np.float32)


@dataclass
class PatchSampler:
    """Seeded sampler of (left, positive right, negative right) patch triplets from prepared scenes.

    Pixels are drawn uniformly over all valid pixels of all scenes, or, with `scene_weights`, a scene with
    probability proportional to weight x its pixel count, then a pixel uniformly within it (e.g. weights
    1 / pixels-of-its-dataset give every dataset an equal share). `state()` / `set_state()` make resumption exact.
    """

    scenes: list[Scene]
    patch_size: int
    offsets: tuple[float, float, float]
    augmentation: Augmentation = field(default_factory=Augmentation)
    seed: int = 0
    scene_weights: list[float] | None = None

    def __post_init__(self) -> None:
        self.scenes = [s for s in self.scenes if s is not None and len(s.ys)]
        if not self.scenes:
            raise StereoKitError("no training pixels: the datasets given have no pair with valid ground truth")
        pos, lo, hi = self.offsets
        if not (0 <= pos and 0 <= lo <= hi):
            raise StereoKitError(f"bad sampling offsets {self.offsets}: need 0 <= pos and 0 <= neg_low <= neg_high")
        self.rng = np.random.default_rng(self.seed)
        self.counts = np.array([len(s.ys) for s in self.scenes], np.int64)
        self.cum = np.cumsum(self.counts)
        self.probs = None
        if self.scene_weights is not None:
            w = np.asarray(self.scene_weights, np.float64)
            if len(w) != len(self.counts) or not np.all(w >= 0) or not (w * self.counts).sum() > 0:
                raise StereoKitError("scene_weights must be one non-negative weight per scene, not all zero")
            self.probs = w * self.counts / (w * self.counts).sum()

    def state(self) -> str:
        return json.dumps(self.rng.bit_generator.state)

    def set_state(self, state: str) -> None:
        self.rng.bit_generator.state = json.loads(state)

    def draw(self, n: int) -> dict:
        """Draw n samples; returns arrays: scene, y, x, d, d_pos, d_neg (the offsets) and the patch triplets."""
        rng, aug = self.rng, self.augmentation
        pos, lo, hi = self.offsets
        if self.probs is None:
            flat = rng.integers(0, int(self.cum[-1]), n)
            scene = np.searchsorted(self.cum, flat, side="right")
            idx = flat - np.concatenate([[0], self.cum[:-1]])[scene]
        else:
            scene = rng.choice(len(self.counts), size=n, p=self.probs)
            idx = rng.integers(0, self.counts[scene])
        d_pos = rng.uniform(-pos, pos, n)
        d_neg = rng.uniform(lo, hi, n) * np.where(rng.uniform(size=n) < 0.5, -1.0, 1.0)
        s = rng.uniform(aug.scale, 1.0, n)
        sx, sy = s * rng.uniform(aug.hscale, 1.0, n), s
        hshear = rng.uniform(-aug.hshear, aug.hshear, n)
        phi = np.deg2rad(rng.uniform(-aug.rotate, aug.rotate, n))
        bright = rng.uniform(-aug.brightness, aug.brightness, n)
        contrast = rng.uniform(1.0 / aug.contrast, aug.contrast, n)
        sx_r = sx * rng.uniform(aug.d_hscale, 1.0, n)
        hshear_r = hshear + rng.uniform(-aug.d_hshear, aug.d_hshear, n)
        vtrans_r = rng.uniform(-aug.d_vtrans, aug.d_vtrans, n)
        phi_r = phi + np.deg2rad(rng.uniform(-aug.d_rotate, aug.d_rotate, n))
        bright_r = bright + rng.uniform(-aug.d_brightness, aug.d_brightness, n)
        contrast_r = contrast * rng.uniform(1.0 / aug.d_contrast, aug.d_contrast, n)

        P = self.patch_size
        half = (P - 1) / 2.0
        left = np.empty((n, P, P), np.float32)
        rpos = np.empty((n, P, P), np.float32)
        rneg = np.empty((n, P, P), np.float32)
        ys = np.empty(n, np.int64)
        xs = np.empty(n, np.int64)
        ds = np.empty(n, np.float64)
        for k in np.unique(scene):
            sel = np.nonzero(scene == k)[0]
            sc = self.scenes[k]
            y = sc.ys[idx[sel]].astype(np.float64)
            x = sc.xs[idx[sel]].astype(np.float64)
            d = sc.ds[idx[sel]].astype(np.float64)
            ys[sel], xs[sel], ds[sel] = y, x, d
            zero = np.zeros(len(sel))
            inv_l = _affine(x, y, sx[sel], sy[sel], phi[sel], hshear[sel], zero, half)
            inv_p = _affine(x - d + d_pos[sel], y, sx_r[sel], sy[sel], phi_r[sel], hshear_r[sel], vtrans_r[sel], half)
            inv_n = _affine(x - d + d_neg[sel], y, sx_r[sel], sy[sel], phi_r[sel], hshear_r[sel], vtrans_r[sel], half)
            left[sel] = cut_patches(sc.left, inv_l, P)
            rpos[sel] = cut_patches(sc.right, inv_p, P)
            rneg[sel] = cut_patches(sc.right, inv_n, P)
        left = left * contrast[:, None, None] + bright[:, None, None]
        rpos = rpos * contrast_r[:, None, None] + bright_r[:, None, None]
        rneg = rneg * contrast_r[:, None, None] + bright_r[:, None, None]
        return {
            "scene": scene, "y": ys, "x": xs, "d": ds, "d_pos": d_pos, "d_neg": d_neg,
            "left": left[:, None].astype(np.float32), "pos": rpos[:, None].astype(np.float32),
            "neg": rneg[:, None].astype(np.float32),
        }
