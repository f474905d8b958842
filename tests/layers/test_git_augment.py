"""GITAugment: which rows it replaces (eligible classes, the stated fraction), both rules, round trip."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.layers import check_layer
from kerazoo.layers import GITAugment


@keras.saving.register_keras_serializable(package="tests")
class Inverted(keras.layers.Layer):
    """A stand-in translator: 1 − x, so every replaced row is recognisable."""

    def call(self, images, training=False):
        return 1.0 - images


COUNTS = [100, 10, 3]  # threshold 20: classes 1 and 2 are eligible


def _batch(labels, seed=0):
    images = np.random.default_rng(seed).uniform(0.1, 0.4, (len(labels), 4, 4, 1)).astype("float32")
    return images, np.asarray(labels, "int32")


def _replaced(augment, images, labels):
    out, out_labels = augment(images, labels, training=True)
    out = np.asarray(out)
    np.testing.assert_array_equal(np.asarray(out_labels), labels)
    translated = np.isclose(out, 1.0 - images).all(axis=(1, 2, 3))
    kept = np.isclose(out, images).all(axis=(1, 2, 3))
    assert np.all(translated | kept)  # a row is either replaced whole or untouched
    return translated


@pytest.mark.parametrize("fraction, candidates", [(0.5, 5), (0.25, 2), (1.0, 10)])
def test_threshold_rule_replaces_only_eligible_classes_in_the_last_fraction(fraction, candidates):
    labels = [2, 0, 1, 2, 0, 1, 2, 0, 1, 2]
    images, labels = _batch(labels)
    augment = GITAugment(Inverted(), COUNTS, threshold=20, fraction=fraction)
    replaced = _replaced(augment, images, labels)
    expected = (np.arange(10) >= 10 - candidates) & (labels != 0)
    np.testing.assert_array_equal(replaced, expected)


class Counting(Inverted):
    """Inverted, remembering how many rows it was given."""

    def call(self, images, training=False):
        self.rows.append(images.shape[0])
        return super().call(images)


@pytest.mark.parametrize("labels", [[0, 0, 1, 2, 0, 2], [1, 1, 1, 0, 0, 0]])
def test_the_translator_sees_only_the_replaced_rows(labels):
    images, labels = _batch(labels)
    translator = Counting()
    translator.rows = []
    augment = GITAugment(translator, COUNTS, threshold=20, fraction=0.5)
    replaced = _replaced(augment, images, labels)
    assert translator.rows == ([replaced.sum()] if replaced.any() else [])  # 2 rows; not called for none

    # In a traced step the row count is dynamic, and may be 0.
    step = tf.function(lambda x, y: augment(x, y, training=True)[0])
    np.testing.assert_allclose(
        step(images, labels), np.where(replaced[:, None, None, None], 1 - images, images)
    )


@pytest.mark.parametrize(
    "rule, labels, fraction",
    [("threshold", [1, 1, 0, 0], 0.5), ("threshold", [1], 0.5), ("ramp", [1, 2, 1, 2], 0.0)],
    ids=["no tail candidate", "batch of one", "fraction 0"],
)
def test_a_batch_with_nothing_to_translate_is_returned_as_it_is(rule, labels, fraction):
    # A MUNIT translator's reflection padding fails on an empty batch.
    from kerazoo.models import MUNITGenerator

    translator = MUNITGenerator((4, 4, 1), dim=2, n_downsample=1, n_res=1, mlp_dim=4, seed=0)
    augment = GITAugment(translator, COUNTS, threshold=20, fraction=fraction, rule=rule, seed=0)
    images, labels = _batch(labels)
    step = tf.function(lambda x, y: augment(x, y, training=True)[0])
    for out in (augment(images, labels, training=True)[0], step(images, labels)):
        np.testing.assert_array_equal(np.asarray(out), images)
    source = _batch([2])
    independent = GITAugment(translator, COUNTS, threshold=20, fraction=0.5, rule="independent", seed=0)
    out, _ = independent(images[:1], labels[:1], training=True, source=source)
    np.testing.assert_array_equal(np.asarray(out), images[:1])


@pytest.mark.parametrize("threshold", [None, -1, "20"])
def test_a_threshold_that_is_not_a_class_size_is_refused(threshold):
    with pytest.raises(ValueError, match="threshold must be a class size >= 0"):
        GITAugment(Inverted(), COUNTS, threshold=threshold)
    GITAugment(Inverted(), COUNTS, threshold=np.int64(20))  # from a NumPy computation: fine


def test_inference_is_the_identity_and_the_layer_is_train_only():
    images, labels = _batch([1, 2, 1, 2])
    augment = GITAugment(Inverted(), COUNTS, threshold=20, fraction=1.0)
    np.testing.assert_array_equal(np.asarray(augment(images, labels)[0]), images)
    assert augment.train_only and not augment.translator.trainable


def test_ramp_rule_replaces_with_the_codes_probability():
    augment = GITAugment(Inverted(), COUNTS, threshold=20, fraction=0.5, rule="ramp", seed=3)
    # max((K − N)/(K − N_min), 0): class 0 never, class 1 (20−10)/(20−3), class 2 always.
    np.testing.assert_allclose(augment.probabilities(), [0.0, 10 / 17, 1.0], rtol=1e-6)
    labels = np.tile([0, 1, 2], 2000)  # 6000 rows, candidates = the last 3000
    images, labels = _batch(labels)
    replaced = _replaced(augment, images, labels)
    assert not replaced[:3000].any()
    tail = labels[3000:]
    assert not replaced[3000:][tail == 0].any() and replaced[3000:][tail == 2].all()
    share = replaced[3000:][tail == 1].mean()  # 1000 Bernoulli(0.588) draws: std 0.016
    assert abs(share - 10 / 17) < 0.06


def test_config_round_trip_keeps_the_rule_and_the_translator():
    augment = GITAugment(Inverted(), COUNTS, threshold=20, fraction=0.5, rule="ramp", seed=1)
    clone = GITAugment.from_config(augment.get_config())
    assert clone.get_config() == augment.get_config()
    assert isinstance(clone.translator, Inverted)
    with pytest.raises(ValueError, match="rule"):
        GITAugment(Inverted(), COUNTS, threshold=20, rule="soft")


def test_independent_rule_fills_the_last_slots_with_translations_of_the_second_batch():
    # The official code with weighted_gen off (every shipped config): the last
    # int(gen_frac * B) slots hold translations of an independent batch, with
    # its labels, whatever their class size.
    images, labels = _batch([0, 0, 1, 2, 0, 1, 2, 0])
    source_images, source_labels = _batch([0, 2, 1, 0, 0, 0, 0, 0], seed=1)
    augment = GITAugment(Inverted(), COUNTS, threshold=20, fraction=0.5, rule="independent")
    out, out_labels = augment(images, labels, training=True, source=(source_images, source_labels))
    np.testing.assert_allclose(np.asarray(out)[:4], images[:4])
    np.testing.assert_allclose(np.asarray(out)[4:], 1.0 - source_images[:4], atol=1e-6)
    np.testing.assert_array_equal(np.asarray(out_labels), [0, 0, 1, 2, 0, 2, 1, 0])
    with pytest.raises(ValueError, match="source"):
        augment(images, labels, training=True)
    # A second batch shorter than the 4 slots (a ragged last one) fills 3 of
    # them; the batch keeps its 8 rows (it lost one).
    out, out_labels = augment(images, labels, training=True, source=(source_images[:3], source_labels[:3]))
    np.testing.assert_allclose(np.asarray(out)[:5], images[:5])
    np.testing.assert_allclose(np.asarray(out)[5:], 1.0 - source_images[:3], atol=1e-6)
    np.testing.assert_array_equal(np.asarray(out_labels), [0, 0, 1, 2, 0, 0, 2, 1])
    # Labels of shape (B, 1) from one loader and (B,) from the other.
    _, column = augment(images, labels[:, None], training=True, source=(source_images, source_labels))
    np.testing.assert_array_equal(np.asarray(column)[:, 0], [0, 0, 1, 2, 0, 2, 1, 0])


def test_passes_the_layer_checks(tmp_path):
    # At inference GITAugment passes (images, labels) through; in training it
    # translates, which the tests above check row by row.
    images, labels = _batch([0, 1, 2, 1])
    augment = GITAugment(Inverted(), COUNTS, threshold=20, fraction=0.5, rule="threshold", seed=3)
    out, out_labels = check_layer(augment, (images, labels), ((4, 4, 4, 1), (4,)), tmp_path)
    np.testing.assert_array_equal(out, images)
    np.testing.assert_array_equal(out_labels, labels)


@keras.saving.register_keras_serializable(package="tests")
class Painter(Inverted):
    """A stand-in example-guided translator: an image's style is its mean
    pixel, and translating paints the whole image in the given style."""

    def styles_of(self, images):
        return keras.ops.mean(images, axis=(1, 2, 3))[:, None]

    def translate(self, images, styles):
        return keras.ops.zeros_like(images) + styles[:, :, None, None]


def test_encoded_styles_are_those_of_images_in_the_same_batch():
    images, labels = _batch([0, 1, 2, 0, 1, 2, 1, 2])
    augment = GITAugment(Painter(), COUNTS, threshold=20, fraction=0.5, seed=0, styles="encoded")
    batch_styles = images.mean(axis=(1, 2, 3))
    for step in (
        lambda x, y: augment(x, y, training=True)[0],
        tf.function(lambda x, y: augment(x, y, training=True)[0]),
    ):
        out = np.asarray(step(images, labels))
        replaced = (np.arange(8) >= 4) & (labels != 0)
        np.testing.assert_array_equal(out[~replaced], images[~replaced])
        for row in out[replaced]:
            # one flat image in the style (mean pixel) of one of the batch's images
            assert np.allclose(row, row.flat[0]) and np.isclose(batch_styles, row.flat[0]).any()
    clone = GITAugment.from_config(augment.get_config())
    assert clone.styles == "encoded"
    with pytest.raises(ValueError, match="styles_of"):
        GITAugment(Inverted(), COUNTS, threshold=20, styles="encoded")
    with pytest.raises(ValueError, match="styles must be one of"):
        GITAugment(Painter(), COUNTS, threshold=20, styles="sampled")


def test_a_style_scale_multiplies_the_translators_own_style_draws():
    from kerazoo.models import MUNITGenerator

    images = np.random.default_rng(0).uniform(size=(8, 8, 8, 1)).astype("float32")
    labels = np.array([0, 1, 2, 0, 1, 2, 1, 2], "int32")
    replaced = (np.arange(8) >= 4) & (labels != 0)  # threshold rule: rows 4, 5, 6, 7
    generator = MUNITGenerator((8, 8, 1), dim=4, n_downsample=1, n_res=1, mlp_dim=8, seed=0)
    state = generator.seed_generator.state
    start = np.asarray(state)

    def draws():
        state.assign(start)
        return keras.random.normal((int(replaced.sum()), generator.style_dim), seed=generator.seed_generator)

    augment = GITAugment(generator, COUNTS, threshold=20, seed=0, style_scale=0.3)
    state.assign(start)
    out = np.asarray(augment(images, labels, training=True)[0])
    expected = np.asarray(generator.translate(images[replaced], 0.3 * np.asarray(draws())))
    np.testing.assert_allclose(out[replaced], expected, atol=1e-6)
    np.testing.assert_array_equal(out[~replaced], images[~replaced])
    # At scale 1 the same draws are the generator's own call (GIT's code).
    styles = draws()
    state.assign(start)
    np.testing.assert_allclose(
        generator(images[replaced]), generator.translate(images[replaced], styles), atol=1e-6
    )
    assert GITAugment.from_config(augment.get_config()).style_scale == 0.3
    with pytest.raises(ValueError, match="style_scale != 1"):
        GITAugment(Inverted(), COUNTS, threshold=20, style_scale=0.5)
    with pytest.raises(ValueError, match=">= 0"):
        GITAugment(generator, COUNTS, threshold=20, style_scale=-1.0)
