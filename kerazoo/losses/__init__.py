"""Losses: pure functions of tensors."""

from kerazoo.losses.bnm import bnm_loss, entropy_loss, fbnm_loss
from kerazoo.losses.balanced_softmax import balanced_softmax_loss
from kerazoo.losses.distillation import distillation_loss
from kerazoo.losses.lucir import adaptive_lambda, less_forget_loss, margin_ranking_loss
