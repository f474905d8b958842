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
    `"sklearn_digits"`): a key of `PREPROCESSING`."""
    return _RAW_FORMAT_OF_DATASET.get(dataset.split("-")[0].split(":")[0], "uint8")


def input_spec(dataset, image_size=None, crop_fraction=None):
    """The model-input record of a run on `dataset`: its raw format and the
    exact preprocessing text, including the resize to `image_size`, if any:
    the whole image, or with `crop_fraction` the shorter side to
    image_size / crop_fraction and the central crop (streamed datasets)."""
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
    """sklearn's 0..16 digit values as the uint8 0..255 pixels the digits builder stores."""
    return np.round(np.asarray(raw, dtype=np.float64) * (255.0 / _DIGITS_MAX)).astype(np.uint8)


def preprocess(raw_images, raw_format):
    """Model input (float32 (N, H, W, C) in [0, 1]) from raw images of
    `raw_format` (see `PREPROCESSING`), without any resize."""
    if raw_format not in PREPROCESSING:
        raise ValueError(f"Unknown raw format {raw_format!r}; choose one of {sorted(PREPROCESSING)}.")
    raw = np.asarray(raw_images)
    if raw_format == "sklearn_digits":
        if raw.ndim != 3 or raw.shape[1:] != (8, 8):
            raise ValueError(
                f"raw digits have shape {raw.shape}; expected (N, 8, 8) as "
                "sklearn.datasets.load_digits().images."
            )
        if raw.size and (raw.min() < 0 or raw.max() > _DIGITS_MAX):
            raise ValueError(
                f"raw digits must lie in [0, {_DIGITS_MAX}] (sklearn's load_digits().images), "
                f"got [{raw.min():g}, {raw.max():g}]."
            )
        raw = digits_to_uint8(raw)[..., None]
    elif raw.dtype != np.uint8:
        raise ValueError(f"raw images have dtype {raw.dtype}; the 'uint8' format takes uint8 0..255.")
    # x * float32(1/255), not x / 255: tf.image.convert_image_dtype's exact
    # float32 values, as the training data had them.
    return raw.astype(np.float32) * np.float32(1.0 / 255.0)


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
        raise ValueError(
            f"images have shape {images.shape}; expected (N, {dims}), a batch of N images."
        )
    images = images.astype(np.float32, copy=False)
    if images.size:
        if not np.isfinite(images).all():
            raise ValueError("images contain NaN or infinity; pass finite values in [0, 1].")
        low, high = float(images.min()), float(images.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"images must lie in [0, 1] but range over [{low:g}, {high:g}]; scale "
                "them to [0, 1], e.g. divide 0..255 pixels by 255."
            )
    return images
