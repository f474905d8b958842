"""ZeroPaddedShortcut: the parameter-free shortcut of the CIFAR ResNets (He et al.'s option A)."""

import keras
from keras import ops

from kerazoo._checks import is_whole


@keras.saving.register_keras_serializable(package="kerazoo")
class ZeroPaddedShortcut(keras.layers.Layer):
    """The identity shortcut where a residual block changes shape, without
    weights: every `strides`-th pixel (from the first), and the channels
    zero-padded equally on both sides to `filters` (He et al.'s option A, as
    the ResNet-32 of the LDAM-DRW code, which GIT's and the BatchFormer
    long-tail code copy: `F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4,
    planes // 4))`).

    Args:
        filters: the output channels (the input's plus an even number).
        strides: the spatial subsampling step.
        **kwargs: those of `keras.layers.Layer`.

    Example:

    ```python
    import numpy as np
    from kerazoo.layers import ZeroPaddedShortcut

    x = np.ones((1, 4, 4, 16), "float32")
    y = ZeroPaddedShortcut(32)(x)
    print(y.shape, float(y[0, 0, 0, :8].numpy().sum()), float(y[0, 0, 0, 8:24].numpy().sum()))
    # (1, 2, 2, 32) 0.0 16.0
    ```

    References:
        - [He et al., Deep Residual Learning for Image Recognition, CVPR
          2016](https://arxiv.org/abs/1512.03385), section 3.3 (option A)
    """

    def __init__(self, filters, strides=2, **kwargs):
        super().__init__(**kwargs)
        if not (is_whole(filters, 1) and is_whole(strides, 1)):
            # strides=-1 flipped the input instead of subsampling it.
            raise ValueError(
                f"ZeroPaddedShortcut: filters and strides must be whole numbers >= 1, got {filters!r}, {strides!r}."
            )
        self.filters = int(filters)
        self.strides = int(strides)

    def build(self, input_shape):
        extra = self.filters - input_shape[-1]
        if extra < 0 or extra % 2:
            raise ValueError(
                f"ZeroPaddedShortcut({self.filters}) pads channels equally on both sides: "
                f"it needs filters ≥ the input's {input_shape[-1]} channels and an even difference."
            )

    def call(self, inputs):
        x = inputs[:, :: self.strides, :: self.strides, :]
        side = (self.filters - x.shape[-1]) // 2
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [side, side]])

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        step = self.strides
        return (
            batch,
            None if height is None else -(-height // step),
            None if width is None else -(-width // step),
            self.filters,
        )

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}
