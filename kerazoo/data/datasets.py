"""Loading through tensorflow-datasets, and the offline `digits` builder
(the offline `glyphs` builder lives in `glyphs.py`).

Every dataset, bundled or real, goes through `tfds`: the offline protocols use
exactly the code path that CIFAR-100 or ImageNet-LT would. Real datasets are
never downloaded implicitly; when one is missing the error says where we
looked and how to prepare it. The user's own data (`imagefolder`: image
folders read by tfds' ImageFolder; `arrays`: an .npz file) is served by
the same `load` / `load_arrays` / `num_classes` (see `user_sources`).
"""

import contextlib
import os
import socket
import threading
import urllib.parse
import urllib.request

import filelock
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from kerazoo.data import user_sources
from kerazoo.data.errors import DatasetNotFoundError
from kerazoo.inputs import digits_to_uint8
from kerazoo.protocol_names import is_user_source

# tfds otherwise asks the GCE metadata server for credentials on first use.
os.environ.setdefault("NO_GCE_CHECK", "true")


def default_data_dir():
    """`$KERAZOO_DATA_DIR`, else tfds' own default (`~/tensorflow_datasets`).

    Example:

    ```python
    from kerazoo.data.datasets import default_data_dir

    print(default_data_dir())
    ```
    """
    return os.environ.get("KERAZOO_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


class Digits(tfds.core.GeneratorBasedBuilder):
    """scikit-learn's bundled 8x8 handwritten digits as a tfds dataset.

    1,797 grey images, 10 classes. Pixel values 0..16 are stored as uint8
    0..255. The split is a stratified 80/20 split with a fixed seed (0), part
    of the builder's version: train 1,437 images, test 360 (35 to 37 per class).
    Nothing is downloaded.

    Example:

    ```python
    import tensorflow_datasets as tfds
    import kerazoo.data  # registers the builder
    ds = tfds.load("digits", split="train", as_supervised=True)
    ```
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Stratified 80/20 split, seed 0."}
    SPLIT_SEED = 0
    TEST_FRACTION = 0.2

    def _info(self):
        return self.dataset_info_from_configs(
            description="scikit-learn's bundled 8x8 handwritten digits.",
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(8, 8, 1)),
                    "label": tfds.features.ClassLabel(names=[str(d) for d in range(10)]),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html",
        )

    def _split_generators(self, dl_manager):
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        bunch = load_digits()
        images = digits_to_uint8(bunch.images)  # kerazoo.zoo.preprocess does the same
        labels = bunch.target.astype(np.int64)
        train_idx, test_idx = train_test_split(
            np.arange(len(labels)),
            test_size=self.TEST_FRACTION,
            stratify=labels,
            random_state=self.SPLIT_SEED,
        )
        return {
            "train": self._generate_examples(images, labels, train_idx),
            "test": self._generate_examples(images, labels, test_idx),
        }

    def _generate_examples(self, images, labels, indices):
        for i in sorted(indices):
            yield int(i), {"image": images[i][..., None], "label": labels[i]}


# Builders we can prepare without a network: preparing them on first use is safe.
_OFFLINE_BUILDERS = {"digits", "glyphs"}


def _missing_dataset_message(name, data_dir, cause, download=False):
    module = _user_builder_module(name)
    if module:
        # Its data come from the user's own code (docs/data.md), not a
        # download: tfds' instructions below would not fit.
        return (
            f"Dataset '{name}' is not prepared in {data_dir} ({cause}). It is your own builder "
            f"(module {module}): prepare it with --set download=true, or in Python: import {module}; "
            f"tfds.builder('{name}', data_dir='{data_dir}').download_and_prepare()."
        )
    return (
        f"Dataset '{name}' is not prepared in {data_dir} ({cause}).\n"
        "This machine may have no internet, so kerazoo never downloads "
        "implicitly. To provide it:\n"
        "  1. on a machine with internet run\n"
        f'       python -c "import tensorflow_datasets as tfds; '
        f"tfds.builder('{name}', data_dir='DIR').download_and_prepare()\"\n"
        "     (datasets with manual downloads, e.g. imagenet2012 or "
        "imagenet_lt, also need the archives in DIR/downloads/manual);\n"
        "  2. copy DIR here and pass it: --set data_dir=DIR "
        "(or set KERAZOO_DATA_DIR=DIR)"
        + (".\n" if download else ";\n  or allow the download here with --set download=true.")
    )


def _user_builder_module(name):
    """The module of builder `name` when it is neither tfds' nor kerazoo's, else None."""
    try:
        module = tfds.builder_cls(name.split(":")[0]).__module__
    except Exception:  # unknown or unloadable: tfds' message covers it
        return None
    return None if module.split(".")[0] in ("tensorflow_datasets", "kerazoo") else module


# Seconds a download host gets to accept a connection before we call this
# machine offline. tfds' downloader itself retries a failed connection 10
# times with exponential back-off: about 200 s before it gives up.
_CONNECT_TIMEOUT = 3.0
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}


def _require_download_hosts(name, data_dir):
    """Raise `DatasetNotFoundError` within seconds when tfds would have to
    download `name` but cannot reach a host it would download from.

    The hosts are those of the builder's registered URLs (`url_infos`), or
    the proxy the environment names for them, which is where tfds'
    downloader (requests, or urllib for ftp) connects; we contact nothing
    else. Nothing is checked when the dataset is prepared already, when tfds
    does not know it (`tfds.load` says so), or when it needs manual
    downloads (tfds then reads the manual directory, and says what is
    missing there).
    """
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        return
    if builder.is_prepared() or builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
        return
    endpoints = {_endpoint(url) for url in builder.url_infos or ()} - {None}
    for host, port in sorted(endpoints):
        problem = _unreachable(host, port)
        if problem:
            raise DatasetNotFoundError(
                _missing_dataset_message(
                    name, data_dir, f"download=true, but {host}:{port} {problem}", download=True
                )
            )


def _endpoint(url):
    """`(host, port)` a download of `url` connects to: the proxy the
    environment names for it unless `no_proxy` exempts its host, else the
    host itself. None when that is not a network address we know the port of
    (a `gs://` or file URL, a proxy scheme without a default port)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS:
        return None
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if proxy and not urllib.request.proxy_bypass(parts.hostname):
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    return (parts.hostname, port) if parts.hostname and port else None


def _unreachable(host, port):
    """Why no TCP connection to host:port opens within `_CONNECT_TIMEOUT`
    seconds, or None if one does. The attempt runs in a daemon thread, since
    name resolution ignores socket timeouts."""
    outcome = []

    def connect():
        try:
            socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT).close()
            outcome.append(None)
        except OSError as e:
            outcome.append(f"is unreachable ({e})")

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(2 * _CONNECT_TIMEOUT)  # name resolution, then the connection
    return outcome[0] if outcome else f"did not answer within {2 * _CONNECT_TIMEOUT:.0f} s"


# What every kerazoo model expects as input (and what `load` yields).
PIXEL_FORMAT = "float32 (H, W, C) pixels in [0, 1] (uint8 / 255), no mean/std normalisation"


def _one_preparer(data_dir, name):
    """A lock on preparing `name` in `data_dir`, held across processes.

    Processes that prepare the same dataset at once (parallel tests, runs
    started together on a fresh data_dir) would otherwise share tfds'
    staging directory, whose name comes from Python's `random` and so
    repeats in seeded processes: they overwrote each other's files. The
    waiting process then finds the dataset prepared and only reads it.
    """
    os.makedirs(data_dir, exist_ok=True)
    return filelock.FileLock(os.path.join(data_dir, f".{name}.prepare.lock"))


def load(name, split, data_dir=None, *, download=False, with_info=False, image_size=None):
    """Load a split as a `tf.data.Dataset` of `(image, label)`.

    Images are float32 in [0, 1] with shape (H, W, C) (`PIXEL_FORMAT`);
    labels are int32.

    Args:
        name: a tfds name (`"digits"`, `"cifar100"`, `"imagenet_lt"`, ...),
            optionally with a version or config (`"cifar100:3.0.2"`); or a
            user source (`kerazoo.protocol_names.USER_SOURCES`: `"imagefolder"`, `"arrays"`),
            whose splits are `"train"` and `"test"`.
        split: a tfds split string (`"train"`, `"test"`, `"train[:10%]"`).
        data_dir: where prepared datasets live; default `default_data_dir()`.
            For a user source: the image folder or the `.npz` file (required).
        download: allow tfds to download and prepare a missing dataset.
        with_info: also return the `tfds.core.DatasetInfo` (for a user
            source a `user_data.UserInfo` with the same `features`).
        image_size: resize every image to this square size (bilinear,
            clipped to [0, 1]); needed when a dataset's images differ in size.

    Raises:
        DatasetNotFoundError: the dataset is not prepared in `data_dir` and
            `download` is False, or it is True but a host tfds would download
            from cannot be reached. The message says how to provide it.
        UserDataError: (a `DatasetNotFoundError`) a user source is missing or
            unusable; the message says what to fix.

    Example:

    ```python
    import kerazoo.data

    ds = kerazoo.data.load("digits", "test")  # prepared from sklearn's digits on first use
    image, label = next(iter(ds))
    print(image.shape, image.dtype, int(label))  # (8, 8, 1) float32 ...
    ```
    """
    if is_user_source(name):
        images, labels, info = load_arrays(name, split, data_dir, image_size=image_size)
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
        return (ds, info) if with_info else ds
    data_dir = data_dir or default_data_dir()
    base_name = name.split(":")[0].split("/")[0]
    # A prepared dataset is only read: no lock, so a read-only data_dir works.
    prepare = (download or base_name in _OFFLINE_BUILDERS) and not is_prepared(name, data_dir)
    if prepare and download and base_name not in _OFFLINE_BUILDERS:
        _require_download_hosts(name, data_dir)
    try:
        with _one_preparer(data_dir, base_name) if prepare else contextlib.nullcontext():
            ds, info = tfds.load(
                name, split=split, data_dir=data_dir, download=prepare, as_supervised=True, with_info=True
            )
    except (AssertionError, FileNotFoundError, tfds.core.registered.DatasetNotFoundError) as e:
        if isinstance(e, tfds.core.registered.DatasetNotFoundError):
            raise DatasetNotFoundError(
                f"Unknown dataset '{name}': it is not a tensorflow-datasets "
                "builder. Check the spelling (see tfds.list_builders()); for your own "
                "images or arrays use imagefolder or arrays with data_dir (docs/own_data.md)."
            ) from None
        raise DatasetNotFoundError(_missing_dataset_message(name, data_dir, str(e).splitlines()[0])) from None

    def normalise(image, label):
        return tf.image.convert_image_dtype(image, tf.float32), tf.cast(label, tf.int32)

    ds = ds.map(normalise, num_parallel_calls=tf.data.AUTOTUNE)
    if image_size:
        # Per image, so that images of different sizes (ImageNet) batch.
        ds = ds.map(
            lambda x, y: (tf.clip_by_value(tf.image.resize(x, (image_size, image_size)), 0.0, 1.0), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return (ds, info) if with_info else ds


def load_arrays(name, split, data_dir=None, *, download=False, image_size=None):
    """Load a whole split into memory: `(images, labels, info)`.

    images: float32 (N, H, W, C) in [0, 1]; labels: int32 (N,). Meant for
    datasets that fit in memory (digits, CIFAR, a user source). Arguments
    as `load`'s.

    Args:
        name, split, data_dir, download, image_size: as `load`'s.

    Example:

    ```python
    import kerazoo.data

    images, labels, info = kerazoo.data.load_arrays("digits", "test")
    print(images.shape, labels[:5])
    ```
    """
    if is_user_source(name):
        data = user_sources.read(name, data_dir, image_size)
        if split not in data.splits:
            raise DatasetNotFoundError(
                f"dataset={name} has the splits {', '.join(data.splits)}, not '{split}'."
            )
        return (*data.splits[split], data.info)
    ds, info = load(name, split, data_dir, download=download, with_info=True, image_size=image_size)
    images, labels = [], []
    for x, y in ds.batch(4096).as_numpy_iterator():
        images.append(x)
        labels.append(y)
    if not images:
        raise DatasetNotFoundError(f"Split '{split}' of '{name}' is empty.")
    return np.concatenate(images), np.concatenate(labels), info


def is_prepared(name, data_dir=None):
    """Whether the tfds dataset `name` is prepared in `data_dir` (nothing is
    read or written; False for an unknown name).

    Args:
        name: a tfds name, optionally with a version or config.
        data_dir: the tfds data directory; default `default_data_dir()`.

    Example:

    ```python
    from kerazoo.data.datasets import is_prepared

    print(is_prepared("cifar100", "/nonexistent"))  # False
    ```
    """
    try:
        return tfds.builder(name, data_dir=data_dir or default_data_dir()).is_prepared()
    except tfds.core.registered.DatasetNotFoundError:
        return False


def require(name, data_dir=None, download=False):
    """Raise the message `load` would give if `name` cannot be loaded from
    `data_dir` (not prepared, and neither built offline nor downloadable);
    a user source is checked where it is read.

    Args:
        name: a tfds name, or a user source (not checked here).
        data_dir: the tfds data directory; default `default_data_dir()`.
        download: whether a missing dataset would be downloaded.

    Raises:
        DatasetNotFoundError: the message says how to provide the dataset.

    Example:

    ```python
    from kerazoo.data import DatasetNotFoundError
    from kerazoo.data.datasets import require

    require("digits")  # built offline when first loaded
    try:
        require("cifar100", "/nonexistent")
    except DatasetNotFoundError as error:
        print(error)  # Dataset 'cifar100' is not prepared in /nonexistent ...
    ```
    """
    base_name = name.split(":")[0].split("/")[0]
    if is_user_source(name) or download or base_name in _OFFLINE_BUILDERS:
        return
    data_dir = data_dir or default_data_dir()
    num_classes(name, data_dir)  # an unknown name: its own message
    if not is_prepared(name, data_dir):
        raise DatasetNotFoundError(_missing_dataset_message(name, data_dir, "no prepared version found"))


def num_classes(name, data_dir=None):
    """The number of classes of a tfds dataset, read from its builder's
    metadata without loading or preparing any data (for config checks).

    For a user source (`kerazoo.protocol_names.USER_SOURCES`), `data_dir` is its folder or
    file, and only folder names or labels are read.

    Raises:
        DatasetNotFoundError: `name` is not a tfds builder, or a user source
            is missing or unusable.

    Args:
        name: a tfds name, or a user source.
        data_dir: the tfds data directory, or the user source's folder or file.

    Example:

    ```python
    from kerazoo.data.datasets import num_classes

    print(num_classes("digits"))  # 10
    ```
    """
    if is_user_source(name):
        return user_sources.num_classes(name, data_dir)
    try:
        builder = tfds.builder(name, data_dir=data_dir or default_data_dir())
    except tfds.core.registered.DatasetNotFoundError:
        raise DatasetNotFoundError(
            f"Unknown dataset '{name}': it is not a tensorflow-datasets "
            "builder. Check the spelling (see tfds.list_builders()); for your own "
            "images or arrays use imagefolder or arrays with data_dir (docs/own_data.md)."
        ) from None
    info = builder.info
    return info.features[info.supervised_keys[1]].num_classes
