"""Nuisance transforms (the GIT paper's K49 construction), applied once to a
whole dataset; random augmentation inside tf.data is in `augment.py`.

Each nuisance draws its parameters independently for every image from a
NumPy `Generator`, so a seed fixes the whole transformed dataset. Images are
float32 (N, H, W, C) in [0, 1].

Parameters follow the GIT code's K-MNIST-LT builder:
- `rot`: rotation by theta ~ U(-max_degrees, max_degrees), bicubic, zero fill
  (K49 uses 180 degrees);
- `bg`: every background pixel (exactly 0) set to one level per image,
  drawn from {0, ..., 99}/255;
- `dil`: with probability 0.6 a grey dilation with a k x k flat kernel,
  k in {2, 3, 4}; otherwise an erosion with k in {1, 2} (k = 1 is identity,
  as in OpenCV).
"""

import numpy as np
import tensorflow as tf
from scipy import ndimage

from kerazoo.data.errors import UserDataError


def rotate(image, rng, max_degrees=180.0):
    """Rotate `image` by an angle drawn uniformly from [-max_degrees, max_degrees] (the `rot` nuisance).

    Args:
        image: float32 (H, W, C) in [0, 1].
        rng: a NumPy `Generator`.
        max_degrees: the largest angle.

    Example:

    ```python
    import numpy as np
    from kerazoo.data import transforms

    image = np.pad(np.ones((4, 4, 1), "float32"), ((2, 2), (2, 2), (0, 0)))  # ink on a 0 background
    rng = np.random.default_rng(0)
    print(transforms.rotate(image, rng, max_degrees=45.0).shape)  # (8, 8, 1)
    ```

    References:
        - [Zhou et al., Do Deep Networks Transfer Invariances Across Classes?, ICLR
          2022](https://arxiv.org/abs/2203.09739)
    """
    angle = rng.uniform(-max_degrees, max_degrees)
    out = ndimage.rotate(image, angle, axes=(0, 1), reshape=False, order=3, mode="constant", cval=0.0)
    return np.clip(out, 0.0, 1.0)


def background(image, rng, max_level=99):
    """Set the background (exactly 0) to one grey level drawn from {0, ..., max_level}/255 (the `bg` nuisance).

    Args:
        image: float32 (H, W, C) in [0, 1].
        rng: a NumPy `Generator`.
        max_level: the brightest level, out of 255.

    Example:

    ```python
    import numpy as np
    from kerazoo.data import transforms

    image = np.pad(np.ones((4, 4, 1), "float32"), ((2, 2), (2, 2), (0, 0)))  # ink on a 0 background
    rng = np.random.default_rng(0)
    print(transforms.background(image, rng).min())  # the new background level
    ```

    References:
        - [Zhou et al., Do Deep Networks Transfer Invariances Across Classes?, ICLR
          2022](https://arxiv.org/abs/2203.09739)
    """
    level = rng.integers(0, max_level + 1) / 255.0
    return np.where(image == 0.0, level, image).astype(image.dtype)


def dilate_erode(image, rng, dilate_probability=0.6):
    """Grey dilation (probability `dilate_probability`) or erosion with a random flat kernel (the `dil` nuisance).

    Args:
        image: float32 (H, W, C) in [0, 1].
        rng: a NumPy `Generator`.
        dilate_probability: the chance of a dilation.

    Example:

    ```python
    import numpy as np
    from kerazoo.data import transforms

    image = np.pad(np.ones((4, 4, 1), "float32"), ((2, 2), (2, 2), (0, 0)))  # ink on a 0 background
    rng = np.random.default_rng(0)
    print(transforms.dilate_erode(image, rng).sum() != image.sum())
    ```

    References:
        - [Zhou et al., Do Deep Networks Transfer Invariances Across Classes?, ICLR
          2022](https://arxiv.org/abs/2203.09739)
    """
    if rng.random() < dilate_probability:
        k = rng.integers(2, 5)
        return ndimage.grey_dilation(image, size=(k, k, 1), mode="constant", cval=0.0)
    k = rng.integers(1, 3)
    return ndimage.grey_erosion(image, size=(k, k, 1), mode="constant", cval=0.0)


NUISANCES = {"rot": rotate, "bg": background, "dil": dilate_erode}

# The share of exactly-0 pixels below which `bg` is refused (digits: about
# half; glyphs: most).
BG_MIN_BLACK = 0.05


def apply_nuisance(images, kind, seed, **kwargs):
    """Transform every image once with freshly drawn parameters.

    Args:
        images: float32 (N, H, W, C) in [0, 1].
        kind: one of `NUISANCES` (`"rot"`, `"bg"`, `"dil"`).
        seed: int; the same seed gives the same transformed images.
        **kwargs: forwarded to the transform (e.g. `max_degrees=45`).

    Example:

    ```python
    import numpy as np
    from kerazoo.data.transforms import apply_nuisance

    images = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    rotated = apply_nuisance(images, "rot", seed=0, max_degrees=45)
    ```

    References:
        - [Zhou et al., Do Deep Networks Transfer Invariances Across Classes?, ICLR
          2022](https://arxiv.org/abs/2203.09739)
    """
    if kind not in NUISANCES:
        raise ValueError(f"Unknown nuisance '{kind}'; choose one of {sorted(NUISANCES)}.")
    black = float(np.mean(np.asarray(images) == 0)) if np.size(images) else 1.0
    if kind == "bg" and black < BG_MIN_BLACK:
        # Photos and JPEGs have almost no exactly-0 pixel: bg changed nothing,
        # while the run's report said it was applied.
        raise UserDataError(
            f"The bg nuisance sets the exactly-black background (pixels 0) of ink-on-black images "
            f"such as digits or glyphs to one grey level; {black:.1%} of these images' pixels are 0, "
            "so it would leave them almost unchanged. Use rot or dil for such images."
        )
    rng = np.random.default_rng(seed)
    transform = NUISANCES[kind]
    return np.stack([transform(image, rng, **kwargs) for image in images]).astype(np.float32)


def resize(images, size):
    """Bilinear resize of (N, H, W, C) images to (N, size, size, C).

    Args:
        images: (N, H, W, C) images.
        size: the new side.

    Example:

    ```python
    import numpy as np
    from kerazoo.data.transforms import resize

    print(resize(np.zeros((2, 8, 8, 1), "float32"), 16).shape)  # (2, 16, 16, 1)
    ```
    """
    if images.shape[1:3] == (size, size):
        return images
    return np.clip(tf.image.resize(images, (size, size)).numpy(), 0.0, 1.0)
