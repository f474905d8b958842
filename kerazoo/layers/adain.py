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
        _check_shapes(x.shape, params.shape)
        channels = ops.shape(x)[-1]
        bias = params[:, None, None, :channels]
        scale = params[:, None, None, channels:]
        mean, variance = ops.moments(x, axes=(1, 2), keepdims=True)
        return (x - mean) * ops.rsqrt(variance + self.epsilon) * scale + bias

    def compute_output_shape(self, x_shape, params_shape=None):
        return x_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def _check_shapes(x_shape, params_shape):
    # Broadcasting would otherwise turn a wrong shape into a wrong output.
    channels = x_shape[-1]
    if len(x_shape) != 4 or len(params_shape) != 2:
        raise ValueError(
            f"AdaptiveInstanceNorm takes images (B, H, W, C) and params (B, 2C); got {tuple(x_shape)} "
            f"and {tuple(params_shape)}."
        )
    if channels is not None and params_shape[-1] is not None and params_shape[-1] != 2 * channels:
        raise ValueError(
            f"AdaptiveInstanceNorm: params have {params_shape[-1]} columns; images with {channels} "
            f"channels need {2 * channels} (a bias then a scale per channel)."
        )
    if None not in (x_shape[0], params_shape[0]) and x_shape[0] != params_shape[0]:
        raise ValueError(
            f"AdaptiveInstanceNorm: {params_shape[0]} rows of params for a batch of {x_shape[0]} images."
        )
