import keras
import numpy as np
import pytest

from helpers.initializers import assert_normal
from kerazoo import backbones
from kerazoo.layers import ZeroPaddedShortcut


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


def test_ldam_resnet32_is_the_long_tail_codes_network():
    model = backbones.get("ldam_resnet32")
    assert model.output_shape == (None, 64)
    # LDAM-DRW's resnet32: 464,154 parameters with its 64 x 10 + 10 head.
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 464_154 - 650
    shortcuts = [layer for layer in model.layers if isinstance(layer, ZeroPaddedShortcut)]
    assert [(s.name, s.filters) for s in shortcuts] == [
        ("stage2_block1_down", 32),
        ("stage3_block1_down", 64),
    ]
    assert not [layer for layer in model.layers if getattr(layer, "kernel_size", None) == (1, 1)]


@pytest.mark.parametrize("name, fan", [("ldam_resnet32", "fan_in"), ("resnet32", "fan_out")])
def test_resnet32_convolutions_are_drawn_with_the_codes_kaiming_fan(name, fan):
    keras.utils.set_random_seed(0)
    kernel = np.asarray(backbones.get(name).get_layer("stage3_block2_1_conv").kernel)  # 3 x 3 x 64 x 64
    assert_normal(kernel, np.sqrt(2 / (3 * 3 * 64)))  # fan_in = fan_out here
    kernel = np.asarray(backbones.get(name).get_layer("stage3_block1_1_conv").kernel)  # 3 x 3 x 32 x 64
    assert_normal(kernel, np.sqrt(2 / (3 * 3 * (32 if fan == "fan_in" else 64))))


def _strided_response(model, block, shortcut_of):
    """Where an impulse at input pixel (4, 6) lands in a stride-2 block's
    first convolution (an all-ones kernel) and in its shortcut."""
    x = np.zeros((1, 16, 16, model.get_layer(f"{block}_1_conv").kernel.shape[2]), "float32")
    x[0, 4, 6, :] = 1.0
    conv = model.get_layer(f"{block}_1_conv")
    conv.kernel.assign(np.ones(conv.kernel.shape, "float32"))
    y = np.asarray(conv(model.get_layer(f"{block}_1_pad")(x)))
    return set(zip(*np.nonzero(y[0, ..., 0]))), set(zip(*np.nonzero(np.asarray(shortcut_of(x))[0].any(-1))))


@pytest.mark.parametrize("name", ["ldam_resnet32", "resnet32"])
def test_strided_convolutions_pad_as_pytorch_and_stay_centred_on_the_shortcut(name):
    model = backbones.get(name)
    shortcut = model.get_layer("stage2_block1_down" if name == "ldam_resnet32" else "stage2_block1_down_conv")
    conv_hits, shortcut_hits = _strided_response(model, "stage2_block1", shortcut)
    # PyTorch's padding=1: output i sees input rows 2i-1..2i+1, centred on 2i,
    # the row the shortcut keeps; "same" (rows 2i..2i+2) would give (1, 2) to (2, 3).
    assert conv_hits == {(2, 3)}
    assert shortcut_hits == {(2, 3)}


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
