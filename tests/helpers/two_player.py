"""A toy model with two optimizers, one descending and one ascending, and a
recipe that trains it on two augmented views per image.

It stands in for AdCo (encoder by descent, negatives by ascent) in the
platform's tests: replica equality (tests/models/test_base.py) and exact
kill-and-resume of every weight and optimizer slot
(tests/recipes/test_runner.py runs this file as a script).
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from kerazoo.data import unlabelled_dataset
from kerazoo.models import OptimizerGroup, TrainingModel
from kerazoo.optimizers import GradientAscent
from kerazoo.recipes.config import option
from kerazoo.recipes.recipe import Method, Recipe, RunConfig
from kerazoo.recipes.results import Column, MethodResult

SHAPE = (8, 8, 1)


class TwoPlayer(TrainingModel):
    """Encoder f descends on an agreement + contrast loss; a bank W of
    negatives ascends on its own loss (softmax weight on the negatives)."""

    loss_terms = ("encoder", "bank")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.encoder = keras.Sequential(
            [keras.layers.Flatten(), keras.layers.Dense(6, kernel_initializer="glorot_uniform")]
        )
        self.bank = self.add_weight(shape=(6, 5), initializer="random_normal", name="bank")

    def call(self, images, training=False):
        return self.encoder(images)

    def compile(self, optimizer, bank_optimizer, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        self.bank_optimizer = bank_optimizer

    def optimizer_groups(self):
        return [
            OptimizerGroup("encoder", self.optimizer, self.encoder.trainable_variables, ("encoder",)),
            OptimizerGroup("bank", self.bank_optimizer, [self.bank], ("bank",)),
        ]

    def compute_losses(self, data, training):
        view1, view2 = data
        q, k = self(view1, training=training), self(view2, training=training)
        negatives = ops.matmul(q, self.bank)
        contrast = ops.mean(ops.logsumexp(negatives, axis=1))
        agreement = ops.mean(ops.sum(ops.square(q - k), axis=1))
        bank = ops.mean(ops.logsumexp(ops.matmul(ops.stop_gradient(q), self.bank) / 0.5, axis=1))
        return {"encoder": agreement + contrast, "bank": bank}, None


def build(seed=0):
    """A compiled `TwoPlayer` (call inside the strategy scope)."""
    keras.utils.set_random_seed(seed)
    model = TwoPlayer()
    model.compile(
        keras.optimizers.SGD(0.05, momentum=0.9),
        GradientAscent(keras.optimizers.SGD(0.1, momentum=0.9)),
    )
    model(np.zeros((1, *SHAPE), "float32"))
    return model


def state(model):
    """Every weight and every optimizer variable (slots, iterations)."""
    return [
        np.asarray(v) for v in (*model.weights, *model.optimizer.variables, *model.bank_optimizer.variables)
    ]


@dataclasses.dataclass
class TwoPlayerConfig(RunConfig):
    epochs: int = option(6, "training epochs", min=1)
    batch_size: int = option(8, "global batch size", min=1)


def run_method(config, run, method, data):
    seed = run.seed
    images = np.random.default_rng(seed).uniform(0, 1, (64, *SHAPE)).astype("float32")
    data = unlabelled_dataset(images, config.batch_size, seed, run.epoch_counter, augment="views", views=2)
    with run.strategy.scope():
        model = build(seed)
    run.fit(model, data, stage="two-player", epochs=config.epochs)
    values = [v.ravel().tolist() for v in state(model)]
    return MethodResult(
        {method: {"bank_norm": float(np.linalg.norm(np.asarray(model.bank)))}}, details={"state": values}
    )


# Its own experiment module: run_method above (`__main__` when run as a script).
RECIPE = Recipe(
    "two_player",
    TwoPlayerConfig,
    {"two-player": Method("two-player", ships=True)},
    [Column("bank_norm", "bank norm", 1.0, 4)],
    experiment=__name__,
)

if __name__ == "__main__":
    RECIPE.main()
