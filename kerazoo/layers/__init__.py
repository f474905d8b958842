"""Keras layers (no training logic)."""

from kerazoo.layers.batchformer import BatchFormer
from kerazoo.layers.cosine_linear import CosineLinear, imprint_weights
