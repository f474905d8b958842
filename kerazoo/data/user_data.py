"""The common form of a dataset the user brings (image folders, a .npz file),
and the checks every such dataset passes before a recipe sees it.

Each reader (`image_folders`, `npz`) turns its files into a `UserData`
through `user_data(...)`, so that the same problems get the same messages
whichever form the data came in: fewer than two classes, a class without
training or test images, labels out of range, train and test images of
different shapes.
"""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from kerazoo.data.errors import UserDataError

SPLITS = ("train", "test")


@dataclasses.dataclass(frozen=True)
class UserInfo:
    """The part of `tfds.core.DatasetInfo` kerazoo reads, for a user's dataset.

    `features` is a real `tfds.features.FeaturesDict` (`image`, `label`:
    a `ClassLabel` with the class names), so code written for tfds datasets
    (`info.features[info.supervised_keys[1]].names`) reads it unchanged.
    `description` says where the data came from, for the run's notes.

    Example:

    ```python
    import numpy as np
    from kerazoo.data.user_data import user_data

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (6, 8, 8, 1), dtype=np.uint8), np.array([0, 1] * 3)
    data = user_data({"train": (x, y), "test": (x[:2], y[:2])}, ["cat", "dog"], "from my arrays", "my arrays")

    info = data.info  # a UserInfo
    print(info.features[info.supervised_keys[1]].names, info.description)
    ```
    """

    features: tfds.features.FeaturesDict
    description: str
    supervised_keys: tuple = ("image", "label")


@dataclasses.dataclass(frozen=True)
class UserData:
    """A user's dataset in memory: `splits["train"]` and `splits["test"]` are
    `(images, labels)`, images float32 (N, H, W, C) in [0, 1] (C = 1 or 3),
    labels int32 (N,) in 0..len(class_names) - 1.

    Example:

    ```python
    import numpy as np
    from kerazoo.data.user_data import user_data

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (6, 8, 8, 1), dtype=np.uint8), np.array([0, 1] * 3)
    data = user_data({"train": (x, y), "test": (x[:2], y[:2])}, ["cat", "dog"], "from my arrays", "my arrays")

    images, labels = data.splits["train"]
    print(images.dtype, data.info.features["label"].names)  # float32 ['cat', 'dog']
    ```
    """

    splits: dict
    class_names: list
    description: str

    @property
    def info(self):
        shape = self.splits["train"][0].shape[1:]
        features = tfds.features.FeaturesDict(
            {
                "image": tfds.features.Image(shape=shape),
                "label": tfds.features.ClassLabel(names=self.class_names),
            }
        )
        return UserInfo(features, self.description)


def user_data(splits, class_names, description, where):
    """A checked `UserData`.

    Args:
        splits: {"train": (images, labels), "test": (images, labels)} with
            images float32 (N, H, W, C) in [0, 1] and integer labels.
        class_names: one name per class; class i is label i.
        description: where the data came from (e.g. "from image folders /data/pets").
        where: how to name the data in messages (e.g. "image folders /data/pets").

    Raises:
        UserDataError: fewer than two classes, labels out of range, a class
            without images in a split, or train and test images of
            different shapes; the message says what to change.

    Example:

    ```python
    import numpy as np
    from kerazoo.data.user_data import user_data

    rng = np.random.default_rng(0)
    x, xt = rng.integers(0, 256, (6, 8, 8, 1), dtype=np.uint8), rng.integers(0, 256, (2, 8, 8, 1), dtype=np.uint8)
    y, yt = np.array([0, 1, 0, 1, 0, 1]), np.array([0, 1])
    data = user_data({"train": (x, y), "test": (xt, yt)}, ["cat", "dog"], "from my arrays", "my arrays")
    ```
    """
    names = [str(n) for n in class_names]
    for split in SPLITS:  # before the class count: a label without a name is the likelier mistake
        labels = np.asarray(splits[split][1])
        if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
            bad = labels[(labels < 0) | (labels >= len(names))]
            raise UserDataError(
                f"{where}: {split} labels must lie in 0..{len(names) - 1} (one per class, "
                f"{len(names)} class{'es' * (len(names) != 1)}: {_names_text(names)}), found {int(bad[0])}. Renumber the "
                "labels, or give one class name per label."
            )
    if len(names) < 2:
        raise UserDataError(
            f"{where}: only one class ({names[0] if names else 'none'!r}); a classifier "
            "needs at least two. Add a folder (or label) per class."
        )
    shapes = {split: splits[split][0].shape[1:] for split in SPLITS}
    if shapes["train"] != shapes["test"]:
        raise UserDataError(
            f"{where}: train images are {_shape_text(shapes['train'])} but test images are "
            f"{_shape_text(shapes['test'])}; set image_size (e.g. --set image_size=32) to "
            "resize both to one square size."
        )
    checked = {}
    for split in SPLITS:
        images, labels = splits[split]
        labels = np.asarray(labels)
        counts = np.bincount(labels, minlength=len(names))
        empty = [names[i] for i in np.flatnonzero(counts == 0)]
        if empty:
            raise UserDataError(
                f"{where}: class{'es' if len(empty) > 1 else ''} {_names_text(empty)} "
                f"{'have' if len(empty) > 1 else 'has'} no images in the {split} split; "
                f"every class needs {split} images. Add some, or remove the class."
            )
        images, labels = np.array(images, np.float32), labels.astype(np.int32)
        # Read-only: readers cache their result, so no caller may change it in place.
        images.flags.writeable = labels.flags.writeable = False
        checked[split] = (images, labels)
    return UserData(checked, names, description)


def common_channels(images):
    """`images` (arrays (..., C), C = 1 or 3) with one channel count: all
    grey stay grey; if any is colour, the grey ones are repeated to RGB.

    One rule for every reader, so a folder with a few grey JPEGs among
    colour ones, or grey test arrays beside colour training arrays, loads.

    Args:
        images: a list of arrays (..., C), C = 1 or 3.

    Example:

    ```python
    import numpy as np
    from kerazoo.data.user_data import common_channels

    grey, colour = common_channels([np.zeros((4, 4, 1)), np.zeros((4, 4, 3))])
    print(grey.shape, colour.shape)  # (4, 4, 3) (4, 4, 3)
    ```
    """
    channels = max(image.shape[-1] for image in images)
    return [np.repeat(image, channels, axis=-1) if image.shape[-1] != channels else image for image in images]


def _shape_text(shape):
    height, width, channels = shape
    return f"{height}x{width} with {channels} channel{'s' if channels > 1 else ''}"


def _names_text(names, limit=5):
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
