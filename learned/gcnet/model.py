"""GC-Net (Kendall et al., ICCV 2017): shared 2-D unary features, concatenation cost volume, 3-D encoder-decoder,
soft argmin.

Layer numbers in comments refer to Table 1 of the paper. Every convolution owns its weights (the published
reimplementation bug of one residual-block conv applied twice is avoided by construction: each block builds two).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stereokit.errors import StereoKitError


@dataclass(frozen=True)
class GCNetConfig:
    """Architecture of one GC-Net variant.

    `features`: unary feature maps (the cost volume has 2x as many channels); `res_blocks`: residual blocks of two
    3x3 convs in the unary tower; `volume_channels`: 3-D channels at the cost volume's resolution (layers 19-20)
    followed by one entry per stride-2 encoder level (layers 21-32); `max_disp`: disparities the network was built
    and trained for (full resolution).
    """

    features: int = 32
    res_blocks: int = 8
    volume_channels: tuple[int, ...] = (32, 64, 64, 64, 128)
    max_disp: int = 192
    in_channels: int = 3

    def __post_init__(self) -> None:
        def count(name: str, v, least: int) -> int:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
                raise StereoKitError(f"GCNetConfig.{name} must be an integer >= {least}, got {v!r}")
            return int(v)

        for name, least in (("features", 1), ("res_blocks", 0), ("max_disp", 1), ("in_channels", 1)):
            object.__setattr__(self, name, count(name, getattr(self, name), least))
        if isinstance(self.volume_channels, (str, bytes)) or not isinstance(self.volume_channels, (list, tuple)):
            raise StereoKitError(f"GCNetConfig.volume_channels must be a list of integers, got {self.volume_channels!r}")
        object.__setattr__(self, "volume_channels",
                           tuple(count("volume_channels", c, 1) for c in self.volume_channels))
        if len(self.volume_channels) < 2:
            raise StereoKitError("GCNetConfig.volume_channels needs the base width and at least one encoder level")
        if self.max_disp % self.multiple:
            raise StereoKitError(f"GCNetConfig.max_disp must be a multiple of {self.multiple}, got {self.max_disp}")

    @property
    def levels(self) -> int:
        """Stride-2 levels of the 3-D encoder."""
        return len(self.volume_channels) - 1

    @property
    def multiple(self) -> int:
        """Height, width and disparity count must be multiples of this (unary stride 2 x encoder strides)."""
        return 2 ** (self.levels + 1)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["volume_channels"] = list(self.volume_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "GCNetConfig":
        keys = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - keys
        if unknown:
            raise StereoKitError(f"unknown GCNet config keys: {sorted(unknown)}")
        return cls(**d)


CONFIGS: dict[str, GCNetConfig] = {
    # As published: 32 unary features, 8 residual blocks, 4 encoder levels of 64/64/64/128, D = 192.
    "paper": GCNetConfig(features=32, res_blocks=8, volume_channels=(32, 64, 64, 64, 128), max_disp=192),
    # Trainable on a shared 2-core CPU: same topology, a quarter of the unary width, half the residual blocks,
    # one encoder level fewer and narrower 3-D layers; D = 64 (Middlebury at half scale, the `sample` pair).
    "compact": GCNetConfig(features=8, res_blocks=4, volume_channels=(8, 16, 16, 32), max_disp=64),
}


def _conv2d(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _conv3d(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True))


def _deconv3d(cin: int, cout: int) -> nn.Sequential:
    # kernel 3, stride 2, padding 1, output_padding 1: exactly doubles every extent.
    return nn.Sequential(
        nn.ConvTranspose3d(cin, cout, 3, 2, 1, output_padding=1, bias=False),
        nn.BatchNorm3d(cout),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 conv + BN layers, each with its own weights, plus identity skip (layers 2-17, in pairs)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        return F.relu(x + y, inplace=True)


class UnaryFeatures(nn.Module):
    """Layers 1-18: 5x5 stride-2 conv, residual blocks, final 3x3 conv without BN/ReLU."""

    def __init__(self, cfg: GCNetConfig) -> None:
        super().__init__()
        f = cfg.features
        self.conv1 = _conv2d(cfg.in_channels, f, 5, stride=2)
        self.blocks = nn.Sequential(*[ResidualBlock(f) for _ in range(cfg.res_blocks)])
        self.last = nn.Conv2d(f, f, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(self.blocks(self.conv1(x)))


def concat_cost_volume(left: torch.Tensor, right: torch.Tensor, num_disp: int) -> torch.Tensor:
    """Concatenation volume (N, 2C, num_disp, H, W): left features, then right features at x - d.

    Entry [:, C:, d, y, x] is right[:, :, y, x - d]; it is zero where x - d < 0 (no match inside the image).
    The left half is the left features at every disparity.
    """
    n, c, h, w = left.shape
    vol = left.new_zeros(n, 2 * c, num_disp, h, w)
    vol[:, :c] = left.unsqueeze(2)
    for d in range(min(num_disp, w)):
        vol[:, c:, d, :, d:] = right[:, :, :, : w - d]
    return vol


def soft_argmin(cost: torch.Tensor, dim: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable sub-pixel disparity `sum_d d * softmax(-cost)_d` along `dim`; returns (disparity, probabilities)."""
    prob = F.softmax(-cost, dim=dim)
    shape = [1] * cost.dim()
    shape[dim] = cost.shape[dim]
    disps = torch.arange(cost.shape[dim], dtype=cost.dtype, device=cost.device).view(shape)
    return (prob * disps).sum(dim=dim), prob


def confidence(prob: torch.Tensor, kind: str = "peak", dim: int = 1) -> torch.Tensor:
    """Per-pixel confidence from the soft-argmin distribution: "peak" (max probability, in (0, 1]) or
    "entropy" (1 - normalised entropy, in [0, 1]; 1 = all mass on one disparity)."""
    if kind == "peak":
        return prob.amax(dim=dim)
    if kind == "entropy":
        ent = -(prob * torch.log(prob.clamp_min(1e-12))).sum(dim=dim)
        return 1.0 - ent / float(np.log(prob.shape[dim]))
    raise StereoKitError(f"unknown confidence kind {kind!r}; use 'peak' or 'entropy'")


class GCNet(nn.Module):
    """GC-Net: forward(left, right, num_disp) -> (N, num_disp, H, W) costs; `predict` adds the soft argmin.

    Inputs are (N, in_channels, H, W) normalised images with H, W and num_disp multiples of `cfg.multiple`.
    """

    def __init__(self, cfg: GCNetConfig | str = "compact") -> None:
        super().__init__()
        if isinstance(cfg, str):
            if cfg not in CONFIGS:
                raise StereoKitError(f"unknown GCNet config {cfg!r}; choose from {sorted(CONFIGS)}")
            cfg = CONFIGS[cfg]
        self.cfg = cfg
        ch = cfg.volume_channels
        self.unary = UnaryFeatures(cfg)
        # Layers 19-20: two 3-D convs at the cost volume's resolution.
        self.base = nn.Sequential(_conv3d(2 * cfg.features, ch[0]), _conv3d(ch[0], ch[0]))
        # Layers 21-32: each level a stride-2 conv (fed by the previous level's stride-2 conv, as in the paper)
        # and two convs whose output is the skip added back in the decoder.
        self.down = nn.ModuleList()
        self.level = nn.ModuleList()
        prev = 2 * cfg.features
        for c in ch[1:]:
            self.down.append(_conv3d(prev, c, stride=2))
            self.level.append(nn.Sequential(_conv3d(c, c), _conv3d(c, c)))
            prev = c
        # Layers 33-36: transposed convs back up, each plus the skip of the level above.
        self.up = nn.ModuleList(_deconv3d(ch[i + 1], ch[i]) for i in reversed(range(cfg.levels)))
        # Layer 37: transposed conv to full resolution, one cost per disparity (no BN/ReLU).
        self.final = nn.ConvTranspose3d(ch[0], 1, 3, 2, 1, output_padding=1)

    def check_sizes(self, h: int, w: int, num_disp: int) -> None:
        m = self.cfg.multiple
        if h % m or w % m or num_disp % m:
            raise StereoKitError(
                f"GCNet needs height, width and disparity count divisible by {m}, got {h}x{w}, {num_disp} disparities"
            )

    def forward(self, left: torch.Tensor, right: torch.Tensor, num_disp: int) -> torch.Tensor:
        self.check_sizes(left.shape[-2], left.shape[-1], num_disp)
        both = self.unary(torch.cat([left, right], dim=0))  # one pass: weights shared between views
        fl, fr = both[: left.shape[0]], both[left.shape[0]:]
        vol = concat_cost_volume(fl, fr, num_disp // 2)
        skips = [self.base(vol)]
        x = vol
        for down, level in zip(self.down, self.level):
            x = down(x)
            skips.append(level(x))
        x = skips[-1]
        for up, skip in zip(self.up, reversed(skips[:-1])):
            x = up(x) + skip
        return self.final(x).squeeze(1)

    def predict(
        self, left: torch.Tensor, right: torch.Tensor, num_disp: int, conf: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(N, H, W) soft-argmin disparity and, if `conf` is "peak"/"entropy", the (N, H, W) confidence."""
        disp, prob = soft_argmin(self(left, right, num_disp), dim=1)
        return disp, (confidence(prob, conf) if conf else None)


def normalize_image(img: np.ndarray, channels: int = 3) -> torch.Tensor:
    """Float image (H, W) or (H, W, 3) -> (1, channels, H, W) tensor with zero mean and unit std (gray repeated)."""
    img = np.asarray(img, dtype=np.float32)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], channels, axis=2)
    elif img.shape[2] != channels:
        img = np.repeat(img.mean(axis=2, keepdims=True), channels, axis=2)
    img = (img - img.mean()) / max(float(img.std()), 1e-6)
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (N, C, H, W) at the bottom and right (replicate) to multiples of `multiple`; returns the original (H, W).

    Padding bottom/right keeps pixel coordinates (and so disparities) of the original image unchanged.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (h, w)
