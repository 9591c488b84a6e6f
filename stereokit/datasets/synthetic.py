"""Random stereo scenes with exact ground truth: the `synthetic[:N[:SEED]]` dataset.

Scene model
-----------
A scene is a stack of planar surfaces seen by a rectified pair: one background plane that covers the whole view,
and several objects in front of it (ellipses and random star-shaped polygons, with rotated outlines). Every surface
`k` is parametrised in *left-image coordinates* (u, v):

* its disparity is a plane ``d_k(u, v) = d0 + bx (u - uc) + by (v - vc)`` (fronto-parallel when bx = by = 0,
  slanted otherwise; |bx| < 1 so the left-to-right map is monotonic);
* its outline is an analytic shape (ellipse or polygon) evaluated at continuous coordinates;
* its texture ``T_k(u, v)`` is an image over the left view widened by ``max_disp`` on the right (so the right view
  can see what lies beyond the left view's right edge): a crop of one of scikit-image's bundled photographs
  (rescaled, flipped, rotated, colour-jittered), a constant colour (textureless), or a periodic pattern
  (stripes, sine gratings, checkerboards, tiled patches; periods 3-20 px).

A surface point at left pixel (u, v) appears in the right view at ``x_r = u - d_k(u, v)`` on the same row, which is
affine in u, so each surface is rendered into the right view by *exact inverse mapping*:
``u = (x_r + d0 - bx uc + by (v - vc)) / (1 - bx)``.

* Left view: at each integer pixel the visible surface is the one with the largest disparity among those whose
  outline covers it (a z-buffer: larger disparity = nearer); the pixel takes that surface's texture value exactly.
* Right view: the same at each integer right pixel, with each surface evaluated at its inverse-mapped ``u``;
  textures are sampled there by cubic B-spline interpolation (exact at integer positions).
* ``gt``: the disparity ``d_k*(u, v)`` of the surface seen at each left pixel (float32, no NaN: every pixel sees a
  surface). ``meta["gt_right"]`` is the same for the right view (disparity of the right view, right-referenced);
  ``meta["surface"]`` / ``meta["surface_right"]`` give the index of the visible surface (0 = background).
* ``nonocc``: a left pixel is non-occluded iff ``x_r = u - gt >= 0`` (inside the right view) and no other surface
  covers the continuous right-view position ``x_r`` with a larger disparity, i.e. the same surface is the front-most
  one there. This is exact geometry, not a left-right check on sampled maps (so a sliver thinner than a pixel in
  the right view, or a sub-pixel notch in an outline, can be "visible" between two right-view pixel centres).
* ``fg``: pixels whose visible surface is an object (not the background).
* All disparities lie in ``[0, max_disp - 1]``; objects are always nearer than the background (for max_disp >= 5)
  by at least 1 px, but objects may interpenetrate (the z-buffer resolves intersecting slanted planes correctly).

So with ``photometric=False``, ``slant=0`` and ``integer_disp=True`` the right view sampled at ``x - gt`` equals the
left view *exactly* at every non-occluded pixel; with sub-pixel disparities the difference is interpolation error
only (tests check both).

Photometric differences (``photometric=True``, default): each view independently gets a global gain (0.8-1.2) with
a per-channel tint (+-5 %), a bias (+-0.06), a Gaussian blur (sigma 0-1 px) and Gaussian noise (sigma 0-0.02), all
in [0, 1] intensity units, before rounding to uint8.

Everything is drawn from ``np.random.default_rng(seed)``: the same seed and options give the same scene bit for bit.
A 256x320 scene renders in about 0.1 s on one core (NumPy/SciPy/OpenCV, vectorised; 0.18-0.23 s measured on a
shared, heavily loaded 2-core machine). The first call also pays for importing scikit-image's images.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from functools import lru_cache, partial

import cv2
import numpy as np
from scipy import ndimage
from skimage.measure import points_in_poly

from ..errors import StereoKitError
from ..pair import StereoPair, to_uint8
from ..validation import check_number
from .base import Dataset

# scikit-image's bundled photographs that ship inside the wheel (no download); a mix of colour and gray,
# natural, man-made and microscopy textures.
TEXTURE_IMAGES = (
    "astronaut", "camera", "coffee", "chelsea", "rocket", "brick", "grass", "gravel", "moon", "coins",
    "page", "text", "hubble_deep_field", "immunohistochemistry", "retina", "cell", "clock",
)

DEFAULT_COUNT = 8


@lru_cache(maxsize=None)
def _texture_source(name: str) -> np.ndarray:
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)())
    if img.ndim == 3:
        img = img[:, :, :3]
    else:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = img.astype(np.float32) / 255.0
    img.setflags(write=False)
    return img


@dataclass
class _Surface:
    d0: float
    bx: float
    by: float
    uc: float
    vc: float
    kind: str  # "background", "ellipse", "polygon"
    shape: tuple  # ellipse: (cx, cy, ax, ay, theta); polygon: (verts,)
    bbox: tuple[float, float, float, float]  # umin, umax, vmin, vmax in left coords
    texture: np.ndarray | None = None  # (h, w, 3) float32 texels of canvas rows/cols from (tex_y0, tex_x0)
    tex_x0: int = 0
    tex_y0: int = 0
    coeffs: np.ndarray | None = None  # cubic B-spline coefficients along rows (lazy)

    def disparity(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return self.d0 + self.bx * (u - self.uc) + self.by * (v - self.vc)

    def to_left(self, xr: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Left-image u of this surface's point seen at right-image column xr on row v."""
        return (xr + self.d0 - self.bx * self.uc + self.by * (v - self.vc)) / (1.0 - self.bx)

    def covers(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        if self.kind == "background":
            return np.ones(np.shape(u), dtype=bool)
        if self.kind == "ellipse":
            cx, cy, ax, ay, th = self.shape
            du, dv = u - cx, v - cy
            c, s = np.cos(th), np.sin(th)
            p, q = (c * du + s * dv) / ax, (-s * du + c * dv) / ay
            return p * p + q * q <= 1.0
        (verts,) = self.shape
        pts = np.stack([np.ravel(u), np.ravel(v)], axis=1)
        return points_in_poly(pts, verts).reshape(np.shape(u))

    def d_range(self) -> tuple[float, float]:
        umin, umax, vmin, vmax = self.bbox
        corners = [self.disparity(a, b) for a in (umin, umax) for b in (vmin, vmax)]
        return float(min(corners)), float(max(corners))

    def sample_row(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Texture at continuous u on integer rows v: cubic B-spline interpolation along the row (exact at integers)."""
        if self.coeffs is None:
            co = ndimage.spline_filter1d(self.texture.astype(np.float64), order=3, axis=1, mode="mirror")
            # 2 mirrored columns each side (scipy's "mirror" boundary) so the 4 taps never need clipping
            self.coeffs = np.pad(co, ((0, 0), (2, 3), (0, 0)), mode="reflect").astype(np.float32)
        x = u - self.tex_x0
        x = np.clip(x, 0.0, self.texture.shape[1] - 1.0)
        i = np.floor(x).astype(np.intp)
        t = (x - i).astype(np.float32)[:, None]
        rows = (v.astype(np.intp) - self.tex_y0)[:, None]
        taps = self.coeffs[rows, i[:, None] + np.arange(1, 5)]  # coefficients at i-1 .. i+2: (N, 4, 3)
        t2, t3 = t * t, t * t * t
        wts = np.concatenate([(1 - t) ** 3, 3 * t3 - 6 * t2 + 4, -3 * t3 + 3 * t2 + 3 * t + 1, t3], axis=1) / 6
        return np.einsum("nk,nkc->nc", wts, taps)

    def texel(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        return self.texture[ys - self.tex_y0, xs - self.tex_x0]


# ---------------------------------------------------------------- textures

def _natural_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    src = _texture_source(TEXTURE_IMAGES[rng.integers(len(TEXTURE_IMAGES))])
    k = int(rng.integers(4))
    sh, sw = src.shape[:2]
    if k % 2:  # a quarter turn swaps the crop's extent in the source
        h_src, w_src = w, h
    else:
        h_src, w_src = h, w
    # the crop covers (h_src / scale) x (w_src / scale) source pixels, so scale >= what fits the source
    scale = max(float(rng.uniform(0.35, 1.2)), (h_src + 1) / sh, (w_src + 1) / sw)
    ch, cw = min(sh, int(np.ceil(h_src / scale))), min(sw, int(np.ceil(w_src / scale)))
    y0, x0 = int(rng.integers(sh - ch + 1)), int(rng.integers(sw - cw + 1))
    crop = np.ascontiguousarray(src[y0:y0 + ch, x0:x0 + cw])
    interp = cv2.INTER_AREA if (ch > h_src or cw > w_src) else cv2.INTER_CUBIC
    img = cv2.resize(crop, (w_src, h_src), interpolation=interp)
    if k:
        img = np.rot90(img, k)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    # colour jitter: per-channel gain and a contrast change around the mean
    img = img * rng.uniform(0.75, 1.25, size=3).astype(np.float32)
    m = img.mean()
    img = m + (img - m) * np.float32(rng.uniform(0.7, 1.4))
    return np.ascontiguousarray(img, dtype=np.float32)


def _two_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    a = rng.uniform(0.05, 0.95, size=3)
    b = rng.uniform(0.05, 0.95, size=3)
    if np.abs(a - b).max() < 0.25:  # keep periodic patterns visible
        b = np.clip(1.0 - a, 0.05, 0.95)
    return a.astype(np.float32), b.astype(np.float32)


def _periodic_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    vv, uu = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = rng.choice(["stripes", "sine", "checker", "tile"])
    period = float(rng.uniform(3.0, 20.0))
    if kind == "tile":
        ph, pw = int(rng.integers(3, 21)), max(3, int(round(period)))
        patch = _natural_texture(rng, ph, pw)
        reps = (h // ph + 1, w // pw + 1, 1)
        return np.tile(patch, reps)[:h, :w]
    a, b = _two_colours(rng)
    # mostly near-vertical orientations: those are the ones that are ambiguous along epipolar lines
    theta = float(rng.normal(0.0, 0.35)) if rng.random() < 0.7 else float(rng.uniform(0, np.pi))
    t = (uu * np.cos(theta) + vv * np.sin(theta)) / period
    if kind == "stripes":
        duty = rng.uniform(0.3, 0.7)
        m = ((t - np.floor(t)) < duty).astype(np.float32)
    elif kind == "sine":
        m = 0.5 + 0.5 * np.sin(2 * np.pi * t)
        if rng.random() < 0.5:
            t2 = (-uu * np.sin(theta) + vv * np.cos(theta)) / float(rng.uniform(3.0, 20.0))
            m = m * (0.5 + 0.5 * np.sin(2 * np.pi * t2))
    else:
        t2 = (-uu * np.sin(theta) + vv * np.cos(theta)) / period
        m = ((np.floor(t) + np.floor(t2)) % 2).astype(np.float32)
    return a + (b - a) * m[:, :, None]


def _flat_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    colour = rng.uniform(0.05, 0.95, size=3).astype(np.float32)
    return np.broadcast_to(colour, (h, w, 3)).copy()


_TEXTURES = {"natural": _natural_texture, "periodic": _periodic_texture, "flat": _flat_texture}


# ---------------------------------------------------------------- geometry

def _plane(rng, bbox, lo, hi, slant, p_slanted, integer_disp):
    """Disparity plane over `bbox` staying inside [lo, hi]: returns (d0, bx, by, uc, vc)."""
    umin, umax, vmin, vmax = bbox
    uc, vc = 0.5 * (umin + umax), 0.5 * (vmin + vmax)
    bw, bh = max(umax - umin, 1.0), max(vmax - vmin, 1.0)
    bx = by = 0.0
    if not integer_disp and slant > 0 and rng.random() < p_slanted:
        bx, by = rng.uniform(-slant, slant, size=2)
        span = abs(bx) * bw + abs(by) * bh
        room = 0.9 * (hi - lo)
        if span > room:  # flatten the plane until it fits the disparity range
            bx, by = bx * room / span, by * room / span
    span = abs(bx) * bw + abs(by) * bh
    d0 = float(rng.uniform(lo + span / 2, hi - span / 2))
    if integer_disp:
        d0 = float(np.clip(np.round(d0), np.ceil(lo), np.floor(hi)))
    return d0, float(bx), float(by), uc, vc


def _object_shape(rng, height, width):
    r = float(rng.uniform(0.08, 0.33)) * min(height, width)
    cx, cy = float(rng.uniform(-0.1, 1.1) * width), float(rng.uniform(0.0, 1.0) * height)
    if rng.random() < 0.4:
        ax, ay = r * rng.uniform(0.5, 1.4), r * rng.uniform(0.5, 1.4)
        th = float(rng.uniform(0, np.pi))
        ext = max(ax, ay)
        return "ellipse", (cx, cy, float(ax), float(ay), th), (cx - ext, cx + ext, cy - ext, cy + ext)
    n = int(rng.integers(3, 10))
    ang = np.sort(rng.uniform(0, 2 * np.pi, size=n))
    rad = r * rng.uniform(0.45, 1.35, size=n)
    verts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], axis=1)
    return "polygon", (verts,), (verts[:, 0].min(), verts[:, 0].max(), verts[:, 1].min(), verts[:, 1].max())


def _texture(surface: _Surface, kind: str, rng, height: int, canvas_w: int) -> None:
    """Give `surface` a texture of `kind` over its bounding box (clipped to the canvas), quantised to 8 bits so
    noise-free renderings are exact after rounding."""
    umin, umax, vmin, vmax = surface.bbox
    x0, x1 = max(int(np.floor(umin)) - 3, 0), min(int(np.ceil(umax)) + 4, canvas_w)
    y0, y1 = max(int(np.floor(vmin)) - 1, 0), min(int(np.ceil(vmax)) + 2, height)
    x1, y1 = max(x1, x0 + 4), max(y1, y0 + 1)  # never empty (objects wholly off-canvas are simply never seen)
    tex = _TEXTURES[kind](rng, y1 - y0, x1 - x0)
    surface.texture = (np.round(np.clip(tex, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)
    surface.tex_x0, surface.tex_y0 = x0, y0


def _window(bbox, lo_x, hi_x, height, width):
    """Integer pixel window [x0, x1) x [y0, y1) covering bbox columns [lo_x, hi_x] and its rows, clipped."""
    _, _, vmin, vmax = bbox
    x0, x1 = max(int(np.floor(lo_x)) - 1, 0), min(int(np.ceil(hi_x)) + 2, width)
    y0, y1 = max(int(np.floor(vmin)) - 1, 0), min(int(np.ceil(vmax)) + 2, height)
    return x0, x1, y0, y1


# ---------------------------------------------------------------- rendering

def _photometric(rng, img, noise, blur, gain, bias):
    out = img * (rng.uniform(*gain) * rng.uniform(0.95, 1.05, size=3)).astype(np.float32)
    out = out + np.float32(rng.uniform(-bias, bias))
    sigma = float(rng.uniform(*blur))
    if sigma > 0.05:
        out = cv2.GaussianBlur(out, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    s = float(rng.uniform(*noise))
    out = out + np.float32(s) * rng.standard_normal(size=out.shape, dtype=np.float32)
    return out


MAX_PIXELS = 16_000_000  # a scene's working arrays take ~100 bytes per pixel


def _check_scene_options(seed, height, width, max_disp, n_objects, slant, p_slanted, textures, noise, blur, gain,
                         bias) -> None:
    """Refuse bad `make_scene` arguments before anything is rendered, naming the argument."""

    def whole(name, v, least):
        if check_number(f"synthetic scene {name}", v, integer=True) < least:
            raise StereoKitError(f"synthetic scene {name} must be an integer >= {least}, got {v!r}")

    def interval(name, v, lo, hi):
        ok = isinstance(v, (tuple, list)) and len(v) == 2 and all(
            isinstance(x, numbers.Real) and not isinstance(x, bool) and lo <= x <= hi for x in v) and v[0] <= v[1]
        if not ok:
            raise StereoKitError(f"{name} must be a (min, max) pair within [{lo:g}, {hi:g}], got {v!r}")

    whole("seed", seed, 0)
    whole("height", height, 8)
    whole("width", width, 8)
    if int(height) * int(width) > MAX_PIXELS:
        raise StereoKitError(f"synthetic scene {width}x{height} exceeds {MAX_PIXELS:,} pixels")
    whole("max_disp", max_disp, 2)
    if not max_disp < width:
        raise StereoKitError(f"synthetic scene max_disp must be an integer in [2, width), got {max_disp!r}")
    if isinstance(n_objects, (tuple, list)):
        interval("n_objects", n_objects, 0, 1000)
        whole("n_objects", n_objects[0], 0), whole("n_objects", n_objects[1], 0)
    else:
        whole("n_objects", n_objects, 0)
    for name, v, lo, hi in (("slant", slant, 0, 1), ("p_slanted", p_slanted, 0, 1), ("bias", bias, 0, 1)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not lo <= v <= hi or (name == "slant" and v == 1):
            raise StereoKitError(f"{name} must be in [{lo}, {hi}{')' if name == 'slant' else ']'}, got {v!r}")
    interval("noise", noise, 0, 1)
    interval("blur", blur, 0, 50)
    interval("gain", gain, 0, 10)
    if textures is not None:
        if not isinstance(textures, dict) or any(
                isinstance(w, bool) or not isinstance(w, numbers.Real) or not w >= 0 for w in textures.values()):
            raise StereoKitError(f"textures must map kinds to weights >= 0, got {textures!r}")


def make_scene(
    seed: int,
    height: int = 240,
    width: int = 320,
    max_disp: int = 48,
    *,
    n_objects: int | tuple[int, int] = (3, 8),
    slant: float = 0.2,
    p_slanted: float = 0.5,
    integer_disp: bool = False,
    textures: dict[str, float] | None = None,
    photometric: bool = True,
    noise: tuple[float, float] = (0.0, 0.02),
    blur: tuple[float, float] = (0.0, 1.0),
    gain: tuple[float, float] = (0.8, 1.2),
    bias: float = 0.06,
) -> StereoPair:
    """One random scene as a `StereoPair` (uint8 RGB views, exact float32 `gt`, `nonocc`, `fg`).

    `n_objects`: count or (min, max) inclusive range. `slant`: max |d disparity / d pixel| of slanted planes
    (flattened further where the disparity range is too small); `p_slanted`: probability that an object's plane is
    slanted (the background is slanted with probability 0.7 unless `p_slanted` is 0).
    `integer_disp=True` forces fronto-parallel planes at integer disparities. `textures`: relative weights of
    "natural", "flat" (textureless) and "periodic" object textures (default 0.6 / 0.2 / 0.2); with 3 or more objects
    at least one flat and one periodic object is always placed (it may still lie off the canvas or behind others). `photometric=False` renders both views noise-free.
    GT disparities lie in [0, max_disp - 1]. See the module docstring for the exactness guarantees.
    """
    _check_scene_options(seed, height, width, max_disp, n_objects, slant, p_slanted, textures, noise, blur, gain, bias)
    height, width, max_disp = int(height), int(width), int(max_disp)
    rng = np.random.default_rng(seed)
    wc = width + max_disp + 4  # texture canvas: the right view sees up to max_disp px beyond the left view
    hi = float(max_disp - 1)

    weights = {"natural": 0.6, "flat": 0.2, "periodic": 0.2}
    if textures is not None:
        unknown = set(textures) - set(weights)
        if unknown:
            raise StereoKitError(f"unknown texture kinds {sorted(unknown)}; known: {sorted(weights)}")
        weights = {k: float(textures.get(k, 0.0)) for k in weights}
    if sum(weights.values()) <= 0:
        raise StereoKitError("texture weights must not all be zero")
    kinds = list(weights)
    probs = np.array([weights[k] for k in kinds]) / sum(weights.values())

    if isinstance(n_objects, (tuple, list)):
        n_obj = int(rng.integers(n_objects[0], n_objects[1] + 1))
    else:
        n_obj = int(n_objects)

    # background: a (usually slanted) plane over the whole canvas, in the far part of the range
    bg_hi = max(1.0, round(0.35 * hi, 3))
    full = (0.0, float(wc - 1), 0.0, float(height - 1))
    bg_plane = _plane(rng, full, 0.0, bg_hi, slant, 0.7 if p_slanted > 0 else 0.0, integer_disp)
    bg_kind = "periodic" if rng.random() < 0.1 else "natural"
    surfaces = [_Surface(*bg_plane, kind="background", shape=(), bbox=full)]
    _texture(surfaces[0], bg_kind, rng, height, wc)
    _, bg_top = surfaces[0].d_range()

    forced = ["flat", "periodic"] if n_obj >= 3 and weights["flat"] > 0 and weights["periodic"] > 0 else []
    for i in range(n_obj):
        kind, shape, bbox = _object_shape(rng, height, width)
        lo = min(bg_top + 1.0, hi - 1.0)
        plane = _plane(rng, bbox, lo, hi, slant, p_slanted, integer_disp)
        tex_kind = forced[i] if i < len(forced) else kinds[int(rng.choice(len(kinds), p=probs))]
        surfaces.append(_Surface(*plane, kind=kind, shape=shape, bbox=bbox))
        _texture(surfaces[-1], tex_kind, rng, height, wc)

    # ---- left view: z-buffer over integer pixels
    gt = np.full((height, width), -np.inf, dtype=np.float64)
    owner = np.full((height, width), -1, dtype=np.int32)
    for k, s in enumerate(surfaces):
        umin, umax, _, _ = s.bbox
        x0, x1, y0, y1 = _window(s.bbox, umin, umax, height, width)
        if x0 >= x1 or y0 >= y1:
            continue
        vv, uu = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        d = s.disparity(uu, vv)
        win = s.covers(uu, vv) & (d > gt[y0:y1, x0:x1])
        gt[y0:y1, x0:x1][win] = d[win]
        owner[y0:y1, x0:x1][win] = k

    # ---- right view: the same z-buffer, each surface inverse-mapped
    gt_r = np.full((height, width), -np.inf, dtype=np.float64)
    owner_r = np.full((height, width), -1, dtype=np.int32)
    u_r = np.zeros((height, width), dtype=np.float64)
    right_windows = []
    for k, s in enumerate(surfaces):
        umin, umax, _, _ = s.bbox
        dmin, dmax = s.d_range()
        win_box = _window(s.bbox, umin - dmax, umax - dmin, height, width)
        right_windows.append(win_box)
        x0, x1, y0, y1 = win_box
        if x0 >= x1 or y0 >= y1:
            continue
        vv, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        uu = s.to_left(xx, vv)
        d = s.disparity(uu, vv)
        win = s.covers(uu, vv) & (d > gt_r[y0:y1, x0:x1])
        gt_r[y0:y1, x0:x1][win] = d[win]
        owner_r[y0:y1, x0:x1][win] = k
        u_r[y0:y1, x0:x1][win] = uu[win]

    # ---- occlusion: is the left pixel's surface the front-most one at the continuous right position x - gt?
    vv_all, uu_all = np.mgrid[0:height, 0:width].astype(np.float64)
    xr = uu_all - gt
    nonocc = xr >= 0.0
    for k, s in enumerate(surfaces):
        x0, x1, y0, y1 = right_windows[k]
        cand = nonocc & (owner != k) & (xr >= x0 - 1) & (xr <= x1) & (vv_all >= y0) & (vv_all < y1)
        if not cand.any():
            continue
        xs, vs = xr[cand], vv_all[cand]
        us = s.to_left(xs, vs)
        hidden = s.covers(us, vs) & (s.disparity(us, vs) > gt[cand] + 1e-6)
        idx = np.flatnonzero(cand)[hidden]
        nonocc.flat[idx] = False

    # ---- the same for the right view: is its surface the front-most one at the continuous left position x + gt_r?
    xl = uu_all + gt_r
    nonocc_r = (xl <= width - 1) & (owner_r >= 0)
    for k, s in enumerate(surfaces):
        umin, umax, vmin, vmax = s.bbox
        cand = nonocc_r & (owner_r != k) & (xl >= umin - 1) & (xl <= umax + 1) & (vv_all >= vmin - 1) & (vv_all <= vmax + 1)
        if not cand.any():
            continue
        xs, vs = xl[cand], vv_all[cand]
        hidden = s.covers(xs, vs) & (s.disparity(xs, vs) > gt_r[cand] + 1e-6)
        nonocc_r.flat[np.flatnonzero(cand)[hidden]] = False

    # ---- textures
    left = np.empty((height, width, 3), dtype=np.float32)
    right = np.empty((height, width, 3), dtype=np.float32)
    for k, s in enumerate(surfaces):
        m = owner == k
        if m.any():
            ys, xs = np.nonzero(m)
            left[ys, xs] = s.texel(ys, xs)
        m = owner_r == k
        if m.any():
            ys, xs = np.nonzero(m)
            right[ys, xs] = s.sample_row(u_r[ys, xs], ys)

    if photometric:
        left = _photometric(rng, left, noise, blur, gain, bias)
        right = _photometric(rng, right, noise, blur, gain, bias)

    gt32 = gt.astype(np.float32)
    return StereoPair(
        left=to_uint8(left),
        right=to_uint8(right),
        gt=gt32,
        nonocc=nonocc,
        fg=owner > 0,
        name=f"synthetic-{seed:05d}",
        meta={
            "seed": seed,
            "max_disp": max_disp,
            "gt_right": gt_r.astype(np.float32),
            "nonocc_right": nonocc_r,
            "surface": owner,
            "surface_right": owner_r,
            "generator": "stereokit.datasets.synthetic",
        },
    )


MAX_SCENES = 10_000_000  # the pair names are listed up front


def _scene_defaults() -> dict:
    import inspect

    return {k: p.default for k, p in inspect.signature(make_scene).parameters.items() if k != "seed"}


_SCENE_DEFAULTS = _scene_defaults()
_SCENE_OPTIONS = frozenset(_SCENE_DEFAULTS)


def synthetic_dataset(count: int = DEFAULT_COUNT, seed: int = 0, **options) -> Dataset:
    """`count` scenes with seeds `seed .. seed + count - 1`, generated on access (`make_scene(seed_i, **options)`)."""
    if count < 1:
        raise StereoKitError(f"synthetic dataset needs at least one scene, got N={count}")
    if count > MAX_SCENES:
        raise StereoKitError(f"synthetic dataset of {count:,} scenes: at most {MAX_SCENES:,}")
    if seed < 0:
        raise StereoKitError(f"synthetic dataset seed must be >= 0, got {seed}")
    # the options are checked now, with a scene's seed, so a bad one fails here rather than at ds[i]
    bad = set(options) - _SCENE_OPTIONS
    if bad:
        raise StereoKitError(f"unknown synthetic scene option(s) {', '.join(sorted(bad))}")
    opts = {k: options.get(k, v) for k, v in _SCENE_DEFAULTS.items()}
    _check_scene_options(seed, opts["height"], opts["width"], opts["max_disp"], opts["n_objects"], opts["slant"],
                         opts["p_slanted"], opts["textures"], opts["noise"], opts["blur"], opts["gain"], opts["bias"])
    seeds = list(range(seed, seed + count))
    label = "synthetic" if (count, seed) == (DEFAULT_COUNT, 0) else f"synthetic:{count}:{seed}"
    return Dataset(label, [f"synthetic-{s:05d}" for s in seeds], partial(_scene_at, tuple(seeds), options))


def _scene_at(seeds: tuple[int, ...], options: dict, i: int) -> StereoPair:
    return make_scene(seeds[i], **options)
