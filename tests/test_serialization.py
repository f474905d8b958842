"""deserialized: from_config leaves its argument as it was, so it can rebuild twice."""

import keras
import numpy as np
import pytest

from kerazoo import backbones
from kerazoo.layers import BatchFormer, CosineLinear
from kerazoo.models import AdCo, BatchFormerClassifier, Classifier, FeatureExtractor, LUCIRClassifier
from kerazoo.serialization import deserialized


def test_the_named_entries_come_back_as_objects_in_a_copy():
    config = {"head": keras.saving.serialize_keras_object(keras.layers.Dense(3)), "none": None, "n": 3}
    rebuilt = deserialized(config, "head", "none", "absent")
    assert isinstance(rebuilt["head"], keras.layers.Dense) and rebuilt["none"] is None and rebuilt["n"] == 3
    assert isinstance(config["head"], dict) and "absent" not in rebuilt


def _backbone():
    return backbones.get("convnet", input_shape=(8, 8, 1), width=8)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Classifier(_backbone(), 3, head=CosineLinear(3)),
        lambda: BatchFormerClassifier(_backbone(), 3, BatchFormer()),
        lambda: LUCIRClassifier(_backbone(), CosineLinear(3)),
        lambda: FeatureExtractor(_backbone(), projection=keras.layers.Dense(4)),
        lambda: AdCo(_backbone(), bank_size=8, dim=4, hidden_dim=8),
    ],
    ids=["Classifier", "BatchFormerClassifier", "LUCIRClassifier", "FeatureExtractor", "AdCo"],
)
def test_from_config_rebuilds_twice_from_one_config(make):
    model = make()
    model(np.zeros((1, 8, 8, 1), "float32"))
    config = model.get_config()
    first, second = type(model).from_config(config), type(model).from_config(config)
    assert type(first) is type(second) is type(model)
