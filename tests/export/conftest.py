"""Shared fixtures of the export tests."""

import keras
import numpy as np
import pytest

from kerazoo import backbones
from kerazoo.models import Classifier

SHAPE = (8, 8, 1)


@pytest.fixture(scope="module")
def model():
    """A tiny Classifier after one SGD step, so BatchNorm statistics are not the defaults."""
    rng = np.random.default_rng(0)
    model = Classifier(backbones.get("convnet", input_shape=SHAPE), 10)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(rng.uniform(0, 1, (16, *SHAPE)), rng.integers(0, 10, 16), batch_size=16, verbose=0)
    return model
