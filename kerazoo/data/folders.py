"""Domain-adaptation protocols from image folders (Office-31, Office-Home),
which tensorflow-datasets does not provide.

Layout: `root/<domain>/<class>/<image>` (Office-Home as distributed;
for Office-31 move each `<domain>/images/<class>` up to `<domain>/<class>`).
Read offline with `tfds.folder_dataset.ImageFolder`, one split per domain;
class indices are the sorted class names of all domains together.
"""

import dataclasses

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from kerazoo.data.datasets import DatasetNotFoundError
from kerazoo.data.protocols import Protocol


def _domain_arrays(builder, domain, image_size):
    if domain not in builder.info.splits:
        raise DatasetNotFoundError(
            f"No domain '{domain}' in {builder.data_dir}: it holds {sorted(builder.info.splits)} "
            "(expected root/<domain>/<class>/<image>)."
        )

    def prepare(example):
        image = tf.image.resize(tf.cast(example["image"], tf.float32) / 255.0, (image_size, image_size))
        return tf.clip_by_value(image, 0.0, 1.0), tf.cast(example["label"], tf.int32)

    ds = builder.as_dataset(split=domain, shuffle_files=False).map(prepare).batch(256)
    images, labels = zip(*ds.as_numpy_iterator())
    return np.concatenate(images), np.concatenate(labels)


def folder_domain_shift(root, source, target, image_size):
    """(source, target) `Protocol`s like `make_domain_shift`'s, from two domain folders.

    The source is labelled (`train_*`, its `test_*` the same images); the
    target's images are its `unlabelled_images` and also its test split, the
    standard transductive protocol of the Office benchmarks. Images are
    resized to `image_size` squares, float32 in [0, 1].

    Example: `source, target = folder_domain_shift("~/office31", "amazon", "webcam", 224)`.
    """
    try:
        builder = tfds.folder_dataset.ImageFolder(str(root))
    except (FileNotFoundError, ValueError) as error:
        raise DatasetNotFoundError(f"Cannot read image folders under '{root}': {error}") from None
    names = list(builder.info.features["label"].names)
    xs, ys = _domain_arrays(builder, source, image_size)
    xt, yt = _domain_arrays(builder, target, image_size)
    notes = [f"image folders {root}: {source} ({len(ys)} images) -> {target} ({len(yt)} images), "
             f"{len(names)} classes, resized to {image_size}x{image_size}"]
    source_protocol = Protocol(f"{source}-source", xs, ys, xs, ys, len(names), names, notes,
                               train_indices=np.arange(len(ys)))
    target_protocol = dataclasses.replace(
        source_protocol, name=f"{target}-target", train_images=None, train_labels=None,
        train_indices=None, test_images=xt, test_labels=yt, unlabelled_images=xt,
        unlabelled_indices=np.arange(len(yt)), _unlabelled_labels=yt,
    )
    return source_protocol, target_protocol
