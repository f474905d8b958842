"""AdaptiveInstanceNorm: instance normalisation with per-sample scale and bias (MUNIT's AdaIN)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerazoo")
class AdaptiveInstanceNorm(keras.layers.Layer):
    """Instance-normalise `x` and apply a scale and bias given per sample.

        out[b, h, w, c] = (x[b, h, w, c] - mean[b, c]) / sqrt(var[b, c] + eps) * scale[b, c] + bias[b, c]

    with `params = concat([bias, scale], -1)`, shape (B, 2C): the order of
    MUNIT's `assign_adain_params` (the first C numbers are the mean, the next
    C the standard deviation; `networks.py`). The statistics are those of
    each sample and channel over H and W, in training and inference alike.
    MUNIT's decoder gets `params` from an MLP of the style code.

    Example:

    ```python
    x = keras.ops.ones((2, 4, 4, 3))
    out = AdaptiveInstanceNorm()(x, keras.ops.zeros((2, 6)))   # bias 0, scale 0 -> zeros
    ```
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
