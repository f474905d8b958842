"""Keras layers (no training logic)."""

from kerazoo.layers.adain import AdaptiveInstanceNorm
from kerazoo.layers.batchformer import BatchFormer
from kerazoo.layers.cosine_linear import CosineLinear, imprint_weights
from kerazoo.layers.fused_batch_normalization import FusedBatchNormalization
from kerazoo.layers.git_augment import GITAugment
from kerazoo.layers.negative_bank import NegativeBank
from kerazoo.layers.zero_padded_shortcut import ZeroPaddedShortcut

__all__ = [
    "AdaptiveInstanceNorm",
    "BatchFormer",
    "CosineLinear",
    "FusedBatchNormalization",
    "GITAugment",
    "NegativeBank",
    "ZeroPaddedShortcut",
    "imprint_weights",
]
