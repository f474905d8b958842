"""Shared fixtures of the export tests: one trained model of each export kind, and the
classifier's SavedModel."""

import keras
import numpy as np
import pytest

from helpers.export import SHAPE
from helpers.export import random_images as images
from kerazoo import backbones
from kerazoo.export import export_savedmodel
from kerazoo.models import Classifier, FeatureExtractor


@pytest.fixture(scope="module")
def model():
    """A tiny Classifier after one SGD step, so BatchNorm statistics are not the defaults."""
    rng = np.random.default_rng(0)
    model = Classifier(backbones.get("convnet", input_shape=SHAPE), 10)
    model.compile(optimizer="sgd")
    model.fit(images(16), rng.integers(0, 10, 16), batch_size=16, verbose=0)
    return model


@pytest.fixture(scope="module")
def feature_extractor():
    """A FeatureExtractor (projection + L2 normalisation) whose BatchNorm
    statistics moved in one training-mode call."""
    model = FeatureExtractor(
        backbones.get("convnet", input_shape=SHAPE, width=16),
        projection=keras.layers.Dense(12, name="projection"),
        normalize=True,
    )
    model(images(16, seed=1), training=True)
    return model


@pytest.fixture(scope="module")
def saved_path(model, tmp_path_factory):
    return export_savedmodel(model, tmp_path_factory.mktemp("saved") / "model")
