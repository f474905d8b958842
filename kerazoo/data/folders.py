"""Domain-adaptation protocols from image folders (Office-31, Office-Home),
which tensorflow-datasets does not provide.

Layout: `root/<domain>/<class>/<image>` (Office-Home as distributed;
for Office-31 move each `<domain>/images/<class>` up to `<domain>/<class>`).
Read offline with `tfds.folder_dataset.ImageFolder`, one split per domain
(`image_folders.read_splits`: the same reading as `dataset=imagefolder`,
channels as in the files); class indices are the sorted class names of all
domains together.
"""

import dataclasses
import os

import numpy as np

from kerazoo.data.errors import UserDataError
from kerazoo.data.image_folders import image_folder, read_splits
from kerazoo.data.protocols import Protocol


def folder_domain_shift(root, source, target, image_size):
    """(source, target) `Protocol`s like `make_domain_shift`'s, from two domain folders.

    The source is labelled (`train_*`, its `test_*` the same images); the
    target's images are its `unlabelled_images` and also its test split, the
    standard transductive protocol of the Office benchmarks. Images are
    resized to `image_size` squares, float32 in [0, 1].

    Args:
        root: the folder holding one folder per domain, each with class folders.
        source: the labelled domain's folder name.
        target: the unlabelled domain's folder name.
        image_size: the side of the square images.

    Example:

    ```python
    import tempfile
    from pathlib import Path
    import numpy as np
    from PIL import Image
    from kerazoo.data.folders import folder_domain_shift

    root = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    for domain in ("amazon", "webcam"):
        for name in ("mug", "pen"):
            (root / domain / name).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)).save(root / domain / name / f"{i}.png")
    source, target = folder_domain_shift(root, "amazon", "webcam", image_size=8)
    print(source.train_images.shape, target.unlabelled_images.shape)  # (4, 8, 8, 3) (4, 8, 8, 3)
    ```
    """
    root = os.path.expanduser(str(root))
    if not os.path.isdir(root):
        raise UserDataError(
            f"data_dir '{root}' is not a folder; domain adaptation reads root/<domain>/<class>/<image>."
        )
    builder = image_folder(root)
    for domain in (source, target):
        if domain not in builder.info.splits:
            raise UserDataError(
                f"No domain '{domain}' in {root}: it holds {sorted(builder.info.splits)} "
                "(expected root/<domain>/<class>/<image>)."
            )
    names = list(builder.info.features["label"].names)
    arrays = read_splits(builder, [source, target], image_size, f"image folders {root}", root)
    (xs, ys), (xt, yt) = arrays[source], arrays[target]
    ys, yt = ys.astype(np.int32), yt.astype(np.int32)
    # tfds takes the classes of both domains; a class the source lacks would
    # be trained and scored with no labelled image.
    unlabelled = [names[c] for c in range(len(names)) if not np.any(ys == c)]
    if unlabelled:
        raise UserDataError(
            f"image folders {root}: the source domain '{source}' has no images of class(es) "
            f"{unlabelled[:10]}, which '{target}' has; give every class labelled source images, "
            "or remove it from the target."
        )
    size = f"resized to {image_size}x{image_size}" if image_size else "at their own size"
    notes = [
        f"image folders {root}: {source} ({len(ys)} images) -> {target} ({len(yt)} images), "
        f"{len(names)} classes, {size}"
    ]
    source_protocol = Protocol(
        f"{source}-source", xs, ys, xs, ys, len(names), names, notes, train_indices=np.arange(len(ys))
    )
    target_protocol = dataclasses.replace(
        source_protocol,
        name=f"{target}-target",
        train_images=None,
        train_labels=None,
        train_indices=None,
        test_images=xt,
        test_labels=yt,
        unlabelled_images=xt,
        unlabelled_indices=np.arange(len(yt)),
        _unlabelled_labels=yt,
    )
    return source_protocol, target_protocol
