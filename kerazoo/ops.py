"""Tensor operations shared by kerazoo's layers and models.

`l2_normalize` is PyTorch's `F.normalize` (the methods' official code uses
it for cosine heads, contrastive keys and negative banks), in `keras.ops`
and in NumPy; `outputs_numpy` runs a model over an array in inference mode.
"""

import numpy as np
from keras import ops

# F.normalize's eps: a vector's norm is clamped to at least this before dividing.
EPSILON = 1e-12


def l2_normalize(x, axis):
    """x / max(‖x‖, ε) along `axis`, as PyTorch's `F.normalize` (ε = 1e-12).

    Written as x · rsqrt(max(‖x‖², ε²)) (the same value) so that the
    gradient stays finite for an all-zero vector, where d√s/ds is infinite.
    (`keras.ops.normalize` clamps 1/‖x‖ at 1/1e-7 instead, which differs for
    tiny vectors and has no finite gradient at zero.)

    Args:
        x: a tensor.
        axis: the axis whose vectors get unit length.

    Returns:
        `x` with unit L2 norm along `axis` (zero vectors stay zero).

    Example:

    ```python
    from kerazoo.ops import l2_normalize

    print(l2_normalize([[3.0, 4.0]], axis=1))  # [[0.6, 0.8]]
    ```
    """
    x = ops.convert_to_tensor(x)
    squared = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * ops.rsqrt(ops.maximum(squared, EPSILON**2))


def l2_normalize_numpy(x, axis):
    """`l2_normalize` in NumPy, in `x`'s own precision (herding, imprinting).

    Args:
        x: a NumPy array.
        axis: the axis to normalise along.

    Example:

    ```python
    import numpy as np
    from kerazoo.ops import l2_normalize_numpy

    print(l2_normalize_numpy(np.array([[3.0, 4.0], [0.0, 0.0]]), axis=1))  # [[0.6 0.8] [0. 0.]]
    ```
    """
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), EPSILON)


def outputs_numpy(model, images, batch_size=512):
    """`model`'s outputs on `images` in inference mode, as one NumPy array
    (float32 when the model computes in bfloat16 or float16): the model
    called eagerly on one batch after another.

    Evaluation code (herding, class means, probes) calls models that change
    from phase to phase; `model.predict` traces a function for each new
    model and costs a fixed ~0.2 s a call more (digits convnet, 2 cores),
    and gives the same numbers.

    Args:
        model: a Keras model (or layer) with a `training` argument.
        images: a NumPy array, batch first.
        batch_size: images per call.

    Example:

    ```python
    import numpy as np
    import kerazoo
    from kerazoo.ops import outputs_numpy

    backbone = kerazoo.backbones.get("convnet", width=8)
    features = outputs_numpy(backbone, np.zeros((1000, 8, 8, 1), "float32"))
    print(features.shape)  # (1000, 8)
    ```
    """
    outputs = np.concatenate(
        [
            ops.convert_to_numpy(model(images[i : i + batch_size], training=False))
            for i in range(0, len(images), batch_size)
        ]
    )
    # Under mixed precision the outputs are bfloat16 (or float16), which
    # NumPy-side evaluation (scikit-learn's probes and kNN) cannot take.
    return outputs.astype("float32") if outputs.dtype.name in ("bfloat16", "float16") else outputs
