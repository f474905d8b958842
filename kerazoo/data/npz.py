"""Your NumPy arrays as a dataset (`dataset=arrays`, `data_dir=path/to/file.npz`).

The file is an `.npz` archive (`np.savez` or `np.savez_compressed`) with
exactly these arrays:

- `x_train`, `x_test`: uint8 pixels 0..255, (N, H, W) for grey images or
  (N, H, W, C) with C = 1 (grey) or 3 (RGB);
- `y_train`, `y_test`: integer labels (N,), 0..num_classes - 1;
- optional `class_names`: a string array, one name per class (default
  "0", "1", ...; then num_classes is the largest label + 1).

It is read with `allow_pickle=False`: a file holding Python objects (an
object array, e.g. `class_names` built from mixed types) is refused rather
than executed. Pixels become float32 x / 255 in [0, 1], exactly as
tensorflow-datasets' uint8 images do. Train and test images of different
sizes need `image_size` (bilinear resize to a square, clipped to [0, 1]);
grey and RGB splits are made RGB together.

Example:

```python
import tempfile
from pathlib import Path
import numpy as np
from kerazoo.data.npz import read_npz

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
data = read_npz(path)
images, labels = data.splits["train"]
```
"""

import os
import zipfile

import numpy as np

from kerazoo.data import transforms
from kerazoo.data.errors import UserDataError
from kerazoo.data.user_data import SPLITS, common_channels, user_data

REQUIRED = ("x_train", "y_train", "x_test", "y_test")
OPTIONAL = ("class_names",)
SAVE_HINT = "np.savez(path, x_train=..., y_train=..., x_test=..., y_test=..., class_names=...)"


def read_npz(path, image_size=None):
    """The `UserData` of an `.npz` file (see the module docstring).

    Args:
        path: the `.npz` file.
        image_size: resize every image to this square size; None keeps the
            arrays' size, which must then be the same in both splits.

    Raises:
        UserDataError: a missing or unreadable file, missing or unknown
            keys, object arrays, images or labels of the wrong dtype or
            shape, labels out of range, a class-name count that does not fit
            the labels; the message names the problem and the fix.

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

    from kerazoo.data.npz import read_npz

    data = read_npz(path, image_size=16)
    images, labels = data.splits["test"]
    print(images.shape, images.dtype)  # (2, 16, 16, 1) float32
    ```
    """
    path = os.path.expanduser(str(path))
    where = f"arrays {path}"
    with _open(path) as archive:
        keys = set(archive.files)
        missing = [k for k in REQUIRED if k not in keys]
        unknown = sorted(keys - set(REQUIRED) - set(OPTIONAL))
        if missing or unknown:
            raise UserDataError(
                f"{where}: expected the arrays {', '.join(REQUIRED)} (and optionally class_names), "
                f"found {', '.join(sorted(keys)) or 'none'}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(unknown)}" if unknown else "")
                + f". Save them as {SAVE_HINT}."
            )
        arrays = {k: _array(archive, k, where) for k in keys}
    images = common_channels([_images(arrays[f"x_{s}"], f"x_{s}", where) for s in SPLITS])
    labels = [_labels(arrays[f"y_{s}"], f"y_{s}", len(images[i]), where) for i, s in enumerate(SPLITS)]
    names = _class_names(arrays.get("class_names"), labels, where)
    # float32 x * (1/255): tf.image.convert_image_dtype's exact values, as `load` gives.
    images = [x.astype(np.float32) * np.float32(1.0 / 255.0) for x in images]
    if image_size:
        images = [transforms.resize(x, image_size) for x in images]
    splits = {s: (x, y) for s, x, y in zip(SPLITS, images, labels)}
    channels = "grey" if images[0].shape[-1] == 1 else "RGB"
    return user_data(splits, names, f"from arrays {path} ({channels})", where)


def class_names(path):
    """The class names of an `.npz` file, reading only its labels and
    `class_names` (for config checks).

    Args:
        path: the `.npz` file.

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

    from kerazoo.data.npz import class_names

    print(class_names(path))  # ['cat', 'dog']
    ```
    """
    path = os.path.expanduser(str(path))
    where = f"arrays {path}"
    with _open(path) as archive:
        keys = set(archive.files)
        if not {"y_train", "y_test"} <= keys:
            return read_npz(path).class_names  # raises the message about the keys
        labels = [_labels(_array(archive, f"y_{s}", where), f"y_{s}", None, where) for s in SPLITS]
        given = _array(archive, "class_names", where) if "class_names" in keys else None
    return _class_names(given, labels, where)


def _open(path):
    if not os.path.exists(path):
        raise UserDataError(
            f"data_dir '{path}' does not exist; dataset=arrays reads an .npz file saved as {SAVE_HINT}."
        )
    if os.path.isdir(path):
        raise UserDataError(
            f"data_dir '{path}' is a folder; dataset=arrays reads an .npz file "
            "(for image folders use dataset=imagefolder)."
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise UserDataError(
            f"data_dir '{path}' is not a readable .npz file ({error}); save it with {SAVE_HINT}."
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # np.save's one array
        raise UserDataError(
            f"data_dir '{path}' holds one array ({archive.shape}, saved by np.save), not the .npz "
            f"archive of named arrays dataset=arrays reads; save them with {SAVE_HINT}."
        )
    return archive


def _array(archive, key, where):
    try:
        return archive[key]
    except ValueError as error:  # object arrays need pickle
        raise UserDataError(
            f"{where}: '{key}' cannot be read without pickle ({error}); store plain arrays: "
            "numbers, or strings for class_names (np.array(['cat', 'dog']), not dtype=object)."
        ) from None


def _images(x, key, where):
    if x.dtype != np.uint8:
        raise UserDataError(
            f"{where}: '{key}' has dtype {x.dtype}; store uint8 pixels 0..255 (floats in [0, 1]: "
            "np.round(x * 255).astype(np.uint8))."
        )
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise UserDataError(
            f"{where}: '{key}' has shape {x.shape}; expected (N, H, W) grey images or "
            "(N, H, W, C) with C = 1 or 3."
        )
    return x


def _labels(y, key, count, where):
    if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1:
        raise UserDataError(
            f"{where}: '{key}' has dtype {y.dtype} and shape {y.shape}; expected integer class "
            "indices (N,) (np.unique(names, return_inverse=True)[1] turns names into indices)."
        )
    if count is not None and len(y) != count:
        raise UserDataError(f"{where}: '{key}' has {len(y)} labels for {count} images; give one per image.")
    if len(y) and y.min() < 0:
        raise UserDataError(
            f"{where}: '{key}' holds the label {int(y.min())}; labels are class indices 0..num_classes - 1."
        )
    return y.astype(np.int64)


def _class_names(given, labels, where):
    if given is None:
        largest = max(int(y.max()) if len(y) else -1 for y in labels)
        present = len(np.unique(np.concatenate([np.asarray(y).ravel() for y in labels])))
        # A stray huge id would otherwise allocate a name per missing class
        # (10**9 exhausted the memory without a message).
        if largest >= max(1000, 10 * present):
            raise UserDataError(
                f"{where}: labels reach {largest} but only {present} distinct classes occur; labels "
                "are class ids 0..C-1. Renumber them (np.unique(y, return_inverse=True)) or give "
                "class_names."
            )
        return [str(i) for i in range(largest + 1)]
    if given.ndim != 1 or given.dtype.kind not in "US":
        raise UserDataError(
            f"{where}: 'class_names' has dtype {given.dtype} and shape {given.shape}; expected "
            "one string per class (np.array(['cat', 'dog']))."
        )
    return [n.decode() if isinstance(n, bytes) else str(n) for n in given.tolist()]
