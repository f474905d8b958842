import keras
import numpy as np
import tensorflow as tf

from kerazoo import backbones
from kerazoo.incremental import grow_head, snapshot
from kerazoo.layers import CosineLinear
from kerazoo.losses import adaptive_lambda, less_forget_loss, margin_ranking_loss
from kerazoo.models import LUCIRModel

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


def _incremental_model(backbone=None):
    backbone = backbone or backbones.get("convnet", last_relu=False)
    head = CosineLinear(2)
    base = LUCIRModel(backbone, head)
    base(X[:1])
    grown = grow_head(head, 2)
    model = LUCIRModel(backbone, grown, snapshot(backbone), num_old_classes=2)
    model(X[:1])
    return model


def test_loss_terms_match_the_loss_functions():
    model = _incremental_model()
    losses, logits = model.compute_losses(X, Y, training=False)
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


def test_old_class_weights_and_old_model_stay_frozen():
    model = _incremental_model()
    old_kernel = np.asarray(model.head.old_kernel).copy()
    old_backbone = [w.copy() for w in model.old_backbone.get_weights()]
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    model.fit(X, Y, batch_size=8, epochs=2, verbose=0)
    np.testing.assert_array_equal(model.head.old_kernel, old_kernel)
    for a, b in zip(model.old_backbone.get_weights(), old_backbone):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(model.head.new_kernel, 0)


def _train(strategy, weights):
    with strategy.scope():
        model = _incremental_model(_bn_free_backbone())
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    ds = tf.data.Dataset.from_tensor_slices((X, Y)).batch(16, drop_remainder=True)
    model.fit(ds, epochs=2, verbose=0, shuffle=False)
    return model.get_weights()


def test_two_replicas_match_one_device():
    keras.utils.set_random_seed(1)
    weights = _incremental_model(_bn_free_backbone()).get_weights()
    one = _train(tf.distribute.OneDeviceStrategy("/cpu:0"), weights)
    # ReductionToOneDevice: no collective ops, whose instance keys can clash
    # with those of strategies created by earlier tests in this process.
    two = _train(
        tf.distribute.MirroredStrategy(
            ["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice()
        ),
        weights,
    )
    assert max(np.abs(a - w).max() for a, w in zip(one, weights)) > 1e-3
    for a, b in zip(one, two):
        np.testing.assert_allclose(a, b, atol=2e-5)


def test_keras_round_trip(tmp_path):
    model = _incremental_model()
    expected = model(X)
    model.save(tmp_path / "lucir.keras")
    restored = keras.saving.load_model(tmp_path / "lucir.keras")
    assert restored.num_old_classes == 2 and restored.old_backbone is not None
    np.testing.assert_allclose(restored(X), expected, atol=1e-6)
