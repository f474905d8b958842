"""`dataset=arrays`: a real .npz file read without pickle, and every bad file's message."""

import numpy as np
import pytest

from kerazoo.data import UserDataError
from kerazoo.data.npz import class_names, read_npz


def arrays(**changes):
    """A valid set of arrays (3 classes, grey 5x5), with `changes` applied (None drops a key)."""
    rng = np.random.default_rng(0)
    values = dict(
        x_train=rng.integers(0, 256, (9, 5, 5), dtype=np.uint8),
        y_train=np.repeat([0, 1, 2], 3),
        x_test=rng.integers(0, 256, (3, 5, 5), dtype=np.uint8),
        y_test=np.array([0, 1, 2]),
        class_names=np.array(["ant", "bee", "cat"]),
    )
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def save(tmp_path, **changes):
    path = tmp_path / "mine.npz"
    np.savez(path, **arrays(**changes))
    return path


def test_arrays_become_float_images_with_their_class_names(tmp_path):
    path = save(tmp_path)
    data = read_npz(path)
    x, y = data.splits["train"]
    assert x.shape == (9, 5, 5, 1) and x.dtype == np.float32 and y.dtype == np.int32
    # uint8 / 255 exactly as tfds' images become float (tf.image.convert_image_dtype).
    np.testing.assert_array_equal(x[..., 0], arrays()["x_train"].astype(np.float32) * np.float32(1 / 255))
    assert data.class_names == ["ant", "bee", "cat"] == class_names(path)
    assert data.info.features["label"].num_classes == 3


def test_without_class_names_classes_are_numbered_and_image_size_resizes(tmp_path):
    path = save(tmp_path, class_names=None, x_test=np.zeros((3, 7, 7, 3), np.uint8))
    data = read_npz(path, image_size=4)
    assert data.class_names == ["0", "1", "2"]
    # Grey train and RGB test arrays are made RGB together.
    assert data.splits["train"][0].shape == (9, 4, 4, 3) and data.splits["test"][0].shape == (3, 4, 4, 3)


def test_a_file_of_objects_is_refused_not_unpickled(tmp_path):
    path = save(tmp_path, class_names=np.array(["ant", 2, None], dtype=object))
    with pytest.raises(UserDataError, match=r"'class_names' cannot be read without pickle.*not dtype=object"):
        read_npz(path)


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            dict(x_test=None),
            r"found class_names, x_train, y_test, y_train; missing x_test\. Save them as np.savez",
        ),
        (dict(X_train=np.zeros(1)), r"unknown X_train"),
        (
            dict(x_train=np.zeros((9, 5, 5))),
            r"'x_train' has dtype float64; store uint8 .*np.round\(x \* 255\)",
        ),
        (
            dict(x_train=np.zeros((9, 5, 5, 2), np.uint8)),
            r"'x_train' has shape \(9, 5, 5, 2\); expected .*C = 1 or 3",
        ),
        (dict(y_train=np.zeros(9)), r"'y_train' has dtype float64 .*integer class indices"),
        (dict(y_train=np.zeros(8, int)), r"'y_train' has 8 labels for 9 images"),
        (dict(y_test=np.array([0, 1, -1])), r"'y_test' holds the label -1"),
        (dict(y_test=np.array([0, 1, 3])), r"test labels must lie in 0..2 .*'ant', 'bee', 'cat'\), found 3"),
        (
            dict(y_train=np.zeros(9, int), y_test=np.zeros(3, int), class_names=None),
            r"only one class \('0'\)",
        ),
        (dict(y_test=np.array([0, 1, 1])), r"class 'cat' has no images in the test split"),
        (
            dict(x_test=np.zeros((3, 6, 6), np.uint8)),
            r"train images are 5x5 .* test images are 6x6 .*set image_size",
        ),
        (dict(class_names=np.array([1, 2, 3])), r"'class_names' has dtype int64 .*one string per class"),
        (
            dict(y_train=np.array([0, 1, 2, 0, 1, 2, 0, 1, 10**9]), class_names=None),
            r"labels reach 1000000000 but only 4 distinct classes occur; .*np.unique\(y, return_inverse=True\)",
        ),
    ],
)
def test_bad_arrays_name_the_problem_and_the_fix(tmp_path, changes, message):
    with pytest.raises(UserDataError, match=message):
        read_npz(save(tmp_path, **changes))


def test_missing_or_unreadable_files_say_what_dataset_arrays_reads(tmp_path):
    with pytest.raises(UserDataError, match=r"does not exist; dataset=arrays reads an .npz file"):
        read_npz(tmp_path / "nope.npz")
    with pytest.raises(UserDataError, match=r"is a folder; .*dataset=imagefolder"):
        read_npz(tmp_path)
    (tmp_path / "bad.npz").write_text("not a zip")
    with pytest.raises(UserDataError, match=r"not a readable .npz file"):
        read_npz(tmp_path / "bad.npz")
