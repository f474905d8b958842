"""AdaptiveInstanceNorm: instance normalisation with per-sample scale and bias (MUNIT's AdaIN)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerazoo")
class AdaptiveInstanceNorm(keras.layers.Layer):
    """Instance-normalise `x` and apply a scale and bias given per sample.

        out[b, h, w, c] = (x[b, h, w, c] - mean[b, c]) / sqrt(var[b, c] + eps) * scale[b, c] + bias[b, c]

    with `params = concat([bias, scale], -1)`, shape (B, 2C): the order of
    MUNIT's `assign_adain_params` (the first C numbers are the mean, the next
    C the standard deviation, in the official MUNIT code). The statistics are those of
    each sample and channel over H and W, in training and inference alike.
    MUNIT's decoder gets `params` from an MLP of the style code.

    Args:
        epsilon: added to the variance before the square root.

    Call arguments:
        x: (B, H, W, C) feature maps.
        params: (B, 2C) per-sample `concat([bias, scale], -1)`.

    Example:

    ```python
    import numpy as np
    from kerazoo.layers import AdaptiveInstanceNorm

    x = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype("float32")
    params = np.concatenate([np.zeros((2, 3)), np.ones((2, 3))], axis=-1).astype("float32")
    out = AdaptiveInstanceNorm()(x, params)  # bias 0, scale 1: plain instance norm
    assert out.shape == (2, 4, 4, 3)
    ```

    References:
        - [Huang & Belongie, Arbitrary Style Transfer in Real-time with Adaptive Instance Normalization, ICCV
          2017](https://arxiv.org/abs/1703.06868)
        - [Huang et al., Multimodal Unsupervised Image-to-Image Translation, ECCV
          2018](https://arxiv.org/abs/1804.04732)
    """

    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, x, params):
        channels = ops.shape(x)[-1]
        bias = params[:, None, None, :channels]
        scale = params[:, None, None, channels:]
        mean, variance = ops.moments(x, axes=(1, 2), keepdims=True)
        return (x - mean) * ops.rsqrt(variance + self.epsilon) * scale + bias

    def compute_output_shape(self, x_shape, params_shape=None):
        return x_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
