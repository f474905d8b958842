"""export_savedmodel: a `serve` signature that refuses non-finite images and
images of another shape, written atomically. Loading it back:
test_served.py; parity: test_kinds.py."""

import numpy as np
import pytest
import tensorflow as tf

from helpers.export import SHAPE, random_images
from kerazoo.export import export_savedmodel


def test_serve_signature_takes_named_images_of_any_batch(saved_path):
    serve = tf.saved_model.load(str(saved_path)).signatures["serve"]
    assert list(serve.structured_input_signature[1]) == ["images"]
    assert serve.structured_input_signature[1]["images"].shape.as_list() == [None, *SHAPE]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_bare_signature_fails_loudly_on_non_finite_images(saved_path, bad):
    # What a caller without kerazoo (TF Serving, plain TensorFlow) gets:
    # an error, not NaN scores.
    loaded = tf.saved_model.load(str(saved_path))
    images = random_images(3)
    images[1, 2, 3, 0] = bad
    with pytest.raises(tf.errors.InvalidArgumentError, match="images contain NaN or infinity"):
        loaded.signatures["serve"](images=tf.constant(images))


@pytest.mark.parametrize(
    "shape", [(3, 9, 8, 1), (3, 8, 8, 3), (3, 8, 8)], ids=["height", "channels", "no channel axis"]
)
def test_bare_signature_refuses_images_of_another_shape(saved_path, shape):
    # Before the check: 9x8 images gave scores, and images without the
    # channel axis aborted the process in a convolution's shape check.
    assert SHAPE == (8, 8, 1)
    loaded = tf.saved_model.load(str(saved_path))
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=r"is not compatible with expected shape \[\?,8,8,1\]"
    ):
        loaded.signatures["serve"](images=tf.zeros(shape))


def test_refuses_to_clobber_unless_asked(model, tmp_path):
    path = tmp_path / "saved"
    path.mkdir()
    (path / "keep.txt").write_text("old")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_savedmodel(model, path)
    assert (path / "keep.txt").exists()

    export_savedmodel(model, path, overwrite=True)
    assert not (path / "keep.txt").exists()
    assert (path / "saved_model.pb").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved"]  # no temporaries left
