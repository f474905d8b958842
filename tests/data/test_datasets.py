import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from helpers import processes
from kerazoo.data import DatasetNotFoundError, datasets, load, load_arrays


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


def test_require_answers_before_loading_as_load_would(tmp_path):
    with pytest.raises(
        DatasetNotFoundError, match=r"(?s)Dataset 'cifar100' is not prepared in .*download_and_prepare"
    ):
        datasets.require("cifar100", str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="Unknown dataset 'cifar1000'"):
        datasets.require("cifar1000", str(tmp_path))
    datasets.require("cifar100", str(tmp_path), download=True)  # tfds would fetch it
    datasets.require("digits", str(tmp_path))  # built offline on first load


def test_a_prepared_dataset_is_read_without_writing_to_its_directory(tmp_path):
    # A cluster's shared datasets are often mounted read-only.
    load("digits", "test", data_dir=str(tmp_path))
    (tmp_path / ".digits.prepare.lock").unlink()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert len(list(load("digits", "test", data_dir=str(tmp_path)))) == 360
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


class KerazooTestShapes(tfds.core.GeneratorBasedBuilder):
    """A user's own builder (registered as "kerazoo_test_shapes" by its definition)."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = {
            "image": tfds.features.Image(shape=(4, 4, 1)),
            "label": tfds.features.ClassLabel(num_classes=2),
        }
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(features), supervised_keys=("image", "label")
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i in range(4):
            yield i, {"image": np.full((4, 4, 1), 60 * i, np.uint8), "label": i % 2}


def test_a_users_own_builder_not_prepared_is_answered_with_its_module_and_download_true(tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        load("kerazoo_test_shapes", "train", data_dir=str(tmp_path))
    message = str(error.value)
    assert f"It is your own builder (module {__name__}): prepare it with --set download=true" in message
    assert "internet" not in message
    assert len(load("kerazoo_test_shapes", "train", data_dir=str(tmp_path), download=True)) == 4


def test_unknown_dataset_name_is_a_clear_error():
    with pytest.raises(DatasetNotFoundError, match="not a tensorflow-datasets builder"):
        load("no_such_dataset_xyz", "train")


# Downloading (kerazoo.data.datasets._require_download_hosts).
import socket  # noqa: E402
import time  # noqa: E402


def _closed_local_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_through_an_unreachable_proxy_fails_within_seconds(tmp_path, monkeypatch):
    # tfds' downloader would retry the proxy for about 200 s.
    port = _closed_local_port()
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("no_proxy", raising=False)
    started = time.monotonic()
    with pytest.raises(DatasetNotFoundError, match=f"download=true, but 127.0.0.1:{port} is unreachable"):
        load("cifar10", "train", data_dir=tmp_path, download=True)
    assert time.monotonic() - started < 15
    assert not any(tmp_path.iterdir())  # nothing half-prepared left behind


def test_download_without_network_fails_within_seconds_with_the_offline_message(tmp_path):
    if datasets._unreachable("www.cs.toronto.edu", 443) is None:
        pytest.skip("this machine reaches the CIFAR-10 host; the test needs it offline")
    started = time.monotonic()
    with pytest.raises(DatasetNotFoundError) as caught:
        load("cifar10", "train", data_dir=tmp_path, download=True)
    assert time.monotonic() - started < 15
    message = str(caught.value)
    assert "download=true, but www.cs.toronto.edu:443 " in message
    assert "on a machine with internet run" in message and "--set data_dir=DIR" in message
    assert "allow the download here" not in message  # it is allowed already


def test_download_hosts_are_those_tfds_would_connect_to(monkeypatch):
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("no_proxy", "www.cs.toronto.edu")
    assert datasets._endpoint("https://www.cs.toronto.edu/x.tar.gz") == ("www.cs.toronto.edu", 443)
    assert datasets._endpoint("https://storage.googleapis.com/x.gz") == ("proxy.example", 3128)
    assert datasets._endpoint("gs://bucket/x.gz") is None


def test_processes_preparing_digits_at_once_in_a_fresh_directory_all_load_it(tmp_path):
    # Seeded like a recipe: tfds names its staging directory with Python's
    # `random`, so unserialised processes shared (and clobbered) one.
    code = (
        "import sys, keras; from kerazoo.data import load_arrays; keras.utils.set_random_seed(0); "
        "print(len(load_arrays('digits', 'train', sys.argv[1])[1]))"
    )
    started = [processes.Process(["-c", code, tmp_path]) for _ in range(3)]
    outputs = [p.communicate(timeout=300) for p in started]
    for process, (stdout, stderr) in zip(started, outputs):
        assert process.returncode == 0, stderr[-2000:]
        assert stdout.split()[-1] == "1437"


# The user's own data (kerazoo.data.user_sources) through the same functions.
from helpers.image_folders import write_image_folders  # noqa: E402


def test_own_image_folders_and_arrays_load_like_a_tfds_dataset(tmp_path):
    root = write_image_folders(tmp_path / "images", domains=("train", "test"), per_class=2)
    ds, info = load("imagefolder", "train", str(root), image_size=8, with_info=True)
    images, labels = next(iter(ds.batch(100)))
    assert images.shape == (6, 8, 8, 3) and images.dtype == tf.float32 and labels.dtype == tf.int32
    assert list(info.features[info.supervised_keys[1]].names) == ["bike", "cup", "pen"]
    assert datasets.num_classes("imagefolder", str(root)) == 3

    x = np.arange(4 * 3 * 3, dtype=np.uint8).reshape(4, 3, 3)
    np.savez(
        tmp_path / "mine.npz",
        x_train=x,
        y_train=np.array([0, 1, 0, 1]),
        x_test=x[:2],
        y_test=np.array([0, 1]),
    )
    test_x, test_y, info = load_arrays("arrays", "test", str(tmp_path / "mine.npz"))
    assert test_x.shape == (2, 3, 3, 1) and list(test_y) == [0, 1]
    assert datasets.num_classes("arrays", str(tmp_path / "mine.npz")) == 2
    with pytest.raises(
        DatasetNotFoundError, match="dataset=arrays has the splits train, test, not 'validation'"
    ):
        load("arrays", "validation", str(tmp_path / "mine.npz"))


def test_unknown_names_point_to_the_own_data_sources():
    with pytest.raises(DatasetNotFoundError, match="use imagefolder or arrays with data_dir"):
        load("my_photos", "train")
