"""The streamed protocol on a tiny real tfds dataset written in 3 shards, and
its dispatch from `make_protocol` (ImageNet-LT on tfds mock data)."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from kerazoo.data import DatasetNotFoundError, EpochCounter, StreamedProtocol, make_protocol, streamed

N, TEST, CLASSES, SHARDS = 45, 12, 4, 3


class StreamedToy(tfds.core.GeneratorBasedBuilder):
    """Example i: a flat grey PNG of level 4·i (so a crop still shows i), of
    size (20 + i % 7) x (24 + i % 5); labels skewed towards class 0."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
                    "label": tfds.features.ClassLabel(num_classes=CLASSES),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, N), "test": self._generate_examples(N, N + TEST)}

    def _generate_examples(self, start, stop):
        for i in range(start, stop):
            image = np.full((20 + i % 7, 24 + i % 5, 3), 4 * (i - start), np.uint8)
            yield i, {"image": image, "label": min(i % 9, CLASSES - 1)}


@pytest.fixture(scope="module")
def protocol(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    tfds.builder("streamed_toy", data_dir=data_dir).download_and_prepare(
        download_config=tfds.download.DownloadConfig(num_shards=SHARDS)
    )
    return StreamedProtocol("streamed_toy", data_dir=data_dir, image_size=8)


def _ids(images):
    """The example index each (flat) image shows."""
    return np.round(images[:, 4, 4, 0] * 255 / 4).astype(int)


def _epoch(ds, counter, epoch):
    counter.on_epoch_begin(epoch)
    return [(x.numpy(), y.numpy()) for x, y in ds]


def test_labels_counts_and_shape_are_read_without_the_images(protocol):
    expected = np.minimum(np.arange(N) % 9, CLASSES - 1)
    np.testing.assert_array_equal(np.sort(protocol.train_labels), np.sort(expected))
    np.testing.assert_array_equal(protocol.class_counts(), np.bincount(expected))
    assert protocol.class_counts("test").sum() == TEST
    assert (protocol.num_classes, protocol.image_shape) == (CLASSES, (8, 8, 3))
    assert len(protocol._pieces("train", N)) == SHARDS  # one piece per shard here


def test_order_is_a_function_of_seed_and_epoch_and_every_example_comes_once(protocol):
    counter = EpochCounter()
    ds = protocol.train_dataset(5, seed=3, epoch_counter=counter, shuffle_window=8)
    assert int(ds.cardinality()) == N // 5
    third = _epoch(ds, counter, 3)
    first = _epoch(ds, counter, 0)
    again = _epoch(protocol.train_dataset(5, seed=3, epoch_counter=counter, shuffle_window=8), counter, 3)
    other_seed = _epoch(
        protocol.train_dataset(5, seed=4, epoch_counter=counter, shuffle_window=8), counter, 3
    )
    for (x, y), (x2, y2) in zip(third, again):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    orders = [np.concatenate([_ids(x) for x, _ in epoch]) for epoch in (third, first, other_seed)]
    for order in orders:
        assert sorted(order) == list(range(N))  # N = 45 fills 9 batches exactly
    assert not np.array_equal(orders[0], orders[1])
    assert not np.array_equal(orders[0], orders[2])
    # Each image still carries its own label.
    labels = np.concatenate([y for _, y in third])
    np.testing.assert_array_equal(labels, np.minimum(orders[0] % 9, CLASSES - 1))


def test_augmentation_is_keyed_by_seed_epoch_and_position(protocol):
    counter = EpochCounter()
    ds = protocol.train_dataset(9, seed=0, epoch_counter=counter, augment=True)
    first, again = _epoch(ds, counter, 2), _epoch(ds, counter, 2)
    for (x, _), (x2, _) in zip(first, again):
        np.testing.assert_array_equal(x, x2)
        assert x.shape == (9, 8, 8, 3) and 0.0 <= x.min() and x.max() <= 1.0


def test_random_resized_crop_and_center_crop():
    image = tf.reshape(tf.range(30 * 40 * 3, dtype=tf.float32) / (30 * 40 * 3), (30, 40, 3))
    crops = [streamed.random_resized_crop(image, tf.constant([0, k]), 16) for k in range(4)]
    assert all(c.shape == (16, 16, 3) for c in crops)
    assert not np.allclose(crops[0], crops[1])
    np.testing.assert_array_equal(crops[0], streamed.random_resized_crop(image, tf.constant([0, 0]), 16))
    # Shorter side 30 -> 16 / 0.875 = 18 (round), the longer 40 -> 24; centre 16 x 16.
    centre = streamed.center_crop(image, 16)
    expected = tf.image.resize(image, (18, 24), antialias=True)[1:17, 4:20]
    np.testing.assert_allclose(centre, expected, atol=1e-6)


def test_eval_stream_follows_test_labels_and_sample_images(protocol):
    batches = list(protocol.eval_dataset(5))
    assert [len(y) for _, y in batches] == [5, 5, 2]
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), protocol.test_labels)
    np.testing.assert_array_equal(protocol.sample_images(3), batches[0][0][:3])


def test_bad_arguments_are_clear_errors(protocol, tmp_path):
    with pytest.raises(ValueError, match="augment"):
        protocol.train_dataset(5, seed=0, epoch_counter=EpochCounter(), augment="views")
    with pytest.raises(ValueError, match="image_size"):
        StreamedProtocol("streamed_toy", data_dir=str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="imagenet_lt.*not prepared"):
        make_protocol("imagenet_lt", data_dir=str(tmp_path), image_size=8)
    with pytest.raises(ValueError, match="takes no modifiers"):
        make_protocol("imagenet_lt-lt", image_size=8)


def test_make_protocol_streams_imagenet_lt(tmp_path):
    with tfds.testing.mock_data(num_examples=10):
        p = make_protocol("imagenet_lt", data_dir=str(tmp_path), image_size=16)
    assert isinstance(p, StreamedProtocol)
    assert (p.num_classes, p.image_shape, p.test_split) == (1000, (16, 16, 3), "test")
    assert p.class_counts().sum() == 10 and "streamed" in p.notes[0]
