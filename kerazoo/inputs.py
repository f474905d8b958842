"""What every kerazoo model takes as input, and how raw data becomes it.

Models take float32 images (N, H, W, C) with values in [0, 1], no mean/std
normalisation. `check_images` enforces that with one set of messages for
every runtime (ONNX Runtime, the SavedModel and Keras loaders of the zoo);
`preprocess` turns a dataset's raw images into that input exactly as the
training data was made.

numpy only: the ONNX runtime imports this module without TensorFlow.

Example:

```python
from sklearn.datasets import load_digits
from kerazoo import inputs

images = inputs.preprocess(load_digits().images, "sklearn_digits")  # (1797, 8, 8, 1)
inputs.check_images(images, (8, 8, 1))
```
"""

import numpy as np

# Raw format -> how `preprocess` turns it into model input (quoted by the zoo's manifest).
PREPROCESSING = {
    "sklearn_digits": (
        "raw: sklearn.datasets.load_digits().images, float (N, 8, 8) with values 0..16; "
        "pixels = round(raw * 255 / 16) as uint8 (what the tfds digits builder stores), "
        "then pixels / 255 as float32 with a channel axis: (N, 8, 8, 1) in [0, 1]; no "
        "mean/std normalisation. Not raw / 16: that is up to 0.5/255 off per pixel, enough "
        "to change predictions. kerazoo.zoo.preprocess(name, raw) applies it."
    ),
    "uint8": (
        "raw: uint8 pixels (N, H, W, C), 0..255, as tensorflow-datasets serves them; "
        "raw / 255 as float32, in [0, 1]; no mean/std normalisation. "
        "kerazoo.zoo.preprocess(name, raw) applies it."
    ),
}

# Datasets whose raw form is not tfds' uint8 images.
_RAW_FORMAT_OF_DATASET = {"digits": "sklearn_digits"}

_DIGITS_MAX = 16  # sklearn's digits count 0..16 set pixels per 4x4 block


def raw_format(dataset):
    """The raw format of a dataset or protocol name (`"digits-rot-lt"` ->
    `"sklearn_digits"`): a key of `PREPROCESSING`.

    Args:
        dataset: a dataset or protocol name.

    Returns:
        The raw format's name, a key of `PREPROCESSING`.

    Example:

    ```python
    from kerazoo import inputs

    print(inputs.raw_format("digits-rot-lt"))  # sklearn_digits
    ```
    """
    return _RAW_FORMAT_OF_DATASET.get(dataset.split("-")[0].split(":")[0], "uint8")


def input_spec(dataset, image_size=None, crop_fraction=None):
    """The model-input record of a run on `dataset`: its raw format and the
    exact preprocessing text, including the resize to `image_size`, if any:
    the whole image, or with `crop_fraction` the shorter side to
    image_size / crop_fraction and the central crop (streamed datasets).

    Args:
        dataset: a dataset or protocol name.
        image_size: None, or the side images are resized to.
        crop_fraction: None, or the share of the shorter side kept by a central crop.

    Returns:
        A dict with the raw format and the preprocessing text.

    Example:

    ```python
    from kerazoo import inputs

    print(inputs.input_spec("digits", image_size=16))
    ```
    """
    fmt = raw_format(dataset)
    text = PREPROCESSING[fmt]
    if image_size and crop_fraction:
        text += (
            f" Then the shorter side resized to {round(image_size / crop_fraction)} (bilinear, "
            f"antialiased) and the central {image_size}x{image_size} crop, clipped to [0, 1] "
            "(kerazoo.data.streamed.center_crop)."
        )
    elif image_size:
        text += (
            f" Then bilinear resize to {image_size}x{image_size} "
            "(kerazoo.data.transforms.resize), clipped to [0, 1]."
        )
    return {"raw_format": fmt, "preprocessing": text}


def digits_to_uint8(raw):
    """sklearn's 0..16 digit values as the uint8 0..255 pixels the digits builder stores.

    Args:
        raw: sklearn digits, values 0..16.

    Returns:
        uint8 array of the same shape, values 0..255.

    Example:

    ```python
    import numpy as np
    from kerazoo import inputs

    print(inputs.digits_to_uint8(np.array([0.0, 8.0, 16.0])))  # [  0 128 255]
    ```
    """
    return np.round(np.asarray(raw, dtype=np.float64) * (255.0 / _DIGITS_MAX)).astype(np.uint8)


def preprocess(raw_images, raw_format):
    """Model input (float32 (N, H, W, C) in [0, 1]) from raw images of
    `raw_format` (see `PREPROCESSING`), without any resize, after
    `check_raw` has made sure they are raw.

    Args:
        raw_images: array-like in the raw format, e.g. `load_digits().images`.
        raw_format: a key of `PREPROCESSING`.

    Raises:
        ValueError: the images are not in `raw_format` (`check_raw`).

    Example:

    ```python
    from sklearn.datasets import load_digits
    from kerazoo import inputs

    print(inputs.preprocess(load_digits().images, "sklearn_digits").shape)  # (1797, 8, 8, 1)
    ```
    """
    raw = check_raw(raw_images, raw_format)
    if raw_format == "sklearn_digits":
        raw = digits_to_uint8(raw)[..., None]
    # x * float32(1/255), not x / 255: tf.image.convert_image_dtype's exact
    # float32 values, as the training data had them.
    return raw.astype(np.float32) * np.float32(1.0 / 255.0)


def check_raw(raw_images, raw_format):
    """`raw_images` as an array after checking that they are raw data of
    `raw_format`, not data already scaled, resized or given a channel axis.

    The rules are those no genuine raw batch can break, whatever its content:

    - `sklearn_digits`: shape (N, 8, 8), real numbers, and every value a
      whole number in 0..16 (sklearn counts set pixels in 4x4 blocks). A
      batch of faint digits with a small maximum is accepted; `images / 16`
      is refused because its values are fractions.
    - `uint8`: dtype uint8 (N, H, W, C).

    Args:
        raw_images: array-like.
        raw_format: a key of `PREPROCESSING`.

    Returns:
        numpy array of the raw images.

    Raises:
        ValueError: naming the problem and the fix, e.g. for `images / 16`:
            "values in [0, 1] with fractions ... looks already scaled; pass
            load_digits().images as they are".

    Example:

    ```python
    from sklearn.datasets import load_digits
    from kerazoo import inputs

    raw = load_digits().images
    inputs.check_raw(raw, "sklearn_digits")  # fine
    try:
        inputs.check_raw(raw / 16, "sklearn_digits")
    except ValueError as error:
        print(error)  # ... looks already scaled ...
    ```
    """
    if raw_format not in PREPROCESSING:
        raise ValueError(f"Unknown raw format {raw_format!r}; choose one of {sorted(PREPROCESSING)}.")
    try:
        raw = np.asarray(raw_images)
    except ValueError as error:
        raise ValueError(f"raw images must be an array: {error}") from None
    if raw_format == "uint8":
        _check_raw_uint8(raw)
    else:
        _check_raw_digits(raw)
    return raw


_DIGITS_FIX = "pass sklearn.datasets.load_digits().images as they are (float, (N, 8, 8), whole numbers 0..16)"


def _check_raw_digits(raw):
    if raw.dtype.kind not in "iuf":
        raise ValueError(f"raw digits have dtype {raw.dtype}; {_DIGITS_FIX}.")
    if raw.shape == (8, 8):
        raise ValueError(
            "raw digits have shape (8, 8), a single image without the batch axis; pass raw[None]."
        )
    if raw.ndim == 4 and raw.shape[1:] == (8, 8, 1):
        raise ValueError(
            f"raw digits have shape {raw.shape}, which looks like model input already (it has a "
            "channel axis); give such images to the model directly, or "
            f"{_DIGITS_FIX}."
        )
    if raw.ndim != 3 or raw.shape[1:] != (8, 8):
        raise ValueError(
            f"raw digits have shape {raw.shape}; expected (N, 8, 8) as "
            "sklearn.datasets.load_digits().images (resizing to a model's size is part of "
            "the preprocessing)."
        )
    if not raw.size:
        return
    if not np.isfinite(raw).all():
        raise ValueError(f"raw digits contain NaN or infinity; {_DIGITS_FIX}.")
    low, high = raw.min(), raw.max()
    if low < 0:
        raise ValueError(
            f"raw digits must lie in [0, {_DIGITS_MAX}], got [{low:g}, {high:g}]; {_DIGITS_FIX}."
        )
    if high > _DIGITS_MAX:
        guess = " (these look like 0..255 pixels)" if high <= 255 else ""
        raise ValueError(
            f"raw digits must lie in [0, {_DIGITS_MAX}] (sklearn's counts), got "
            f"[{low:g}, {high:g}]{guess}; {_DIGITS_FIX}."
        )
    fractional = raw != np.round(raw)
    if fractional.any():
        example = raw[fractional].flat[0]
        if high <= 1:
            raise ValueError(
                f"raw digits have values in [{low:g}, {high:g}] with fractions (e.g. {example:g}): "
                f"they look already scaled (e.g. images / 16); {_DIGITS_FIX}; "
                "kerazoo.zoo.preprocess scales them itself."
            )
        raise ValueError(
            f"raw digits must be whole numbers 0..{_DIGITS_MAX} (sklearn's counts), but some are "
            f"not (e.g. {example:g}): they look scaled or resized; {_DIGITS_FIX}."
        )


def _check_raw_uint8(raw):
    if raw.dtype != np.uint8:
        scaled = (
            raw.dtype.kind == "f"
            and raw.size
            and np.isfinite(raw).all()
            and 0 <= raw.min()
            and raw.max() <= 1
        )
        hint = " they look already scaled to [0, 1];" if scaled else ""
        raise ValueError(
            f"raw images have dtype {raw.dtype};{hint} the 'uint8' format takes uint8 pixels "
            "0..255 (N, H, W, C) as tensorflow-datasets serves them: pass those as they are."
        )
    if raw.ndim != 4:
        raise ValueError(
            f"raw images have shape {raw.shape}; expected (N, H, W, C) uint8 pixels: add the "
            "missing axis (raw[None] for one image, raw[..., None] for grey images without a "
            "channel axis)."
        )


def resize_bilinear(images, size):
    """Bilinear resize of float32 (N, H, W, C) images to (N, size, size, C),
    clipped to [0, 1]: NumPy's bit-for-bit equal of
    `np.clip(tf.image.resize(images, (size, size)).numpy(), 0, 1)`, the
    resize the training data went through (`kerazoo.data.transforms.resize`).

    TensorFlow's kernel (resize_bilinear_op.cc, half-pixel centres, no
    antialiasing): source coordinate s = (i + 0.5) · (in / out) − 0.5 in
    float32, neighbours max(floor(s), 0) and min(ceil(s), in − 1), weight
    s − floor(s); then top = a + (b − a) · wx, bottom likewise, and
    top + (bottom − top) · wy, all in float32.

    Args:
        images: float32 array (N, H, W, C).
        size: output height and width.

    Returns:
        float32 array (N, size, size, C); `images` itself if already that size.

    Example:

    ```python
    import numpy as np
    from kerazoo import inputs

    print(inputs.resize_bilinear(np.zeros((2, 8, 8, 1), np.float32), 16).shape)  # (2, 16, 16, 1)
    ```
    """
    images = np.asarray(images, dtype=np.float32)
    if images.shape[1:3] == (size, size):
        return images
    ry0, ry1, wy = _bilinear_weights(images.shape[1], size)
    rx0, rx1, wx = _bilinear_weights(images.shape[2], size)
    wx, wy = wx[None, None, :, None], wy[None, :, None, None]
    top, bottom = images[:, ry0], images[:, ry1]
    top = top[:, :, rx0] + (top[:, :, rx1] - top[:, :, rx0]) * wx
    bottom = bottom[:, :, rx0] + (bottom[:, :, rx1] - bottom[:, :, rx0]) * wx
    return np.clip(top + (bottom - top) * wy, 0.0, 1.0)


def _bilinear_weights(in_size, out_size):
    scale = np.float32(in_size) / np.float32(out_size)  # as TF: float(in) / out
    source = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(source)
    lower = np.maximum(floor, 0).astype(np.int64)
    upper = np.minimum(np.ceil(source), in_size - 1).astype(np.int64)
    return lower, upper, (source - floor).astype(np.float32)


def check_images(images, image_shape):
    """`images` as a float32 array after checking they are what models take.

    Args:
        images: array-like (N, H, W, C); N may be 0.
        image_shape: the shape of one image, (H, W, C); None entries accept any size.

    Returns:
        float32 array of `images`.

    Raises:
        ValueError: wrong shape (e.g. a single image without the batch axis),
            a non-float dtype, non-finite values, or values outside [0, 1];
            the message says how to fix it.

    Example:

    ```python
    import numpy as np
    from kerazoo import inputs

    images = inputs.check_images(np.zeros((2, 8, 8, 1)), (8, 8, 1))  # float32
    try:
        inputs.check_images(np.zeros((8, 8, 1)), (8, 8, 1))  # one image, no batch axis
    except ValueError as error:
        print(error)
    ```
    """
    try:
        images = np.asarray(images)
    except ValueError as error:
        raise ValueError(f"images must be an array (N, H, W, C): {error}") from None
    if images.dtype.kind != "f":
        raise ValueError(
            f"images have dtype {images.dtype}; the model takes float32 in [0, 1]: "
            "convert 0..255 pixels with images.astype('float32') / 255."
        )
    expected = tuple(image_shape)
    dims = ", ".join("?" if d is None else str(d) for d in expected)
    if images.ndim == len(expected) and all(e in (None, g) for e, g in zip(expected, images.shape)):
        raise ValueError(
            f"images has shape {images.shape}, a single image without the batch axis; "
            f"pass images[None] (shape (1, {dims}))."
        )
    if images.ndim != len(expected) + 1 or any(
        e is not None and e != g for e, g in zip(expected, images.shape[1:])
    ):
        raise ValueError(f"images have shape {images.shape}; expected (N, {dims}), a batch of N images.")
    # Checked before the cast to float32, which turns a huge float64 into infinity.
    if images.size:
        if not np.isfinite(images).all():
            raise ValueError("images contain NaN or infinity; pass finite values in [0, 1].")
        low, high = float(images.min()), float(images.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"images must lie in [0, 1] but range over [{low:.9g}, {high:.9g}]; scale "
                "them to [0, 1], e.g. divide 0..255 pixels by 255."
            )
    return images.astype(np.float32, copy=False)
