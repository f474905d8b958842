"""GITClassifier: saved and loaded, its translator stays frozen and its optimizer state loads."""

import warnings

import keras
import numpy as np

import kerazoo
from kerazoo.layers import GITAugment
from kerazoo.models import GITClassifier, MUNITGenerator


def _fitted():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(16, 8, 8, 1)).astype("float32")
    labels = np.repeat([0, 1], 8)
    generator = MUNITGenerator((8, 8, 1), dim=4, n_downsample=1, n_res=1, mlp_dim=8, seed=0)
    augment = GITAugment(generator, class_counts=[100, 5], threshold=20, seed=0)
    model = GITClassifier(kerazoo.backbones.get("convnet", width=8), 2, augment=augment)
    model.compile(optimizer="adam")
    model.fit(images, labels, batch_size=8, epochs=1, verbose=0)
    return model, images, labels


def test_a_loaded_model_keeps_its_translator_frozen_and_its_optimizer_state(tmp_path):
    # The translator is saved frozen; loaded, its parts were trainable, so the
    # optimizer had 92 variables instead of 24 (the saved state was skipped)
    # and the next fit trained the translator.
    model, images, labels = _fitted()
    model.save(tmp_path / "git.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "Skipping variable loading for optimizer"
        loaded = keras.saving.load_model(tmp_path / "git.keras")
    assert len(loaded.trainable_weights) == len(model.trainable_weights)
    for saved, restored in zip(model.optimizer.variables, loaded.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(restored))
    translator = [np.asarray(w) for w in loaded.augment.translator.weights]
    loaded.fit(images, labels, batch_size=8, epochs=1, verbose=0)
    for before, after in zip(translator, loaded.augment.translator.weights, strict=True):
        np.testing.assert_array_equal(before, np.asarray(after))
