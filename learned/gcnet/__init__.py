"""GC-Net (Kendall et al., ICCV 2017): end-to-end stereo with a concatenation cost volume, 3-D convolutions and
soft argmin. `model` (network, configs), `train` (`stereokit train gcnet`), `matcher` (the registered `gcnet`)."""

from .model import CONFIGS, GCNet, GCNetConfig, concat_cost_volume, soft_argmin

__all__ = ["CONFIGS", "GCNet", "GCNetConfig", "concat_cost_volume", "soft_argmin"]
