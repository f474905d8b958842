import keras
import numpy as np
import pytest

from kerazoo import backbones


def _batch_norms(model):
    return [layer for layer in model.layers if layer.__class__.__name__ == "BatchNormalization"]


def test_registry():
    assert {"resnet32", "resnet18", "convnet"} <= set(backbones.available())
    with pytest.raises(ValueError, match="available"):
        backbones.get("resnet1000")


def test_resnet32_has_the_cifar_size():
    model = backbones.get("resnet32")
    assert model.output_shape == (None, 64)
    assert 0.45e6 < model.count_params() < 0.48e6
    convs = [
        layer
        for layer in model.layers
        if layer.__class__.__name__ == "Conv2D" and layer.kernel_size == (3, 3)
    ]
    assert len(convs) == 1 + 3 * 5 * 2


def test_resnet18_shape():
    model = backbones.get("resnet18", input_shape=(64, 64, 3))
    assert model.output_shape == (None, 512)
    assert 11.0e6 < model.count_params() < 11.3e6


def test_resnet50_has_torchvisions_size():
    model = backbones.get("resnet50", input_shape=(64, 64, 3))
    assert model.output_shape == (None, 2048)
    # torchvision resnet50 without its fc: 25,557,032 - (2048 * 1000 + 1000); BatchNorm's
    # running mean and variance (53,120 non-trainable) are not parameters there.
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 23_508_032
    bottlenecks = [layer for layer in model.layers if layer.name.endswith("_3_conv")]
    assert len(bottlenecks) == 3 + 4 + 6 + 3


@pytest.mark.parametrize("name,shape", [("convnet", (8, 8, 1)), ("resnet32", (32, 32, 3))])
def test_last_relu_switch(name, shape):
    x = np.random.default_rng(0).uniform(size=(16, *shape)).astype("float32")
    for last_relu in (True, False):
        model = backbones.get(name, input_shape=shape, last_relu=last_relu)
        pooled_input = model.get_layer("pool").input
        before_pool = keras.Model(model.input, pooled_input)(x, training=True)
        if last_relu:
            assert np.asarray(before_pool).min() >= 0.0
        else:
            assert np.asarray(before_pool).min() < 0.0


def test_batchnorm_momentum_and_synchronized_switch():
    plain = backbones.get("convnet")
    synced = backbones.get("convnet", synchronized=True)
    assert all(bn.momentum == 0.9 and bn.epsilon == 1e-5 for bn in _batch_norms(plain))
    assert not any(bn.synchronized for bn in _batch_norms(plain))
    assert all(bn.synchronized for bn in _batch_norms(synced))
