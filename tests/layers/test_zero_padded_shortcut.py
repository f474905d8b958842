"""ZeroPaddedShortcut: every second pixel from the first, channels zero-padded on both sides, serialization."""

import numpy as np
import pytest

from helpers.layers import check_layer
from kerazoo.layers import ZeroPaddedShortcut


@pytest.mark.parametrize("size, out", [(8, 4), (7, 4)])
def test_keeps_every_second_pixel_from_the_first_and_pads_channels_equally(tmp_path, size, out):
    x = np.random.default_rng(0).normal(size=(2, size, size, 16)).astype("float32")
    y = check_layer(ZeroPaddedShortcut(32, name="shortcut"), x, (2, out, out, 32), tmp_path)
    # F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 8, 8)) in NHWC.
    np.testing.assert_array_equal(y, np.pad(x[:, ::2, ::2], [(0, 0), (0, 0), (0, 0), (8, 8)]))
    assert ZeroPaddedShortcut(32).compute_output_shape((None, size, size, 16)) == (None, out, out, 32)


@pytest.mark.parametrize("filters", [8, 17])
def test_channels_it_cannot_pad_equally_are_refused(filters):
    with pytest.raises(ValueError, match=r"filters ≥ the input's 16 channels and an even difference"):
        ZeroPaddedShortcut(filters)(np.zeros((1, 4, 4, 16), "float32"))


@pytest.mark.parametrize("filters, strides", [(32, -1), (32, 0), (32, 1.5), (0, 2), (16.0, 2)])
def test_sizes_that_are_not_whole_numbers_above_zero_are_refused(filters, strides):
    # strides=-1 flipped the image on both axes instead of subsampling it.
    with pytest.raises(ValueError, match="filters and strides must be whole numbers >= 1"):
        ZeroPaddedShortcut(filters, strides)
