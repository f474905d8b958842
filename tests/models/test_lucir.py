import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.replicas import assert_replicas_agree
from kerazoo import backbones
from kerazoo.incremental import grow_head, snapshot, snapshot_head
from kerazoo.layers import CosineLinear
from kerazoo.losses import adaptive_lambda, distillation_loss, less_forget_loss, margin_ranking_loss
from kerazoo.models import Classifier, LUCIRClassifier, LUCIRLoss

RNG = np.random.default_rng(0)
X = RNG.uniform(size=(32, 8, 8, 1)).astype("float32")
Y = RNG.integers(0, 4, 32).astype("int32")


def _bn_free_backbone():
    # Per-replica BatchNorm statistics would differ from one device's, and
    # synchronized BatchNorm's collectives can be ordered differently from the
    # margin-ranking count's on each replica; a BN-free backbone isolates the
    # loss scaling under test.
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(16, 3, activation="relu")(inputs)
    x = keras.layers.Conv2D(16, 3)(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def _incremental_model(backbone=None, head=None, loss=None):
    backbone = backbone or backbones.get("convnet", last_relu=False)
    head = head or CosineLinear(2)
    base = LUCIRClassifier(backbone, head)
    base(X[:1])
    grown = grow_head(head, 2)
    model = LUCIRClassifier(backbone, grown, snapshot(backbone), snapshot_head(head), 2, loss)
    model(X[:1])
    return model


def test_loss_terms_match_the_loss_functions():
    model = _incremental_model()
    losses, logits = model.compute_losses((X, Y), training=False)
    features = model.backbone(X, training=False)
    old = model.old_backbone(X, training=False)
    cosines = model.head(features, return_cosine=True)
    np.testing.assert_allclose(
        losses["less_forget"], adaptive_lambda(5.0, 2, 2) * less_forget_loss(features, old), rtol=1e-6
    )
    np.testing.assert_allclose(losses["margin_ranking"], margin_ranking_loss(cosines, Y, 2), rtol=1e-6)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(Y, logits)
    np.testing.assert_allclose(losses["ce"], ce, rtol=1e-6)
    # A fresh snapshot has the same features: less-forget starts at 0.
    assert float(losses["less_forget"]) < 1e-5
    assert float(losses["distillation"]) == 0.0  # off for LUCIR


def test_icarl_distillation_term_uses_the_old_head():
    keras.utils.set_random_seed(2)  # the initial weights: without a seed the term was below 1e-3 at times
    loss = LUCIRLoss(less_forget=False, margin_ranking=False, distillation_weight=0.25)
    model = _incremental_model(head=keras.layers.Dense(2), loss=loss)
    model.head.kernel.assign(10 * np.random.default_rng(2).normal(size=model.head.kernel.shape))  # moved on
    losses, logits = model.compute_losses((X, Y), training=False)
    old_logits = model.old_head(model.old_backbone(X, training=False))
    expected = 0.25 * distillation_loss(logits, old_logits, 2.0)
    assert float(expected) > 1e-3
    np.testing.assert_allclose(losses["distillation"], expected, rtol=1e-6)
    assert float(losses["less_forget"]) == float(losses["margin_ranking"]) == 0.0


def test_distillation_loss_against_numpy():
    rng = np.random.default_rng(1)
    new, old = rng.normal(size=(6, 5)), rng.normal(size=(6, 3))
    t = 2.0

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    q, p = softmax(old / t), softmax(new[:, :3] / t)
    # PyTorch's KLDivLoss averages over B*C_old elements; the LUCIR code
    # multiplies by C_old: a per-sample sum, averaged over the batch.
    expected = t * t * np.mean(np.sum(q * (np.log(q) - np.log(p)), axis=1))
    np.testing.assert_allclose(distillation_loss(new, old, t), expected, rtol=1e-5)


def test_old_class_weights_and_old_model_stay_frozen():
    model = _incremental_model()
    old_kernel = np.asarray(model.head.old_kernel).copy()
    new_kernel = np.asarray(model.head.new_kernel).copy()
    old_backbone = [w.copy() for w in model.old_backbone.get_weights()]
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    model.fit(X, Y, batch_size=8, epochs=2, verbose=0)
    np.testing.assert_array_equal(model.head.old_kernel, old_kernel)
    for a, b in zip(model.old_backbone.get_weights(), old_backbone):
        np.testing.assert_array_equal(a, b)
    assert np.abs(np.asarray(model.head.new_kernel) - new_kernel).max() > 1e-4


def test_two_replicas_match_one_device():
    keras.utils.set_random_seed(1)
    weights = _incremental_model(_bn_free_backbone()).get_weights()

    def build():
        model = _incremental_model(_bn_free_backbone())
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
        return model

    dataset = tf.data.Dataset.from_tensor_slices((X, Y)).batch(16, drop_remainder=True)
    assert_replicas_agree(build, dataset, epochs=2, atol=2e-5)


def test_keras_round_trip(tmp_path):
    model = _incremental_model()
    expected = model(X)
    model.save(tmp_path / "lucir.keras")
    restored = keras.saving.load_model(tmp_path / "lucir.keras")
    assert restored.num_old_classes == 2
    for part in ("old_backbone", "old_head"):
        for saved, loaded in zip(getattr(model, part).get_weights(), getattr(restored, part).get_weights()):
            np.testing.assert_array_equal(loaded, saved)
    assert restored.loss_settings == model.loss_settings
    np.testing.assert_allclose(restored(X), expected, atol=1e-6)


def test_a_model_trained_by_fit_alone_saves_and_loads_its_optimizer_state(tmp_path):
    # The step calls the backbone and head, not the model: trained by `fit`
    # without a call first, it was saved unbuilt and its optimizer's state was
    # skipped on loading.
    model = LUCIRClassifier(backbones.get("convnet", last_relu=False, width=8), CosineLinear(4))
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "lucir.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "Skipping variable loading for optimizer"
        restored = keras.saving.load_model(tmp_path / "lucir.keras")
    for saved, loaded in zip(model.optimizer.variables, restored.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(loaded))


def test_parts_that_do_not_fit_the_loss_are_refused_when_built():

    backbone = backbones.get("convnet", last_relu=False, width=8)
    old = snapshot(backbone)
    with pytest.raises(ValueError, match="num_old_classes=2 needs the previous phase's frozen old_backbone"):
        LUCIRClassifier(backbone, CosineLinear(4), num_old_classes=2)
    with pytest.raises(
        ValueError, match=r"distillation_weight=0.25\) distils the old head's logits: pass old_head"
    ):
        LUCIRClassifier(backbone, CosineLinear(4), old, None, 2, LUCIRLoss(distillation_weight=0.25))
    with pytest.raises(ValueError, match="needs a CosineLinear head, not a Dense"):
        LUCIRClassifier(backbone, keras.layers.Dense(4), old, None, 2)
    # iCaRL's Dense head with distillation and no margin ranking is fine.
    LUCIRClassifier(
        backbone,
        keras.layers.Dense(4),
        old,
        keras.layers.Dense(2),
        2,
        LUCIRLoss(less_forget=False, margin_ranking=False, distillation_weight=0.25),
    )


def test_inference_model_is_the_backbone_and_head_only():
    model = _incremental_model()
    shipped = model.inference_model()
    assert isinstance(shipped, Classifier) and shipped.head is model.head
    np.testing.assert_allclose(shipped(X), model(X), atol=1e-6)


def test_a_label_outside_the_head_is_named():
    model = LUCIRClassifier(backbones.get("convnet", last_relu=False, width=8), CosineLinear(4))
    model.compile(optimizer="sgd")
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"labels must be class ids in \[0, 4\)"):
        model.fit(X[:4], np.array([0, 1, 7, 2]), verbose=0)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("k", 0, "k .* whole number >= 1"),
        ("k", 2.5, "k .* whole number"),
        ("margin", -1.0, "margin must be >= 0"),
        ("distillation_weight", -0.25, "distillation_weight must be >= 0"),
        ("temperature", 0.0, "temperature must be > 0"),
    ],
)
def test_bad_loss_settings_are_refused_when_made_not_at_the_first_step(field, value, message):
    with pytest.raises(ValueError, match=message):
        LUCIRLoss(**{field: value})
