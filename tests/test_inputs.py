"""kerazoo.inputs: raw-data checks, the preprocessing and its NumPy resize."""

import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

from kerazoo import inputs


@pytest.fixture(scope="module")
def digits():
    """Every sklearn digit as model input (N, 8, 8, 1)."""
    return inputs.preprocess(load_digits().images, "sklearn_digits")


def _tensorflow_resize(images, size):
    # kerazoo.data.transforms.resize, the resize the training data went through.
    return np.clip(tf.image.resize(images, (size, size)).numpy(), 0.0, 1.0)


@pytest.mark.parametrize("size", [16, 32])
def test_the_numpy_resize_is_tensorflows_bit_for_bit_on_the_real_inputs(digits, size):
    got = inputs.resize_bilinear(digits, size)
    assert got.dtype == np.float32 and got.shape == (len(digits), size, size, 1)
    np.testing.assert_array_equal(got, _tensorflow_resize(digits, size))


@pytest.mark.parametrize("shape, size", [((5, 8, 8, 1), 12), ((5, 8, 8, 3), 5), ((3, 7, 7, 2), 16)])
def test_the_numpy_resize_is_tensorflows_bit_for_bit_on_other_sizes(shape, size):
    images = np.random.default_rng(size).uniform(0, 1, shape).astype(np.float32)
    np.testing.assert_array_equal(inputs.resize_bilinear(images, size), _tensorflow_resize(images, size))


def test_resizing_to_the_same_size_is_the_identity(digits):
    assert inputs.resize_bilinear(digits, 8) is digits


def test_raw_digits_are_checked_and_made_into_model_input():
    raw = load_digits().images
    images = inputs.preprocess(raw, "sklearn_digits")
    assert images.dtype == np.float32 and images.shape == (len(raw), 8, 8, 1)
    # x * float32(1/255), as tf.image.convert_image_dtype (not x / 255).
    np.testing.assert_array_equal(
        images[..., 0], np.round(raw * 255 / 16).astype(np.uint8) * np.float32(1 / 255)
    )
    assert inputs.check_raw(raw.astype(np.int64), "sklearn_digits").dtype == np.int64
    with pytest.raises(ValueError, match=r"look already scaled \(e.g. images / 16\)"):
        inputs.check_raw(raw / 16, "sklearn_digits")
    with pytest.raises(ValueError, match="contain NaN or infinity"):
        inputs.check_raw(np.where(raw > 8, np.nan, raw), "sklearn_digits")
    with pytest.raises(ValueError, match="dtype bool"):
        inputs.check_raw(raw > 8, "sklearn_digits")
    with pytest.raises(ValueError, match=r"shape \(5, 16, 16\); expected \(N, 8, 8\)"):
        inputs.check_raw(np.zeros((5, 16, 16)), "sklearn_digits")


def test_raw_uint8_images_are_checked():
    pixels = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    np.testing.assert_array_equal(inputs.preprocess(pixels, "uint8"), pixels * np.float32(1 / 255))
    with pytest.raises(
        ValueError, match=r"dtype float64; they look already scaled to \[0, 1\]; .*pass those as they are"
    ):
        inputs.preprocess(pixels / 255, "uint8")
    with pytest.raises(ValueError, match=r"dtype float32; the 'uint8' format takes uint8"):
        inputs.preprocess(pixels.astype(np.float32), "uint8")
    with pytest.raises(ValueError, match=r"expected \(N, H, W, C\).*raw\[None\].*raw\[..., None\]"):
        inputs.preprocess(pixels[0], "uint8")
    with pytest.raises(ValueError, match="Unknown raw format 'png'"):
        inputs.preprocess(pixels, "png")


def test_an_image_just_above_one_is_named_with_the_digits_that_show_it():
    images = np.full((1, 4, 4, 1), 0.5, "float32")
    images[0, 0, 0, 0] = np.nextafter(np.float32(1), np.float32(2))  # 1.0000001
    with pytest.raises(ValueError, match=r"range over \[0.5, 1.00000012\]"):
        inputs.check_images(images, (4, 4, 1))
