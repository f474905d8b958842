"""Random augmentation for tf.data in which every random draw is stateless.

Each op takes one float32 (H, W, C) image in [0, 1] and a `key` (a shape [2]
integer seed tensor) and returns an image of the same shape. Equal (image,
key) pairs always give equal outputs, whichever iterator, thread or process
computes them. The pipelines in `pipeline.py` derive the keys from (seed,
epoch, position in the epoch, view), so a run resumed at epoch e sees the
same augmented batches as an uninterrupted run. Stateful ops such as
`tf.image.random_crop` or `keras.layers.RandomRotation` only repeat while
their generator state happens to be replayed too.

A policy is a function `(image, key) -> image`; `POLICIES` names the ones
the recipes use and `chain` builds others from the ops.
"""

import functools
import math

import tensorflow as tf


def random_shift(image, key, pad):
    """Translate by up to ±`pad` pixels along each axis, zero fill.

    Pads by `pad` on every side and crops back to (H, W) at a random offset,
    so `pad=4` is CIFAR's pad-4 random crop.

    Args:
        image: float32 (H, W, C) tensor in [0, 1].
        key: a stateless seed, int (2,) tensor.
        pad: the largest shift, in pixels.

    Example:

    ```python
    import numpy as np
    import tensorflow as tf
    from kerazoo.data import augment

    image = tf.constant(np.random.default_rng(0).uniform(size=(8, 8, 1)), tf.float32)
    key = tf.constant([0, 1])  # a stateless seed
    print(augment.random_shift(image, key, pad=2).shape)  # (8, 8, 1)
    ```
    """
    height, width, channels = image.shape
    padded = tf.image.pad_to_bounding_box(image, pad, pad, height + 2 * pad, width + 2 * pad)
    return tf.image.stateless_random_crop(padded, [height, width, channels], seed=key)


def random_flip(image, key):
    """Mirror left-right with probability 1/2.

    Args:
        image: float32 (H, W, C) tensor in [0, 1].
        key: a stateless seed, int (2,) tensor.

    Example:

    ```python
    import numpy as np
    import tensorflow as tf
    from kerazoo.data import augment

    image = tf.constant(np.random.default_rng(0).uniform(size=(8, 8, 1)), tf.float32)
    key = tf.constant([0, 1])  # a stateless seed
    flipped = augment.random_flip(image, key)  # mirrored or not
    ```
    """
    return tf.image.stateless_random_flip_left_right(image, seed=key)


def rotate(image, degrees):
    """Rotate counter-clockwise by `degrees` about the image centre (bilinear, zero fill).

    Args:
        image: float32 (H, W, C) image.
        degrees: the angle, counter-clockwise.

    Example:

    ```python
    import numpy as np
    from kerazoo.data import augment

    image = np.arange(16, dtype="float32").reshape(4, 4, 1)
    print(np.allclose(augment.rotate(image, 90.0), np.rot90(image), atol=1e-4))  # True
    ```
    """
    height, width = image.shape[0], image.shape[1]
    angle = tf.cast(degrees, tf.float32) * (math.pi / 180.0)
    cos, sin = tf.cos(angle), tf.sin(angle)
    # The transform maps each output pixel p = (x, y) to the input point it
    # samples, R(angle)·(p - c) + c with c the centre; with y pointing down the
    # picture turns counter-clockwise (keras.layers.RandomRotation's construction).
    x_offset = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2.0
    y_offset = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2.0
    transform = tf.stack([cos, -sin, x_offset, sin, cos, y_offset, 0.0, 0.0])
    rotated = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[tf.newaxis],
        transforms=transform[tf.newaxis],
        output_shape=[height, width],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    return rotated[0]


def random_rotation(image, key, max_degrees):
    """Rotate by an angle drawn uniformly from [-max_degrees, max_degrees].

    Args:
        image: float32 (H, W, C) tensor in [0, 1].
        key: a stateless seed, int (2,) tensor.
        max_degrees: the largest angle.

    Example:

    ```python
    import numpy as np
    import tensorflow as tf
    from kerazoo.data import augment

    image = tf.constant(np.random.default_rng(0).uniform(size=(8, 8, 1)), tf.float32)
    key = tf.constant([0, 1])  # a stateless seed
    rotated = augment.random_rotation(image, key, max_degrees=15.0)
    ```
    """
    degrees = tf.random.stateless_uniform([], key, -max_degrees, max_degrees)
    return rotate(image, degrees)


def random_intensity(image, key, low, high):
    """Multiply every pixel by one factor drawn uniformly from [low, high).

    Args:
        image: float32 (H, W, C) tensor in [0, 1].
        key: a stateless seed, int (2,) tensor.
        low, high: the factor's range.

    Example:

    ```python
    import numpy as np
    import tensorflow as tf
    from kerazoo.data import augment

    image = tf.constant(np.random.default_rng(0).uniform(size=(8, 8, 1)), tf.float32)
    key = tf.constant([0, 1])  # a stateless seed
    brighter_or_darker = augment.random_intensity(image, key, low=0.7, high=1.3)
    ```
    """
    return image * tf.random.stateless_uniform([], key, low, high)


def gaussian_noise(image, key, stddev):
    """Add independent N(0, stddev²) noise to every pixel.

    Args:
        image: float32 (H, W, C) tensor in [0, 1].
        key: a stateless seed, int (2,) tensor.
        stddev: the noise's standard deviation.

    Example:

    ```python
    import numpy as np
    import tensorflow as tf
    from kerazoo.data import augment

    image = tf.constant(np.random.default_rng(0).uniform(size=(8, 8, 1)), tf.float32)
    key = tf.constant([0, 1])  # a stateless seed
    noisy = augment.gaussian_noise(image, key, stddev=0.05)
    ```
    """
    return image + stddev * tf.random.stateless_normal(tf.shape(image), key)


def random_background(image, key, max_level=99):
    """Set every background pixel (exactly 0) to one level drawn from
    {0, ..., max_level}/255: the `bg` nuisance of `transforms.py` as a
    stateless op (GIT's `change_bg`).

    Args:
        image: float32 (H, W, C) tensor in [0, 1].
        key: a stateless seed, int (2,) tensor.
        max_level: the brightest level, out of 255.

    Example:

    ```python
    import numpy as np
    import tensorflow as tf
    from kerazoo.data import augment

    image = tf.constant(np.pad(np.ones((4, 4, 1)), ((2, 2), (2, 2), (0, 0))), tf.float32)  # ink on 0
    out = augment.random_background(image, tf.constant([0, 1]))  # the zeros become one grey level
    ```

    References:
        - [Zhou et al., Do Deep Networks Transfer Invariances Across Classes?, ICLR
          2022](https://arxiv.org/abs/2203.09739)
    """
    level = tf.random.stateless_uniform([], key, 0, max_level + 1, dtype=tf.int32)
    return tf.where(image == 0.0, tf.cast(level, image.dtype) / 255.0, image)


def random_dilate_erode(image, key, dilate_probability=0.6):
    """With probability 0.6 a grey dilation with a flat k x k kernel, k in
    {2, 3, 4}; otherwise an erosion with k in {1, 2}: the `dil` nuisance of
    `transforms.py` as a stateless op (max pooling, stride 1). It matches
    SciPy's up to the anchor of even kernels and the border of erosions.

    Args:
        image: float32 (H, W, C) tensor in [0, 1].
        key: a stateless seed, int (2,) tensor.
        dilate_probability: the chance of a dilation.

    Example:

    ```python
    import numpy as np
    import tensorflow as tf
    from kerazoo.data import augment

    image = tf.constant(np.random.default_rng(0).uniform(size=(8, 8, 1)), tf.float32)
    key = tf.constant([0, 1])  # a stateless seed
    thicker_or_thinner = augment.random_dilate_erode(image, key)
    ```

    References:
        - [Zhou et al., Do Deep Networks Transfer Invariances Across Classes?, ICLR
          2022](https://arxiv.org/abs/2203.09739)
    """
    choose, size = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    dilate = tf.random.stateless_uniform([], choose) < dilate_probability
    k = tf.where(
        dilate,
        tf.random.stateless_uniform([], size, 2, 5, dtype=tf.int32),
        tf.random.stateless_uniform([], size, 1, 3, dtype=tf.int32),
    )
    sign = tf.where(dilate, 1.0, -1.0)
    pooled = [tf.nn.max_pool2d(sign * image[tf.newaxis], k_, 1, "SAME")[0] * sign for k_ in (1, 2, 3, 4)]
    return tf.gather(tf.stack(pooled), k - 1)


def chain(*ops):
    """A policy applying `ops` in turn, each with its own key split from the
    policy's key, then clipping to [0, 1] (once, so that an intensity
    factor and noise add up before the clip, as when applied to a real image).

    Example:

    ```python
    import functools
    import numpy as np
    from kerazoo.data import EpochCounter, train_dataset
    from kerazoo.data.augment import chain, random_flip, random_shift

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(16, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 2, size=16)
    shift_flip = chain(functools.partial(random_shift, pad=2), random_flip)
    ds = train_dataset(x, y, 8, seed=0, epoch_counter=EpochCounter(), augment=shift_flip)
    images, labels = next(iter(ds))
    ```
    """

    def apply(image, key):
        keys = tf.random.experimental.stateless_split(key, len(ops))
        for i, op in enumerate(ops):
            image = op(image, keys[i])
        return tf.clip_by_value(image, 0.0, 1.0)

    return apply


POLICIES = {
    # CIFAR's standard augmentation; `augment=True` means this one.
    "crop_flip": chain(functools.partial(random_shift, pad=4), random_flip),
    # AdCo's views of digits: flips would turn
    # digits into other shapes, so small geometric and photometric changes only.
    "views": chain(
        functools.partial(random_rotation, max_degrees=15.0),
        functools.partial(random_shift, pad=2),
        functools.partial(random_intensity, low=0.7, high=1.3),
        functools.partial(gaussian_noise, stddev=0.05),
    ),
    # GIT's MUNIT training loaders (K49 and CIFAR): the translator, which
    # never sees labels, is trained on mirrored images too.
    "flip": random_flip,
    # The GIT oracle's true nuisances (`transforms.NUISANCES`), applied on the fly.
    "rot": functools.partial(random_rotation, max_degrees=180.0),
    "bg": random_background,
    "dil": random_dilate_erode,
}


def policy(augment):
    """The policy `augment` names: None for `"none"` (or False/None),
    `POLICIES[augment]` for a name (True is `"crop_flip"`), or `augment`
    itself if it is callable. Recipes name it with their `augment` field.

    Args:
        augment: a policy name (`"none"`, `"crop_flip"`, `"views"`, ...), True,
            False, None or a callable.

    Example:

    ```python
    import numpy as np
    import tensorflow as tf
    from kerazoo.data.augment import policy

    image = tf.constant(np.zeros((8, 8, 1)), tf.float32)
    assert policy("none") is None
    crop_flip = policy("crop_flip")
    print(crop_flip(image, tf.constant([0, 1])).shape)  # (8, 8, 1)
    ```
    """
    if augment is None or augment is False or augment == "none":
        return None
    if augment is True:
        return POLICIES["crop_flip"]
    if callable(augment):
        return augment
    if augment not in POLICIES:
        raise ValueError(
            f"Unknown augmentation {augment!r}; use 'none', one of {sorted(POLICIES)}, True "
            f"(= 'crop_flip'), False, or a function (image, key) -> image built "
            f"from kerazoo.data.augment's stateless ops."
        )
    return POLICIES[augment]
