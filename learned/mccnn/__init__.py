"""MC-CNN (Zbontar & LeCun, JMLR 2016): learned patch similarity feeding the shared CBCA / SGM / refinement steps.

model: FastNet / AccurateNet and `mccnn_cost_volume`; sampler: training patch triplets; train: `stereokit train
mccnn`; weights: loading shipped or user weights; presets: the paper's stereo-method hyperparameters; matcher:
the registered `mccnn-fast` / `mccnn-acrt`.
"""

from .model import AccurateNet, FastNet, build_model, mccnn_cost_volume

__all__ = ["FastNet", "AccurateNet", "build_model", "mccnn_cost_volume"]
