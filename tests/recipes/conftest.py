"""Fixtures of the recipe tests."""

import importlib
import json

import pytest
import tensorflow as tf

from helpers.recipes import GIT_TOY_TRANSLATOR


def _config_class(recipe):
    return importlib.import_module(f"kerazoo.recipes.{recipe}").RECIPE.config


# The GIT recipe at toy size: a translator that trains in seconds, and
# evaluations that draw a few nuisances and styles (the defaults' 100 and 8
# took most of a toy run's time).
GIT_TOY = [
    "epochs=2",
    "drs_epoch=1",
    "translator_epochs=1",
    "translator_batch_size=16",
    *GIT_TOY_TRANSLATOR,
    "num_seeds=1",
    "ekld_transforms=2",
    "diagnostic_styles=2",
]


@pytest.fixture
def git_toy():
    """The GIT recipe's toy settings (`key=value` strings), one seed."""
    return list(GIT_TOY)


@pytest.fixture
def config_class():
    """recipe name -> its config dataclass."""
    return _config_class


@pytest.fixture
def two_replica_run(tmp_path):
    """Run a recipe in this process under a MirroredStrategy over the two
    logical CPUs (a subprocess sees one device); return its metrics.json."""

    def run(recipe, *sets):
        recipe_obj = importlib.import_module(f"kerazoo.recipes.{recipe}").RECIPE
        from kerazoo.recipes import runner
        from kerazoo.recipes.config import resolve

        # ReductionToOneDevice: no collective ops, whose instance keys can
        # clash with those of another test's strategy.
        strategy = tf.distribute.MirroredStrategy(
            ["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
        config = resolve(recipe_obj.config, sets=list(sets))
        out = tmp_path / recipe
        job = runner.Run.open(recipe, config, strategy, out=out, command="test")
        runner.execute(recipe_obj, config, job)
        return json.loads((out / "metrics.json").read_text()), out

    return run
