"""MC-CNN networks (Zbontar & LeCun, JMLR 2016): the fast (cosine) and accurate (FC head) siamese patch comparators.

Training sees patches of `patch_size` x `patch_size` and the valid 3x3 convolutions reduce them to one feature vector.
Inference is fully convolutional: `feature_map` zero-pads the (zero-mean, unit-std normalised) image by `radius` on
every side and runs the same valid convolutions, so the feature at pixel (y, x) is *exactly* the tower applied to the
patch of the padded image centred at (y, x). Patch-by-patch and full-image computation therefore agree everywhere,
borders included (zero is the image mean after normalisation, so padding adds no artificial edge). The reference
code instead pads every layer by one and copies the border columns of the cost volume; both differ only within
`radius` pixels of the border.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from numba import njit, prange
from torch import nn

from stereokit.errors import StereoKitError

# Paper settings: number of conv layers (patch = 2 * layers + 1) and FC layers of the accurate head.
SETTINGS = {
    "middlebury": {"conv_layers": 5, "fc_layers": 3},
    "kitti": {"conv_layers": 4, "fc_layers": 4},
}
ARCHS = ("fast", "acrt")


def _check_setting(setting: str) -> dict:
    if setting not in SETTINGS:
        raise StereoKitError(f"unknown MC-CNN setting {setting!r}; expected one of {sorted(SETTINGS)}")
    return SETTINGS[setting]


def _tower(in_channels: int, maps: int, layers: int, relu_last: bool) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i in range(layers):
        mods.append(nn.Conv2d(in_channels if i == 0 else maps, maps, 3))
        if i < layers - 1 or relu_last:
            mods.append(nn.ReLU(inplace=True))
    return nn.Sequential(*mods)


class _MCCNN(nn.Module):
    arch = ""
    conv_layers = 0

    @property
    def radius(self) -> int:
        """Half the receptive field: the patch is 2 * radius + 1 pixels wide."""
        return self.conv_layers

    @property
    def patch_size(self) -> int:
        return 2 * self.conv_layers + 1

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Tower output on (N, C, h, w) input with valid convolutions: (N, maps, h - 2r, w - 2r)."""
        return self.tower(x)

    def feature_map(self, image: torch.Tensor) -> torch.Tensor:
        """Per-pixel features of a whole normalised image (C, H, W) or (H, W): (maps, H, W), zero-padded input."""
        if image.dim() == 2:
            image = image[None]
        r = self.radius
        return self.features(F.pad(image[None], (r, r, r, r)))[0]

    def config(self) -> dict:
        return {"arch": self.arch, "setting": self.setting, "in_channels": self.in_channels}


class FastNet(_MCCNN):
    """MC-CNN-fst: conv tower (64 maps, ReLU between layers, none after the last), L2-normalised, cosine similarity."""

    arch = "fast"

    def __init__(self, setting: str = "middlebury", in_channels: int = 1, maps: int = 64):
        super().__init__()
        self.setting = setting
        self.in_channels = in_channels
        self.conv_layers = _check_setting(setting)["conv_layers"]
        self.tower = _tower(in_channels, maps, self.conv_layers, relu_last=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.tower(x), dim=1)

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of patch pairs (N, C, P, P) -> (N,)."""
        return (self.features(left) * self.features(right)).sum(1).flatten()

    @staticmethod
    def similarity(fl: torch.Tensor, fr: torch.Tensor) -> torch.Tensor:
        """Similarity of aligned feature maps (maps, ...) -> (...)."""
        return (fl * fr).sum(0)


class AccurateNet(_MCCNN):
    """MC-CNN-acrt: conv tower (112 maps, ReLU after every layer), concatenation, FC layers of 384 units, sigmoid.

    The head has `fc_layers` hidden layers of 384 units with ReLU and a final one-unit layer (as in the reference code).
    At inference the FC layers act per pixel on disparity-shifted feature pairs (equivalent to 1x1 convolutions).
    """

    arch = "acrt"

    def __init__(self, setting: str = "middlebury", in_channels: int = 1, maps: int = 112, hidden: int = 384):
        super().__init__()
        self.setting = setting
        self.in_channels = in_channels
        cfg = _check_setting(setting)
        self.conv_layers = cfg["conv_layers"]
        self.tower = _tower(in_channels, maps, self.conv_layers, relu_last=True)
        fc: list[nn.Module] = []
        for i in range(cfg["fc_layers"]):
            fc += [nn.Linear(2 * maps if i == 0 else hidden, hidden), nn.ReLU(inplace=True)]
        fc.append(nn.Linear(hidden, 1))
        self.head = nn.Sequential(*fc)
        self.maps = maps

    def logits(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid score of patch pairs (N, C, P, P) -> (N,)."""
        fl = self.features(left).flatten(1)
        fr = self.features(right).flatten(1)
        return self.head(torch.cat([fl, fr], 1)).flatten()

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """Match probability of patch pairs (N, C, P, P) -> (N,)."""
        return torch.sigmoid(self.logits(left, right))

    def pixel_similarity(self, fl: torch.Tensor, fr: torch.Tensor) -> torch.Tensor:
        """Head on per-pixel feature pairs, channels last: (..., maps) x 2 -> (...), the FC layers as 1x1 convolutions.

        The first layer is split (W [fl; fr] = Wl fl + Wr fr) so callers may precompute each half once per image.
        """
        return torch.sigmoid(self.head(torch.cat([fl, fr], -1))[..., 0])

    def split_first_layer(self, fl: torch.Tensor, fr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """First FC layer's contributions of left and right features, channels last (bias on the left term)."""
        lin = self.head[0]
        wl, wr = lin.weight[:, : self.maps], lin.weight[:, self.maps :]
        return fl @ wl.T + lin.bias, fr @ wr.T

    def head_after_first(self, pre: torch.Tensor) -> torch.Tensor:
        """Rest of the head given the first layer's pre-activation: (..., hidden) -> similarity (...)."""
        return torch.sigmoid(self.head[1:](pre)[..., 0])


def build_model(arch: str, setting: str = "middlebury", in_channels: int = 1) -> _MCCNN:
    """FastNet for arch 'fast', AccurateNet for 'acrt' (alias 'accurate')."""
    if arch in ("acrt", "accurate", "slow"):
        return AccurateNet(setting, in_channels)
    if arch == "fast":
        return FastNet(setting, in_channels)
    raise StereoKitError(f"unknown MC-CNN architecture {arch!r}; expected 'fast' or 'acrt'")


def normalize_image(img: np.ndarray) -> np.ndarray:
    """Zero mean, unit std per image (the paper's input normalisation); a constant image becomes zeros."""
    img = np.asarray(img, dtype=np.float32)
    std = float(img.std())
    return ((img - img.mean()) / (std if std > 1e-8 else 1.0)).astype(np.float32)


def _shift_slices(width: int, d: int) -> tuple[slice, slice]:
    """Columns x of the left image and x - d of the right image where both lie inside [0, width)."""
    if d >= 0:
        return slice(d, width), slice(0, width - d)
    return slice(0, width + d), slice(-d, width)


@njit(cache=True, parallel=True, fastmath=True)
def _correlate(fl, fr, min_disp, num_disp):  # pragma: no cover - compiled
    H, W, C = fl.shape
    out = np.empty((H, W, num_disp), np.float32)
    for y in prange(H):
        for x in range(W):
            for k in range(num_disp):
                xr = x - min_disp - k
                if xr < 0 or xr >= W:
                    out[y, x, k] = np.inf
                else:
                    s = np.float32(0.0)
                    for c in range(C):
                        s += fl[y, x, c] * fr[y, xr, c]
                    out[y, x, k] = np.float32(1.0) - s
    return out


@torch.no_grad()
def fast_cost_from_features(fl: torch.Tensor, fr: torch.Tensor, max_disp: int, min_disp: int = 0) -> np.ndarray:
    """1 - <fl(y, x), fr(y, x - d)> for d in [min_disp, min_disp + max_disp), float32 (H, W, D), +inf outside.

    On CPU a Numba kernel over channels-last features (one pass, no per-disparity temporaries); on CUDA a loop
    over disparities.
    """
    C, H, W = fl.shape
    if fl.device.type == "cpu":
        a = np.ascontiguousarray(fl.permute(1, 2, 0).numpy())
        b = np.ascontiguousarray(fr.permute(1, 2, 0).numpy())
        return _correlate(a, b, int(min_disp), int(max_disp))
    vol = torch.full((max_disp, H, W), float("inf"), dtype=torch.float32, device=fl.device)
    for k in range(max_disp):
        sl, sr = _shift_slices(W, min_disp + k)
        if sl.stop > sl.start:
            vol[k, :, sl] = 1.0 - FastNet.similarity(fl[:, :, sl], fr[:, :, sr])
    return np.ascontiguousarray(vol.permute(1, 2, 0).cpu().numpy())


@torch.no_grad()
def mccnn_cost_volume(
    model: _MCCNN,
    left_gray: np.ndarray,
    right_gray: np.ndarray,
    max_disp: int,
    min_disp: int = 0,
    device: torch.device | str | None = None,
    chunk_pixels: int = 1 << 16,
    normalize: bool = True,
) -> np.ndarray:
    """MC-CNN matching cost, float32 (H, W, D), lower is better; index k is disparity min_disp + k; +inf where x - d is
    outside the right image.

    fast: 1 - cosine similarity (in [0, 2]); acrt: 1 - sigmoid output (in [0, 1]). Both are the paper's -similarity
    shifted by one, which changes neither WTA nor SGM. Images are normalised to zero mean / unit std unless
    `normalize=False`. The accurate head is evaluated per disparity in chunks of `chunk_pixels` pixels so memory
    stays bounded (chunk x 384 floats per hidden layer).
    """
    from learned.common import choose_device

    dev = choose_device(device)
    model = model.to(dev).eval()
    left = normalize_image(left_gray) if normalize else np.asarray(left_gray, np.float32)
    right = normalize_image(right_gray) if normalize else np.asarray(right_gray, np.float32)
    H, W = left.shape[:2]
    fl = model.feature_map(torch.from_numpy(np.ascontiguousarray(left)).to(dev))
    fr = model.feature_map(torch.from_numpy(np.ascontiguousarray(right)).to(dev))
    if isinstance(model, FastNet):
        return fast_cost_from_features(fl, fr, max_disp, min_disp)
    vol = torch.full((max_disp, H, W), float("inf"), dtype=torch.float32, device=dev)
    if True:
        pl, pr = model.split_first_layer(fl.permute(1, 2, 0), fr.permute(1, 2, 0))  # (H, W, hidden)
        rows = max(1, chunk_pixels // max(W, 1))
        for k in range(max_disp):
            sl, sr = _shift_slices(W, min_disp + k)
            if sl.stop <= sl.start:
                continue
            for y0 in range(0, H, rows):
                pre = pl[y0 : y0 + rows, sl] + pr[y0 : y0 + rows, sr]
                vol[k, y0 : y0 + rows, sl] = 1.0 - model.head_after_first(pre)
    return np.ascontiguousarray(vol.permute(1, 2, 0).cpu().numpy())
