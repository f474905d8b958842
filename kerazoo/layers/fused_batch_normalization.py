"""FusedBatchNormalization: Keras' BatchNormalization, trained through TensorFlow's fused kernel."""

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="kerazoo")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` whose training step is one fused kernel.

    Keras 3 computes a training-mode BatchNorm on TensorFlow from its parts
    (`tf.nn.moments`, then `tf.nn.batch_normalization`): about ten
    element-wise and reduction ops forward and as many backward, each a
    pass over the activations. TensorFlow's `FusedBatchNormV3` does the
    forward in one kernel and the backward in another, as PyTorch's
    BatchNorm does. On a CIFAR ResNet-32 training step on 2 CPU cores the
    fused layer made the whole step 1.26x as fast (`benchmarks/efficiency.py`,
    docs/performance.md).

    The arithmetic is Keras': statistics in float32 whatever the input's
    dtype, the output in the layer's compute dtype, and the moving variance
    averaged from the *biased* batch variance (the fused kernel returns the
    Bessel-corrected one, which this layer converts back). Where the fused
    kernel does not apply, the layer is Keras' own, unchanged: inference,
    `trainable=False`, synchronized statistics, a mask, renormalization,
    inputs that are not 4-D with the channels last or first, and backends
    other than TensorFlow. The weights, config and saved files are those of
    `keras.layers.BatchNormalization`.

    Args:
        **kwargs: those of `keras.layers.BatchNormalization`.

    Example:

    ```python
    import numpy as np
    import keras
    from kerazoo.layers import FusedBatchNormalization

    x = np.random.default_rng(0).normal(size=(8, 4, 4, 3)).astype("float32")
    fused = FusedBatchNormalization(momentum=0.9, epsilon=1e-5)
    plain = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    assert np.allclose(fused(x, training=True), plain(x, training=True), atol=1e-5)
    assert np.allclose(fused.moving_variance, plain.moving_variance, atol=1e-6)
    ```

    References:
        - [Ioffe and Szegedy, Batch Normalization: Accelerating Deep Network Training by Reducing
          Internal Covariate Shift, ICML 2015](https://arxiv.org/abs/1502.03167)
    """

    def call(self, inputs, training=None, mask=None):
        data_format = self._fused_data_format(inputs, mask)
        if not (training and self.trainable and data_format):
            return super().call(inputs, training=training, mask=mask)
        x = ops.cast(inputs, "float32")
        channels = x.shape[-1 if data_format == "NHWC" else 1]
        gamma = ops.cast(self.gamma, "float32") if self.scale else ops.ones((channels,), "float32")
        beta = ops.cast(self.beta, "float32") if self.center else ops.zeros((channels,), "float32")
        empty = tf.zeros((0,), "float32")
        outputs, mean, corrected, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x,
            scale=gamma,
            offset=beta,
            mean=empty,
            variance=empty,
            epsilon=self.epsilon,
            data_format=data_format,
            is_training=True,
        )
        # The kernel's variance is Bessel-corrected (n / (n - 1)); Keras
        # averages the biased one into the moving variance.
        count = tf.cast(tf.size(x) // channels, "float32")
        variance = tf.where(count > 1.0, corrected * (count - 1.0) / tf.maximum(count, 1.0), 0.0)
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(self.moving_variance * momentum + variance * (1.0 - momentum))
        return ops.cast(outputs, self.compute_dtype)

    def _fused_data_format(self, inputs, mask):
        """The data format ("NHWC" or "NCHW") when the fused kernel computes this call exactly, else None."""
        if keras.backend.backend() != "tensorflow" or mask is not None or self.synchronized or self.renorm:
            return None
        if len(inputs.shape) != 4:
            return None
        axis = self.axis % 4
        return {3: "NHWC", 1: "NCHW"}.get(axis)
