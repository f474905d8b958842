"""One meaning of `weight_decay` across recipes: every recipe hands its value to
`kerazoo.optimizers.CoupledWeightDecay` (PyTorch's coupled L2), never to Keras'
decoupled `weight_decay=`, for every optimizer it builds."""

import importlib

import numpy as np
import pytest

from kerazoo.data import Protocol
from kerazoo.optimizers import CoupledWeightDecay
from kerazoo.recipes.adco import experiment as adco
from kerazoo.recipes.baseline import experiment as baseline
from kerazoo.recipes.batchformer import experiment as batchformer
from kerazoo.recipes.bnm import experiment as bnm
from kerazoo.recipes.config import resolve
from kerazoo.recipes.git import GITConfig
from kerazoo.recipes.git import experiment as git

SHAPE = (8, 8, 1)


def _protocol():
    rng = np.random.default_rng(0)
    images = rng.random((40, *SHAPE)).astype("float32")
    labels = np.arange(40, dtype="int32") % 4
    return Protocol("toy", images, labels, images[:8], labels[:8], 4, list("abcd"))


def _optimizers(model):
    return [group.optimizer for group in model.optimizer_groups()]


BUILDERS = {
    "baseline": lambda c: _optimizers(baseline.build_model(c, _protocol())),
    "bnm": lambda c: _optimizers(bnm.build_model(c, "bnm", SHAPE, 4)),
    "bnm_sgd": lambda c: _optimizers(bnm.build_model(c, "bnm", SHAPE, 4)),
    "batchformer": lambda c: _optimizers(
        batchformer.build_model(c, _protocol(), "balanced_softmax_batchformer", 100)
    ),
    "batchformer_sgd": lambda c: _optimizers(
        batchformer.build_model(c, _protocol(), "balanced_softmax_batchformer", 100)
    ),
    "git": lambda c: _optimizers(git.build_model(c, SHAPE, 4, 0.1)),
    "adco": lambda c: _optimizers(adco.build_model(c, "adco", (16, 16, 1), 100))[:1],
}
SETS = {"bnm_sgd": ["optimizer=sgd"], "batchformer_sgd": ["optimizer=sgd"], "adco": ["dim=8"]}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_recipe_optimizer_applies_coupled_weight_decay(name):
    recipe = name.split("_")[0]
    config = resolve(
        importlib.import_module(f"kerazoo.recipes.{recipe}").RECIPE.config,
        sets=["weight_decay=0.003", *SETS.get(name, [])],
    )
    for optimizer in BUILDERS[name](config):
        assert isinstance(optimizer, CoupledWeightDecay), (name, type(optimizer))
        assert optimizer.weight_decay == pytest.approx(0.003)
        assert not optimizer.inner_optimizer.weight_decay  # Keras' decoupled decay stays off


def test_the_translator_has_munits_coupled_adam_decay():
    config = resolve(
        GITConfig,
        sets=[
            "translator_dim=8",
            "translator_n_res=1",
            "translator_mlp_dim=16",
            "disc_dim=8",
            "disc_layers=2",
        ],
    )
    munit = git.build_translator(config, (16, 16, 1))
    for optimizer in _optimizers(munit):
        assert isinstance(optimizer, CoupledWeightDecay) and optimizer.weight_decay == pytest.approx(1e-4)
