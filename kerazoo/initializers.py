"""PyTorch's weight initialisations as Keras initializers and layers.

Every method here was published with PyTorch (or TF1) code, and each
initialises its layers its own way; Keras' defaults (Glorot-uniform
kernels, zero biases) are none of them. Which code uses which:

| where | official code | here |
|---|---|---|
| ResNet convolutions (LUCIR, torchvision) | `kaiming_normal_(mode="fan_out")` | `kaiming_normal("fan_out")` |
| ResNet-32 convolutions of the long-tail codes (LDAM-DRW's, in GIT and BatchFormer: `ldam_resnet32`) | `kaiming_normal_` (fan_in) | `kaiming_normal()` |
| MUNIT convolutions and linear layers | `kaiming_normal_(mode="fan_in")`, bias 0 | `kaiming_normal()` |
| BNM's classifier (DA code) | `kaiming_normal_`, bias 0 | Keras' `Dense(kernel_initializer=kaiming_normal())` |
| GIT's classifier (the LDAM ResNet) | `kaiming_normal_`, the bias left as `nn.Linear`'s | `dense(..., kernel_initializer=kaiming_normal())` |
| BNM's SSL classifier (MixMatch's `libml`, TF1) | `glorot_normal_initializer`, bias 0 | Keras' `GlorotNormal` (the same truncated normal) |
| Balanced Softmax's (BatchFormer's) classifier, AdCo's projection head, LUCIR's iCaRL baseline, BatchFormer's feed-forward layers | `nn.Linear`'s own | `dense(...)` |

Each function returns a new initializer: an unseeded Keras initializer
draws its seed when it is made (from the seed `keras.utils.set_random_seed`
set), so one shared instance would give same-shaped layers the same weights.
"""

import math

import keras


def kaiming_normal(mode="fan_in"):
    """PyTorch's `kaiming_normal_(a=0, mode=mode, nonlinearity="relu")`.

    An untruncated normal of variance 2 / fan (Keras' `HeNormal` truncates
    it and counts fan-in only).

    Args:
        mode: "fan_in" (PyTorch's default) or "fan_out".

    Returns:
        A `keras.initializers.VarianceScaling`.

    Example:

    ```python
    import keras
    from kerazoo.initializers import kaiming_normal

    conv = keras.layers.Conv2D(16, 3, kernel_initializer=kaiming_normal("fan_out"))
    ```

    References:
        - [He et al., Delving Deep into Rectifiers, ICCV 2015](https://arxiv.org/abs/1502.01852)
    """
    return keras.initializers.VarianceScaling(2.0, mode, "untruncated_normal")


def uniform(bound):
    """U(−bound, bound).

    Args:
        bound: the half-width.

    Returns:
        A `keras.initializers.RandomUniform`.

    Example:

    ```python
    from kerazoo.initializers import uniform

    print(uniform(0.5)((2, 3)).shape)  # (2, 3)
    ```

    References:
        - [PyTorch's `torch.nn.init`](https://pytorch.org/docs/stable/nn.init.html)
    """
    return keras.initializers.RandomUniform(-bound, bound)


def dense(units, fan_in, kernel_initializer=None, bias_initializer=None, **kwargs):
    """A `Dense(units)` on `fan_in` inputs, initialised as PyTorch's `nn.Linear(fan_in, units)`.

    `nn.Linear` draws its weight with `kaiming_uniform_(a=√5)` and its bias
    from the same range: both U(±1/√fan_in). An official code that
    re-initialises one of them passes that initializer instead.

    Args:
        units: the output size.
        fan_in: the input size (the bias's range depends on it).
        kernel_initializer: replaces `nn.Linear`'s kernel rule, e.g.
            `kaiming_normal()`.
        bias_initializer: replaces `nn.Linear`'s bias rule, e.g. "zeros".
        **kwargs: `keras.layers.Dense` arguments (`activation`, `name`, ...).

    Returns:
        A `keras.layers.Dense`, not built.

    Example:

    ```python
    import numpy as np
    from kerazoo.initializers import dense

    head = dense(10, 64, name="head")
    head.build((None, 64))
    print(np.abs(np.asarray(head.kernel)).max() <= 1 / 8)  # True
    ```

    References:
        - [PyTorch's `nn.Linear`](https://pytorch.org/docs/stable/generated/torch.nn.Linear.html)
    """
    bound = 1.0 / math.sqrt(fan_in)
    return keras.layers.Dense(
        units,
        kernel_initializer=kernel_initializer or uniform(bound),
        bias_initializer=bias_initializer or uniform(bound),
        **kwargs,
    )
