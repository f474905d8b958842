import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from kerazoo.data import DatasetNotFoundError, load, load_arrays


def test_digits_split_is_stratified_disjoint_and_deterministic():
    train_x, train_y, info = load_arrays("digits", "train")
    test_x, test_y, _ = load_arrays("digits", "test")
    assert train_x.shape == (1437, 8, 8, 1) and test_x.shape == (360, 8, 8, 1)
    assert train_x.dtype == np.float32 and 0.0 <= train_x.min() and train_x.max() <= 1.0
    assert info.features["label"].num_classes == 10
    np.testing.assert_array_equal(np.bincount(test_y) >= 35, True)
    # The split is a partition of the 1,797 bundled images (as a multiset).
    from sklearn.datasets import load_digits

    def rows(images):
        flat = np.round(images.reshape(len(images), -1) * (255 if images.max() <= 1 else 1))
        return sorted(r.astype(np.uint8).tobytes() for r in flat)

    bundled = np.round(load_digits().images * 255 / 16)
    assert rows(np.concatenate([train_x, test_x])) == rows(bundled)
    again_x, again_y, _ = load_arrays("digits", "train")
    np.testing.assert_array_equal(again_x, train_x)
    np.testing.assert_array_equal(again_y, train_y)


def test_real_dataset_goes_through_tfds_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=12):
        ds = load("cifar100", "train", data_dir=str(tmp_path))
        images, labels = next(iter(ds.batch(12)))
    assert images.shape == (12, 32, 32, 3) and images.dtype == tf.float32
    assert labels.dtype == tf.int32
    assert float(tf.reduce_max(images)) <= 1.0


def test_missing_real_dataset_says_where_and_how(tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        load("cifar100", "train", data_dir=str(tmp_path))
    message = str(error.value)
    assert "cifar100" in message and str(tmp_path) in message
    assert "download_and_prepare" in message and "data_dir" in message


def test_unknown_dataset_name_is_a_clear_error():
    with pytest.raises(DatasetNotFoundError, match="not a tensorflow-datasets builder"):
        load("no_such_dataset_xyz", "train")
