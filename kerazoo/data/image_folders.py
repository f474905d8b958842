"""Your images as a dataset (`dataset=imagefolder`, `data_dir=root`).

Two layouts, told apart by the folder names directly under `root`:

- `root/train/<class>/<image>` and `root/test/<class>/<image>`: the splits
  are the folders (any other folder beside them is read as a split too, and
  its classes count).
- `root/<class>/<image>`: every class folder is split for you, stratified
  and seeded: round(20 %) of each class's images (at least one) are the test
  split, the rest the training split, with seed 0 whatever the run's seed,
  as the `digits` builder's fixed 80/20 split, so every run evaluates on the
  same images. A class needs at least two images.

Class indices are the sorted class-folder names. Images are `.png`, `.jpg`
or `.jpeg` files, read by tensorflow-datasets' `tfds.folder_dataset.ImageFolder`
(which reads `root/<split>/<class>/<image>` natively; the one-level layout is
shown to it through a temporary directory holding one symbolic link). They
keep the channels of the files: all grey images give one channel; if any
image is colour, grey ones are repeated to RGB; an alpha channel is dropped.
Images of different sizes need `image_size`: each is then resized (bilinear,
clipped to [0, 1]) to an `image_size` square.

Example:

```python
import tempfile
from pathlib import Path
import numpy as np
from PIL import Image
from kerazoo.data.image_folders import read_image_folders

root = Path(tempfile.mkdtemp())
rng = np.random.default_rng(0)
for split in ("train", "test"):
    for name in ("cat", "dog"):
        (root / split / name).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / split / name / f"{i}.png")
data = read_image_folders(root, image_size=8)  # root/train/cat/*.png, root/test/dog/*.png, ...
images, labels = data.splits["train"]
print(images.shape, labels)
```
"""

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from kerazoo.data import splits as splits_lib
from kerazoo.data.errors import UserDataError
from kerazoo.data.user_data import SPLITS, common_channels, user_data

EXTENSIONS = (".png", ".jpg", ".jpeg")  # the files tfds' ImageFolder reads
HOLDOUT_FRACTION = 0.2
HOLDOUT_SEED = 0
LAYOUTS = (
    "root/<class>/<image> (20 % of each class held out for testing) or "
    "root/train/<class>/<image> with root/test/<class>/<image>"
)


def read_image_folders(root, image_size=None):
    """The `UserData` of the image folders under `root` (see the module docstring).

    Args:
        root: the folder holding the class folders or the `train`/`test` folders.
        image_size: resize every image to this square size; None keeps the
            files' size, which must then be the same for every image.

    Raises:
        UserDataError: a missing folder, a class folder without images, a
            class with a single image (one-level layout), only one class,
            images of different sizes without `image_size`, an unreadable
            image; the message names the problem and the fix.

    Example:

    ```python
    import tempfile
    from pathlib import Path
    import numpy as np
    from PIL import Image

    root = Path(tempfile.mkdtemp())  # root/<class>/<image>
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (root / name).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / name / f"{i}.png")

    from kerazoo.data.image_folders import read_image_folders

    data = read_image_folders(root)  # no train/test folders: a seeded hold-out
    images, labels = data.splits["train"]
    print(images.shape, data.info.features["label"].names)
    ```
    """
    root = os.path.expanduser(str(root))
    where = f"image folders {root}"
    if layout(root) == "splits":
        builder = image_folder(root)
        arrays = read_splits(builder, SPLITS, image_size, where, root)
        names = list(builder.info.features["label"].names)
        text = "root/train/<class>/<image> and root/test/<class>/<image>"
    else:
        with _one_split_view(root) as view:
            builder = image_folder(view)
            ((images, labels),) = read_splits(
                builder, ["all"], image_size, where, os.path.join(view, "all")
            ).values()
        names = list(builder.info.features["label"].names)
        arrays = _hold_out(images, labels, names, where)
        text = (
            f"root/<class>/<image>; a stratified hold-out of {HOLDOUT_FRACTION:.0%} per class "
            f"(seed {HOLDOUT_SEED}) is the test split"
        )
    channels = "grey" if arrays["train"][0].shape[-1] == 1 else "RGB"
    return user_data(arrays, names, f"from image folders {root} ({text}; {channels})", where)


def class_names(root):
    """The class names of the image folders under `root`, from the folder
    names only (no image is read): for config checks.

    Args:
        root: the folder holding the class folders or the `train`/`test` folders.

    Example:

    ```python
    import tempfile
    from pathlib import Path
    import numpy as np
    from PIL import Image

    root = Path(tempfile.mkdtemp())  # root/<class>/<image>
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (root / name).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / name / f"{i}.png")

    from kerazoo.data.image_folders import class_names

    print(class_names(root))  # ['cat', 'dog']
    ```
    """
    root = os.path.expanduser(str(root))
    if layout(root) == "splits":
        return list(image_folder(root).info.features["label"].names)
    return _subfolders(root)


def image_folder(root):
    """`tfds.folder_dataset.ImageFolder` over `root/<split>/<class>/<image>`,
    keeping each file's own channels (tfds' default converts every image to RGB).

    Args:
        root: a folder of `<split>/<class>/<image>` files.

    Example:

    ```python
    import tempfile
    from pathlib import Path
    import numpy as np
    from PIL import Image

    root = Path(tempfile.mkdtemp())
    (root / "train").mkdir()
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (root / "train" / name).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / "train" / name / f"{i}.png")

    from kerazoo.data.image_folders import image_folder

    builder = image_folder(root)
    print(builder.info.splits["train"].num_examples)  # 6
    ```
    """
    return tfds.folder_dataset.ImageFolder(str(root), shape=(None, None, None))


def _undecodable(base, most=5):
    # Only after tf.data failed, which names no file: decode each in turn.
    bad = []
    for path in sorted(p for p in base.rglob("*") if p.suffix.lower() in EXTENSIONS):
        try:
            tf.io.decode_image(tf.io.read_file(str(path)), expand_animations=False)
        except tf.errors.InvalidArgumentError:
            bad.append(str(path.relative_to(base)))
            if len(bad) == most:
                break
    return bad


def read_splits(builder, splits, image_size, where, base):
    """{split: (images, labels)} of an `ImageFolder` builder: float32 images
    in [0, 1] with common channels, resized to `image_size` squares if given,
    else all of one size; int64 labels. `base` is the folder that file names
    in messages are shown relative to.

    Args:
        builder: an `ImageFolder` builder (`image_folder`).
        splits: the split names to read.
        image_size: None, or the side images are resized to.
        where: how messages name the data.
        base: the folder file names in messages are relative to.

    Example:

    ```python
    import tempfile
    from pathlib import Path
    import numpy as np
    from PIL import Image

    root = Path(tempfile.mkdtemp())
    (root / "train").mkdir()
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (root / "train" / name).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / "train" / name / f"{i}.png")

    from kerazoo.data.image_folders import image_folder, read_splits

    splits = read_splits(image_folder(root), ["train"], 4, "my folders", root)
    images, labels = splits["train"]
    print(images.shape, labels)  # (6, 4, 4, 1) ...
    ```
    """

    def prepare(example):
        image = example["image"]
        # Drop an alpha channel: grey + alpha -> grey, RGBA -> RGB.
        image = image[..., : tf.where(tf.shape(image)[-1] <= 2, 1, 3)]
        if image_size:
            image = tf.image.convert_image_dtype(image, tf.float32)
            image = tf.clip_by_value(tf.image.resize(image, (image_size, image_size)), 0.0, 1.0)
        return image, example["label"], example["image/filename"]

    read = {}
    for split in splits:
        if split not in builder.info.splits or not builder.info.splits[split].num_examples:
            # tfds would build its file list from an empty float array and
            # fail deep inside with "ReadFile ... type float32".
            raise UserDataError(
                f"{where}: the '{split}' folder holds no {'/'.join(EXTENSIONS)} images in its class "
                f"folders; images must lie directly in {split}/<class>/ (folders nested deeper, such "
                f"as {split}/<class>/images/, are not read): move them up, or point data_dir at the "
                "folder that holds the class folders."
            )
        ds = builder.as_dataset(split=split, shuffle_files=False).map(
            prepare, num_parallel_calls=tf.data.AUTOTUNE
        )
        try:
            read[split] = list(zip(*ds.as_numpy_iterator()))
        except tf.errors.InvalidArgumentError as error:
            bad = _undecodable(Path(base))
            named = (
                f"{', '.join(bad)} cannot be decoded" if bad else f"an image in '{split}' cannot be decoded"
            )
            # TensorFlow's own words, without its graph-node and iterator prefixes.
            reason = error.message.splitlines()[0].rsplit(": ", 1)[-1]
            apple = bad and all(Path(name).name.startswith("._") for name in bad)
            fix = (
                f"they are macOS metadata files (from a zip or a USB disk): delete them, e.g. "
                f"find {base} -name '._*' -delete."
                if apple
                else "Remove or re-save it."
            )
            raise UserDataError(
                f"{where}: {named} ({reason}); every {'/'.join(EXTENSIONS)} file must be a readable "
                f"image. {fix}"
            ) from None
    images = common_channels([image for split in splits for image in read[split][0]])
    if not image_size:
        _require_one_size(images, [name for split in splits for name in read[split][2]], where, base)
    arrays, start = {}, 0
    for split in splits:
        count = len(read[split][1])
        stacked = np.stack(images[start : start + count])
        if stacked.dtype == np.uint8:
            # x * float32(1/255): tf.image.convert_image_dtype's exact values, as `load` gives.
            stacked = stacked.astype(np.float32) * np.float32(1.0 / 255.0)
        arrays[split] = (stacked, np.asarray(read[split][1], np.int64))
        start += count
    return arrays


def layout(root):
    """`"splits"` (root/train, root/test) or `"classes"` (root/<class>), after
    checking that the folders can hold a dataset; raises `UserDataError` if not.

    Args:
        root: the data's folder.

    Example:

    ```python
    import tempfile
    from pathlib import Path
    import numpy as np
    from PIL import Image

    root = Path(tempfile.mkdtemp())  # root/<class>/<image>
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (root / name).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / name / f"{i}.png")

    from kerazoo.data.image_folders import layout

    print(layout(root))  # classes
    ```
    """
    if not os.path.exists(root):
        raise UserDataError(
            f"data_dir '{root}' does not exist. Point data_dir at the folder holding your "
            f"images as {LAYOUTS}."
        )
    if not os.path.isdir(root):
        raise UserDataError(
            f"data_dir '{root}' is a file, not a folder; dataset=imagefolder reads {LAYOUTS} "
            "(for a .npz file use dataset=arrays)."
        )
    folders = _subfolders(root)
    _refuse_system_folders(root, folders)
    given = [s for s in SPLITS if s in folders]
    if given:
        missing = [s for s in SPLITS if s not in folders]
        if missing:
            raise UserDataError(
                f"image folders {root} have a '{given[0]}' folder but no '{missing[0]}' folder: "
                f"give both {root}/train/<class>/<image> and {root}/test/<class>/<image>, or put "
                f"every class folder directly in {root} to have 20 % per class held out for testing."
            )
        for split in SPLITS:
            _refuse_system_folders(os.path.join(root, split), _subfolders(os.path.join(root, split)))
            if not _subfolders(os.path.join(root, split)):
                raise UserDataError(
                    f"image folders {root}: '{split}' holds no class folders; expected "
                    f"{root}/{split}/<class>/<image>."
                )
        return "splits"
    if not folders:
        loose = len(_images(root))
        raise UserDataError(
            f"image folders {root}: no class folders"
            + (f" ({loose} images lie directly in it)" if loose else "")
            + f"; put each class's images in a folder of its own: {LAYOUTS}."
        )
    for name in folders:
        folder = os.path.join(root, name)
        if not _images(folder):
            nested = _subfolders(folder)
            raise UserDataError(
                f"image folders {root}: class folder '{name}' has no {'/'.join(EXTENSIONS)} images"
                + (
                    f" but folders ({', '.join(nested[:3])}): for train/test splits name them "
                    f"'train' and 'test' (domain folders: BNM's source_domain/target_domain)"
                    if nested
                    else "; add images or remove the folder"
                )
                + "."
            )
    return "classes"


def _hold_out(images, labels, names, where):
    counts = np.bincount(labels, minlength=len(names))
    single = [names[i] for i in np.flatnonzero(counts < 2)]
    if single:
        raise UserDataError(
            f"{where}: class '{single[0]}' has only {counts[names.index(single[0])]} image; the "
            f"automatic train/test split needs at least two per class. Add images, or give the "
            "splits yourself as root/train/<class>/<image> and root/test/<class>/<image>."
        )
    train, test = splits_lib.holdout_indices(labels, HOLDOUT_FRACTION, HOLDOUT_SEED)
    return {"train": (images[train], labels[train]), "test": (images[test], labels[test])}


def _require_one_size(images, filenames, where, base):
    sizes = {}
    for image, name in zip(images, filenames):
        sizes.setdefault(image.shape[:2], name)
    if len(sizes) > 1:
        (a, first), (b, second) = list(sizes.items())[:2]
        shown = [os.path.relpath(os.fsdecode(n), base) for n in (first, second)]
        raise UserDataError(
            f"{where}: the images differ in size ({len(sizes)} sizes, e.g. {shown[0]} is "
            f"{a[0]}x{a[1]} and {shown[1]} is {b[0]}x{b[1]}); set image_size (e.g. --set "
            "image_size=32) to resize every image to one square size."
        )


@contextlib.contextmanager
def _one_split_view(root):
    """A temporary folder whose only entry `all` links to `root`: ImageFolder,
    which expects root/<split>/<class>/<image>, reads root/<class>/<image>
    through it as the one split 'all' (it lists folders and reads files
    through the link; nothing is copied)."""
    with tempfile.TemporaryDirectory(prefix="kerazoo-imagefolder-") as view:
        os.symlink(os.path.abspath(root), os.path.join(view, "all"), target_is_directory=True)
        yield view


def _refuse_system_folders(path, folders):
    # Read as classes: a Jupyter checkpoint folder silently became class
    # '.ipynb_checkpoints'; macOS's __MACOSX got advice about train/test.
    found = [f for f in folders if f.startswith(".") or f == "__MACOSX"]
    if found:
        raise UserDataError(
            f"image folders {path}: {', '.join(repr(f) for f in found)} would be read as a class, but "
            "looks like a system folder (hidden, or macOS's __MACOSX from a zip file); delete it."
        )


def _subfolders(path):
    return sorted(e.name for e in os.scandir(path) if e.is_dir())


def _images(path):
    return [e.name for e in os.scandir(path) if e.is_file() and e.name.lower().endswith(EXTENSIONS)]
