"""The datasets a user brings, by name: `imagefolder` and `arrays`.

`kerazoo.data.datasets.load` / `load_arrays` / `num_classes` serve these
names from the user's files (named by `data_dir`) and every other name from
tensorflow-datasets, so every protocol (`imagefolder-lt`,
`arrays-rot-lt`, domain shift, few labels, class-incremental phases) and
every recipe reads them the same way:

- `imagefolder`: `data_dir` is a folder, `root/<class>/<image>` or
  `root/train|test/<class>/<image>` (`kerazoo.data.image_folders`);
- `arrays`: `data_dir` is an `.npz` file with `x_train`, `y_train`,
  `x_test`, `y_test` and optionally `class_names` (`kerazoo.data.npz`).

Reading is cached per (name, path, image_size) while the files stay the same
(their sizes and modification times), since a protocol reads the train and
the test split separately and a recipe may build several protocols.

Example:

```python
import tempfile
from pathlib import Path
import numpy as np
from kerazoo.data import make_protocol

rng = np.random.default_rng(0)
path = Path(tempfile.mkdtemp()) / "mine.npz"
np.savez(
    path,
    x_train=rng.integers(0, 256, (8, 8, 8, 1), dtype=np.uint8),
    y_train=np.array([0, 1] * 4),
    x_test=rng.integers(0, 256, (4, 8, 8, 1), dtype=np.uint8),
    y_test=np.array([0, 1] * 2),
)
p = make_protocol("arrays", data_dir=path)
print(p.train_images.shape, p.num_classes)
```
"""

import functools
import os

from kerazoo.data import image_folders, npz
from kerazoo.data.errors import UserDataError
from kerazoo.protocol_names import USER_SOURCES

IMAGE_FOLDERS, ARRAYS = USER_SOURCES
# name -> (read(path, image_size) -> UserData, class_names(path), what data_dir must be)
_SOURCES = {
    IMAGE_FOLDERS: (
        image_folders.read_image_folders,
        image_folders.class_names,
        f"a folder of images: {image_folders.LAYOUTS}",
    ),
    ARRAYS: (
        npz.read_npz,
        npz.class_names,
        "an .npz file with x_train, y_train, x_test, y_test (optionally class_names)",
    ),
}


def check_location(name, data_dir):
    """Raise `UserDataError` unless `data_dir` names an existing path for
    user source `name` (a cheap check for configs; reading finds the rest).

    Args:
        name: a user source (`"imagefolder"` or `"arrays"`).
        data_dir: its folder or file.

    Example:

    ```python
    import tempfile
    from kerazoo.data.errors import UserDataError
    from kerazoo.data.user_sources import check_location

    check_location("imagefolder", tempfile.mkdtemp())  # an existing folder: fine
    try:
        check_location("arrays", "no/such/file.npz")
    except UserDataError as error:
        print(error)
    ```
    """
    _, _, what = _SOURCES[name]
    if not data_dir:
        raise UserDataError(
            f"dataset={name} reads your data from data_dir, which is not set; set data_dir to "
            f"{what} (e.g. --set data_dir=path/to/{'file.npz' if name == ARRAYS else 'images'})."
        )
    path = os.path.expanduser(str(data_dir))
    if not os.path.exists(path):
        raise UserDataError(f"data_dir '{data_dir}' does not exist; dataset={name} needs {what}.")
    if os.path.isdir(path) != (name == IMAGE_FOLDERS):
        other = ARRAYS if name == IMAGE_FOLDERS else IMAGE_FOLDERS
        raise UserDataError(
            f"data_dir '{data_dir}' is a {'folder' if os.path.isdir(path) else 'file'}; "
            f"dataset={name} needs {what} (for this data_dir use dataset={other})."
        )


def read(name, data_dir, image_size=None):
    """The `user_data.UserData` of user source `name` at `data_dir`, images
    resized to `image_size` squares if given.

    Raises:
        UserDataError: the data is missing or unusable (the message says how to fix it).

    Args:
        name: a user source (`"imagefolder"` or `"arrays"`).
        data_dir: its folder or file.
        image_size: None, or the side images are resized to.

    Example:

    ```python
    import tempfile
    from pathlib import Path
    import numpy as np

    rng = np.random.default_rng(0)
    path = Path(tempfile.mkdtemp()) / "mine.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (6, 8, 8, 1), dtype=np.uint8),
        y_train=np.array([0, 1, 0, 1, 0, 1]),
        x_test=rng.integers(0, 256, (2, 8, 8, 1), dtype=np.uint8),
        y_test=np.array([0, 1]),
        class_names=np.array(["cat", "dog"]),
    )

    from kerazoo.data.user_sources import read

    data = read("arrays", path)
    print(data.splits["train"][0].shape)  # (6, 8, 8, 1)
    ```
    """
    check_location(name, data_dir)
    path = os.path.abspath(os.path.expanduser(str(data_dir)))
    return _read(name, path, image_size or None, _fingerprint(path))


def num_classes(name, data_dir):
    """The class count of user source `name`, from folder names or labels only.

    Args:
        name: a user source (`"imagefolder"` or `"arrays"`).
        data_dir: its folder or file.

    Example:

    ```python
    import tempfile
    from pathlib import Path
    import numpy as np

    rng = np.random.default_rng(0)
    path = Path(tempfile.mkdtemp()) / "mine.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (6, 8, 8, 1), dtype=np.uint8),
        y_train=np.array([0, 1, 0, 1, 0, 1]),
        x_test=rng.integers(0, 256, (2, 8, 8, 1), dtype=np.uint8),
        y_test=np.array([0, 1]),
        class_names=np.array(["cat", "dog"]),
    )

    from kerazoo.data.user_sources import num_classes

    print(num_classes("arrays", path))  # 2
    ```
    """
    check_location(name, data_dir)
    _, class_names, _ = _SOURCES[name]
    return len(class_names(data_dir))


@functools.lru_cache(maxsize=4)
def _read(name, path, image_size, fingerprint):
    reader, _, _ = _SOURCES[name]
    return reader(path, image_size)


def _fingerprint(path):
    """(path, size, mtime) of every file under `path`: changes when the data does."""
    if not os.path.isdir(path):
        stat = os.stat(path)
        return ((path, stat.st_size, stat.st_mtime_ns),)
    entries = []
    for folder, _, files in os.walk(path, followlinks=True):
        for file in files:
            stat = os.stat(os.path.join(folder, file))
            entries.append((os.path.join(folder, file), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(entries))
