"""Feature extractors, by name: `resnet32` and `ldam_resnet32` (CIFAR),
`resnet18`, `resnet50`, `convnet` (digits), `convnet5` (28x28 characters).

Each builder returns a functional `keras.Model` from images to a pooled
feature vector (no classifier). Shared switches:

- `last_relu`: LUCIR removes the ReLU after the last block so features can
  be negative (the official LUCIR code's CIFAR ResNet).
- `synchronized`: BatchNorm statistics over the global batch under a
  multi-replica strategy (otherwise each replica normalises by its own).
- The ResNets pad their strided convolutions and max-pool as PyTorch does,
  equally on both sides (TensorFlow's "same" pads only the bottom and right):
  the official codes are PyTorch, and a strided 3x3 convolution then stays
  centred on the pixels its block's shortcut keeps.
- BatchNorm momentum 0.9 and epsilon 1e-5 (PyTorch's defaults): with Keras'
  0.99 the running statistics do not settle in the few hundred steps of the
  digits protocols and evaluation accuracy collapses. It trains through
  TensorFlow's fused kernel (`kerazoo.layers.FusedBatchNormalization`, Keras'
  arithmetic; the ResNet-32 step 1.26x as fast on a 2-core CPU).

Example:

```python
import kerazoo

features = kerazoo.backbones.get("resnet32", input_shape=(32, 32, 3), last_relu=False)
print(features.output_shape)  # (None, 64)
```
"""

import functools

import keras
from keras import layers

from kerazoo.initializers import kaiming_normal
from kerazoo.layers.fused_batch_normalization import FusedBatchNormalization
from kerazoo.layers.zero_padded_shortcut import ZeroPaddedShortcut

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

_REGISTRY = {}


def register(builder):
    """Add `builder` to the registry under its function name (a decorator).

    Args:
        builder: a function (input_shape=..., last_relu=..., synchronized=..., ...) -> `keras.Model`.

    Returns:
        `builder`, unchanged.

    Example:

    ```python
    import keras
    import kerazoo

    @kerazoo.backbones.register
    def tiny(input_shape=(8, 8, 1), last_relu=True, synchronized=False):
        inputs = keras.Input(input_shape)
        return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))

    assert "tiny" in kerazoo.backbones.available()
    ```
    """
    _REGISTRY[builder.__name__] = builder
    return builder


def available():
    """Names of the registered backbones.

    Example:

    ```python
    import kerazoo

    print(kerazoo.backbones.available())  # ['convnet', 'resnet18', 'resnet32', 'resnet50', ...]
    ```
    """
    return sorted(_REGISTRY)


def get(name, **kwargs):
    """Build a registered backbone by name.

    Args:
        name: a name from `available()`.
        **kwargs: the builder's arguments (`input_shape`, `last_relu`, ...).

    Returns:
        A `keras.Model` from images to pooled features.

    Example:

    ```python
    import kerazoo

    backbone = kerazoo.backbones.get("convnet", input_shape=(8, 8, 1), width=16)
    print(backbone.output_shape)  # (None, 16)
    ```
    """
    if name not in _REGISTRY:
        raise ValueError(f"Unknown backbone '{name}'; available: {available()}.")
    return _REGISTRY[name](**kwargs)


def _conv_bn(x, filters, kernel, stride, synchronized, name, relu=True, fan="fan_out", torch_padding=False):
    padding = "same"
    if torch_padding and stride > 1 and kernel > 1:
        # PyTorch's padding=(k-1)//2 on both sides. TensorFlow's "same" pads a
        # strided convolution at the bottom and right only, centring it one
        # pixel off the shortcut's x[::2] and PyTorch's own centres.
        x = layers.ZeroPadding2D((kernel - 1) // 2, name=f"{name}_pad")(x)
        padding = "valid"
    x = layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding=padding,
        use_bias=False,
        # PyTorch's kaiming_normal_: mode="fan_out" in the LUCIR and torchvision
        # ResNets, its default "fan_in" in LDAM-DRW's.
        kernel_initializer=kaiming_normal(fan),
        name=f"{name}_conv",
    )(x)
    x = FusedBatchNormalization(
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        synchronized=synchronized,
        name=f"{name}_bn",
    )(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


# The ResNets' convolutions: PyTorch's padding (the official codes are PyTorch).
_torch_conv_bn = functools.partial(_conv_bn, torch_padding=True)


def _basic_block(x, filters, stride, synchronized, name, relu=True, conv=_torch_conv_bn, zero_pad=False):
    shortcut = x
    y = conv(x, filters, 3, stride, synchronized, f"{name}_1")
    y = conv(y, filters, 3, 1, synchronized, f"{name}_2", relu=False)
    if stride != 1 or x.shape[-1] != filters:
        if zero_pad:
            shortcut = ZeroPaddedShortcut(filters, stride, name=f"{name}_down")(x)
        else:
            shortcut = conv(x, filters, 1, stride, synchronized, f"{name}_down", relu=False)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y) if relu else y


def _bottleneck_block(x, filters, stride, synchronized, name, relu=True):
    # torchvision's ResNet-50 ("v1.5"): the stride sits on the 3x3 conv; the
    # block widens to 4x filters.
    shortcut = x
    y = _torch_conv_bn(x, filters, 1, 1, synchronized, f"{name}_1")
    y = _torch_conv_bn(y, filters, 3, stride, synchronized, f"{name}_2")
    y = _torch_conv_bn(y, 4 * filters, 1, 1, synchronized, f"{name}_3", relu=False)
    if stride != 1 or x.shape[-1] != 4 * filters:
        shortcut = _torch_conv_bn(x, 4 * filters, 1, stride, synchronized, f"{name}_down", relu=False)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y) if relu else y


def _resnet(inputs, x, stages, blocks, last_relu, synchronized, name, block=_basic_block):
    for s, filters in enumerate(stages):
        for b in range(blocks[s]):
            stride = 2 if (b == 0 and s > 0) else 1
            last = s == len(stages) - 1 and b == blocks[s] - 1
            x = block(
                x,
                filters,
                stride,
                synchronized,
                f"stage{s + 1}_block{b + 1}",
                relu=last_relu or not last,
            )
    features = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, features, name=name)


@register
def resnet32(input_shape=(32, 32, 3), last_relu=True, synchronized=False):
    """CIFAR ResNet-32: 3 stages x 5 basic blocks, 16/32/64 channels, 64-d
    features, 1x1-conv shortcuts where the shape changes (as LUCIR's code).

    Args:
        input_shape: (H, W, C) of the images.
        last_relu: whether the last block ends with a ReLU (LUCIR's backbones drop it).
        synchronized: synchronised BatchNorm across replicas.

    Example:

    ```python
    import kerazoo

    print(kerazoo.backbones.resnet32(input_shape=(32, 32, 3)).output_shape)  # (None, 64)
    ```

    References:
        - [He et al., Deep Residual Learning for Image Recognition, CVPR
          2016](https://arxiv.org/abs/1512.03385)
        - [Hou et al., Learning a Unified Classifier Incrementally via Rebalancing, CVPR
          2019](https://openaccess.thecvf.com/content_CVPR_2019/html/Hou_Learning_a_Unified_Classifier_Incrementally_via_Rebalancing_CVPR_2019_paper.html)
    """
    inputs = keras.Input(input_shape, name="images")
    x = _torch_conv_bn(inputs, 16, 3, 1, synchronized, "stem")
    return _resnet(inputs, x, (16, 32, 64), (5, 5, 5), last_relu, synchronized, "resnet32")


@register
def ldam_resnet32(input_shape=(32, 32, 3), last_relu=True, synchronized=False):
    """CIFAR ResNet-32 of the long-tail codes (LDAM-DRW's `resnet_cifar.py`,
    copied by GIT's `core/models/cifar_resnet.py` and by the BatchFormer
    long-tail code's `ResNet32Feature.py`): `resnet32`'s layout, but
    parameter-free shortcuts where the shape changes (every second pixel,
    channels zero-padded: He et al.'s option A, `ZeroPaddedShortcut`) and
    convolutions drawn by PyTorch's default `kaiming_normal_` (fan_in);
    463,504 trainable parameters, the code's count without its 650-weight
    head (`resnet32`: 466,256).

    Args:
        input_shape: (H, W, C) of the images.
        last_relu: whether the last block ends with a ReLU (the code's does).
        synchronized: synchronised BatchNorm across replicas.

    Example:

    ```python
    import kerazoo

    backbone = kerazoo.backbones.ldam_resnet32(input_shape=(32, 32, 3))
    print(backbone.output_shape, backbone.count_params())  # (None, 64) 465776 (with BatchNorm's statistics)
    ```

    References:
        - [He et al., Deep Residual Learning for Image Recognition, CVPR
          2016](https://arxiv.org/abs/1512.03385)
        - [Cao et al., Learning Imbalanced Datasets with Label-Distribution-Aware
          Margin Loss, NeurIPS 2019](https://arxiv.org/abs/1906.07413)
    """
    conv = functools.partial(_torch_conv_bn, fan="fan_in")
    block = functools.partial(_basic_block, conv=conv, zero_pad=True)
    inputs = keras.Input(input_shape, name="images")
    x = conv(inputs, 16, 3, 1, synchronized, "stem")
    return _resnet(inputs, x, (16, 32, 64), (5, 5, 5), last_relu, synchronized, "ldam_resnet32", block=block)


def _imagenet_stem(inputs, synchronized):
    x = _torch_conv_bn(inputs, 64, 7, 2, synchronized, "stem")
    # PyTorch's MaxPool2d(3, 2, padding=1): after the ReLU, zeros pad as −∞ would.
    x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
    return layers.MaxPooling2D(3, 2, name="stem_pool")(x)


@register
def resnet18(input_shape=(224, 224, 3), last_relu=True, synchronized=False):
    """ImageNet ResNet-18: 7x7/2 stem and max-pool, 4 stages x 2 basic blocks,
    64..512 channels, 512-d features.

    Args:
        input_shape: (H, W, C) of the images.
        last_relu: whether the last block ends with a ReLU (LUCIR's backbones drop it).
        synchronized: synchronised BatchNorm across replicas.

    Example:

    ```python
    import kerazoo

    print(kerazoo.backbones.resnet18(input_shape=(32, 32, 3)).output_shape)  # (None, 512)
    ```

    References:
        - [He et al., Deep Residual Learning for Image Recognition, CVPR
          2016](https://arxiv.org/abs/1512.03385)
    """
    inputs = keras.Input(input_shape, name="images")
    x = _imagenet_stem(inputs, synchronized)
    return _resnet(inputs, x, (64, 128, 256, 512), (2, 2, 2, 2), last_relu, synchronized, "resnet18")


@register
def resnet50(input_shape=(224, 224, 3), last_relu=True, synchronized=False):
    """ImageNet ResNet-50: 7x7/2 stem and max-pool, 4 stages of 3/4/6/3
    bottleneck blocks, 2048-d features (23.5 M parameters, torchvision's).

    Args:
        input_shape: (H, W, C) of the images.
        last_relu: whether the last block ends with a ReLU (LUCIR's backbones drop it).
        synchronized: synchronised BatchNorm across replicas.

    Example:

    ```python
    import kerazoo

    print(kerazoo.backbones.resnet50(input_shape=(32, 32, 3)).output_shape)  # (None, 2048)
    ```

    References:
        - [He et al., Deep Residual Learning for Image Recognition, CVPR
          2016](https://arxiv.org/abs/1512.03385)
    """
    inputs = keras.Input(input_shape, name="images")
    x = _imagenet_stem(inputs, synchronized)
    return _resnet(
        inputs,
        x,
        (64, 128, 256, 512),
        (3, 4, 6, 3),
        last_relu,
        synchronized,
        "resnet50",
        block=_bottleneck_block,
    )


@register
def convnet(input_shape=(8, 8, 1), last_relu=True, synchronized=False, width=64):
    """Small convnet for digits: conv 32, conv `width` stride 2, conv `width`,
    each with BatchNorm, then global average pooling (`width`-d features).

    Args:
        input_shape: (H, W, C) of the images.
        last_relu: whether the last block ends with a ReLU (LUCIR's backbones drop it).
        synchronized: synchronised BatchNorm across replicas.
        width: channels of the last two convolutions, and of the features.

    Example:

    ```python
    import numpy as np
    import kerazoo

    backbone = kerazoo.backbones.convnet(input_shape=(8, 8, 1), width=16)
    print(backbone(np.zeros((2, 8, 8, 1), "float32")).shape)  # (2, 16)
    ```
    """
    inputs = keras.Input(input_shape, name="images")
    x = _conv_bn(inputs, 32, 3, 1, synchronized, "conv1")
    x = _conv_bn(x, width, 3, 2, synchronized, "conv2")
    x = _conv_bn(x, width, 3, 1, synchronized, "conv3", relu=last_relu)
    features = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, features, name="convnet")


@register
def convnet5(input_shape=(28, 28, 1), last_relu=True, synchronized=False):
    """Five-convolution net for 28x28 characters (the Kuzushiji-49 and
    `glyphs` scale): conv 32, conv 32, max-pool, conv 64, conv 64, max-pool,
    conv 128, each with BatchNorm, then global average pooling (128-d
    features). On balanced `glyphs` it reaches 99.7 % test accuracy
    (`benchmarks/glyphs_sanity.py`).

    Args:
        input_shape: (H, W, C) of the images.
        last_relu: whether the last block ends with a ReLU (LUCIR's backbones drop it).
        synchronized: synchronised BatchNorm across replicas.

    Example:

    ```python
    import numpy as np
    import kerazoo

    backbone = kerazoo.backbones.convnet5()
    print(backbone(np.zeros((2, 28, 28, 1), "float32")).shape)  # (2, 128)
    ```
    """
    inputs = keras.Input(input_shape, name="images")
    x = _conv_bn(inputs, 32, 3, 1, synchronized, "conv1")
    x = _conv_bn(x, 32, 3, 1, synchronized, "conv2")
    x = layers.MaxPooling2D(name="pool1")(x)
    x = _conv_bn(x, 64, 3, 1, synchronized, "conv3")
    x = _conv_bn(x, 64, 3, 1, synchronized, "conv4")
    x = layers.MaxPooling2D(name="pool2")(x)
    x = _conv_bn(x, 128, 3, 1, synchronized, "conv5", relu=last_relu)
    features = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, features, name="convnet5")
