import warnings

import keras
import numpy as np
import tensorflow as tf

from helpers.replicas import assert_replicas_agree
from kerazoo import backbones
from kerazoo.layers import CosineLinear
from kerazoo.models import Classifier


def _model():
    return Classifier(backbones.get("convnet", input_shape=(8, 8, 1), synchronized=True), 10)


def test_keras_file_round_trip(tmp_path):
    model = _model()
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    expected = model(x)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), metrics=["accuracy"])
    model.fit(x, np.arange(4), verbose=0)
    expected = model(x)
    model.save(tmp_path / "m.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "compile() was not called as part of model loading"
        restored = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(restored, Classifier)
    np.testing.assert_allclose(restored(x), expected, atol=1e-6)
    # Recompiled as saved: ready to fine-tune.
    assert restored.optimizer.momentum == 0.9
    logs = restored.evaluate(x, np.zeros(4), verbose=0, return_dict=True)
    assert set(logs) == {"loss", "ce", "accuracy"}


def test_grown_cosine_head_round_trips_through_a_keras_file(tmp_path):
    head = CosineLinear(4)
    model = Classifier(backbones.get("convnet", input_shape=(8, 8, 1)), 6, head=head)
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    model(x)
    head.add_classes(2)
    head.sigma.assign(3.0)
    expected = model(x)
    assert expected.shape == (4, 6)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(restored.head, CosineLinear) and restored.head.old_units == 4
    np.testing.assert_allclose(restored(x), expected, atol=1e-6)


def test_two_replicas_train_like_one_device_on_the_same_global_batch():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(64, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 10, 64).astype("int32")
    keras.utils.set_random_seed(0)
    initial = _model()
    initial(x[:1])
    weights = initial.get_weights()

    def build():
        model = _model()
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
        model(x[:1])
        model.set_weights(weights)
        return model

    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16, drop_remainder=True)
    assert_replicas_agree(build, dataset, epochs=2, atol=2e-5)


def test_cross_entropy_is_the_only_term_and_accuracy_is_tracked():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(32, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 10, 32).astype("int32")
    model = _model()
    model.compile(optimizer="sgd", metrics=["accuracy"])
    logs = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    expected = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, model(x))
    np.testing.assert_allclose(logs["ce"], expected, rtol=1e-5)
    assert logs["loss"] == logs["ce"] and 0 <= logs["accuracy"] <= 1
