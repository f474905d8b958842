import keras
import numpy as np
import pytest

from helpers.initializers import assert_normal, assert_uniform
from kerazoo import backbones, initializers

FEATURES, CLASSES = 64, 100


def test_dense_is_pytorchs_linear():
    keras.utils.set_random_seed(0)
    layer = initializers.dense(CLASSES, FEATURES)
    layer.build((None, FEATURES))
    assert_uniform(layer.kernel, 1 / np.sqrt(FEATURES))
    assert_uniform(np.tile(np.asarray(layer.bias), 40), 1 / np.sqrt(FEATURES))
    assert len(np.unique(np.asarray(layer.bias))) == CLASSES


def test_dense_takes_a_codes_own_kernel_and_bias_rules():
    layer = initializers.dense(
        CLASSES, FEATURES, kernel_initializer=initializers.kaiming_normal(), bias_initializer="zeros"
    )
    layer.build((None, FEATURES))
    assert_normal(layer.kernel, np.sqrt(2 / FEATURES))
    np.testing.assert_array_equal(layer.bias, 0)


@pytest.mark.parametrize("mode, fan", [("fan_in", 3 * 3 * 16), ("fan_out", 3 * 3 * 64)])
def test_kaiming_normal_is_untruncated_with_pytorchs_fans(mode, fan):
    values = initializers.kaiming_normal(mode)((3, 3, 16, 64))
    assert_normal(values, np.sqrt(2 / fan))


def test_each_initializer_draws_its_own_values():
    first, second = initializers.dense(8, 8), initializers.dense(8, 8)
    first.build((None, 8))
    second.build((None, 8))
    assert not np.array_equal(first.kernel, second.kernel)


def _built(model):
    model(np.zeros((1, 8, 8, 1), "float32"))
    return model


def _models():
    from kerazoo.layers import BatchFormer
    from kerazoo.models import (
        AdCo,
        BatchFormerClassifier,
        Classifier,
        DomainAdapter,
        GITClassifier,
        SemiSupervised,
    )

    def backbone():
        return backbones.get("convnet", width=FEATURES)

    uniform = (assert_uniform, 1 / np.sqrt(FEATURES))
    kaiming = (assert_normal, np.sqrt(2 / FEATURES))
    zeros = (np.testing.assert_array_equal, 0)
    glorot = np.sqrt(2 / (FEATURES + CLASSES))
    return {
        # kerazoo's own ERM baseline: Keras' Dense.
        "Classifier": (
            lambda: Classifier(backbone(), CLASSES),
            (assert_uniform, np.sqrt(6 / (FEATURES + CLASSES))),
            zeros,
        ),
        # BNM's DA code: kaiming_normal_, bias 0.
        "DomainAdapter": (lambda: DomainAdapter(backbone(), CLASSES), kaiming, zeros),
        # BNM's SSL code (MixMatch's libml): glorot_normal_initializer, bias 0.
        "SemiSupervised": (
            lambda: SemiSupervised(backbone(), CLASSES),
            (lambda v, s: assert_normal(v, s, truncated=True), glorot),
            zeros,
        ),
        # GIT's LDAM ResNet: kaiming_normal_ on nn.Linear's weight only.
        "GITClassifier": (lambda: GITClassifier(backbone(), CLASSES), kaiming, uniform),
        # The Balanced Softmax code BatchFormer builds on: nn.Linear.
        "BatchFormerClassifier": (
            lambda: BatchFormerClassifier(backbone(), CLASSES, BatchFormer(num_heads=2)),
            uniform,
            uniform,
        ),
        # AdCo's MLP head (hidden = features) on torchvision's ResNet: nn.Linear.
        "AdCo": (lambda: AdCo(backbone(), dim=CLASSES, bank_size=16), uniform, uniform),
    }


@pytest.mark.parametrize("name", sorted(_models()))
def test_each_models_default_head_is_initialised_as_its_official_code(name):
    build, (check_kernel, kernel_arg), (check_bias, bias_arg) = _models()[name]
    keras.utils.set_random_seed(0)
    model = _built(build())
    layers = model.head.layers if name == "AdCo" else [model.head]
    for layer in layers:
        check_kernel(layer.kernel, kernel_arg)
        # Each bias entry is its own draw; 100 are too few for the std test.
        bias = np.asarray(layer.bias)
        if check_bias is assert_uniform:
            assert np.abs(bias).max() <= bias_arg and len(np.unique(bias)) == len(bias)
        else:
            check_bias(bias, bias_arg)


def test_a_linear_lucir_baseline_grows_as_lucirs_icarl_code():
    import tensorflow as tf

    from kerazoo.data import EpochCounter
    from kerazoo.incremental import METHODS, ClassIncremental, Settings

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(32, 8, 8, 1)).astype("float32")
    y = np.repeat(np.arange(4), 8).astype("int32")
    heads = []

    def fit(model, dataset, stage, epochs):  # records the heads as built, untrained
        heads.append([np.array(w) for w in model.head.get_weights()])

    ClassIncremental(
        METHODS["icarl"],
        (x, y, x, y),
        [2, 2],
        Settings(exemplars_per_class=2, epochs=1, batch_size=8),
        seed=0,
        build_backbone=lambda: backbones.get("convnet", width=FEATURES),
        make_optimizer=lambda steps: keras.optimizers.SGD(0.05),
        fit=fit,
        strategy=tf.distribute.get_strategy(),
        epoch_counter=EpochCounter(),
    ).run("t")
    (kernel0, bias0), (kernel1, bias1) = heads
    bound = 1 / np.sqrt(FEATURES)
    for weights in (kernel0, bias0, kernel1, bias1):
        assert np.abs(weights).max() <= bound and np.count_nonzero(weights) == weights.size
    assert np.abs(kernel1).max() > 0.9 * bound
    np.testing.assert_array_equal(kernel1[:, :2], kernel0)
