"""Losses: pure functions of tensors."""

from kerazoo.losses.balanced_softmax import balanced_softmax_loss
from kerazoo.losses.bnm import bnm_loss, entropy_loss, fbnm_loss
from kerazoo.losses.contrastive import info_nce_loss
from kerazoo.losses.cross_entropy import cross_entropy_loss
from kerazoo.losses.distillation import distillation_loss
from kerazoo.losses.lucir import adaptive_lambda, less_forget_loss, margin_ranking_loss
from kerazoo.losses.translation import lsgan_discriminator_loss, lsgan_generator_loss, reconstruction_loss

__all__ = [
    "adaptive_lambda",
    "balanced_softmax_loss",
    "bnm_loss",
    "cross_entropy_loss",
    "distillation_loss",
    "entropy_loss",
    "fbnm_loss",
    "info_nce_loss",
    "less_forget_loss",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "margin_ranking_loss",
    "reconstruction_loss",
]
