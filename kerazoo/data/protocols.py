"""The experimental protocols every recipe draws its data from.

A protocol name is a tfds dataset name followed by modifiers separated by
`-`:
- `rot`, `bg`, `dil`: every image (train and test) gets one random nuisance
  transform, seeded (see `transforms.py`);
- `lt`: the training split is subsampled to a Zipf long tail (exponent 2.0,
  at least 5 images per class); the test split stays balanced.

So `digits-rot-lt` is the GIT paper's K49-ROT-LT construction on digits.
Protocols hold whole splits in memory (digits, CIFAR); ImageNet-scale data
should be streamed with `kerazoo.data.load` instead.

Domain adaptation (`make_domain_shift`) and few-label semi-supervised splits
(`make_few_labels`) are built from the same pieces.
"""

import dataclasses

import numpy as np

from kerazoo.data import longtail, splits, transforms
from kerazoo.data.datasets import load_arrays

MODIFIERS = ("rot", "bg", "dil", "lt")


@dataclasses.dataclass
class Protocol:
    """Train and test arrays of one protocol, with what was done to them.

    Images are float32 (N, H, W, C) in [0, 1]; labels int32 (N,).
    `notes` lists the construction steps, for reports.
    """

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int
    class_names: list
    notes: list = dataclasses.field(default_factory=list)

    @property
    def image_shape(self):
        return tuple(self.train_images.shape[1:])

    def class_counts(self, split="train"):
        labels = self.train_labels if split == "train" else self.test_labels
        return np.bincount(labels, minlength=self.num_classes)


def parse_protocol_name(name):
    """`"digits-rot-lt"` -> `("digits", "rot", True)`."""
    base, *modifiers = name.split("-")
    unknown = [m for m in modifiers if m not in MODIFIERS]
    nuisances = [m for m in modifiers if m != "lt"]
    if unknown or len(nuisances) > 1 or not base:
        raise ValueError(
            f"Bad protocol name '{name}': expected a tfds dataset name followed "
            f"by at most one of -rot/-bg/-dil and optionally -lt, e.g. "
            f"'digits-rot-lt'."
        )
    return base, (nuisances[0] if nuisances else None), "lt" in modifiers


def _base_splits(base, data_dir, image_size, download):
    train_x, train_y, info = load_arrays(base, "train", data_dir, download=download)
    test_x, test_y, _ = load_arrays(base, "test", data_dir, download=download)
    notes = [f"{base}: {len(train_y)} train / {len(test_y)} test images from tfds"]
    if image_size:
        train_x = transforms.resize(train_x, image_size)
        test_x = transforms.resize(test_x, image_size)
        notes.append(f"bilinear resize to {image_size}x{image_size}")
    label = info.features[info.supervised_keys[1]]
    return train_x, train_y, test_x, test_y, label.num_classes, list(label.names), notes


def make_protocol(
    name,
    data_dir=None,
    seed=0,
    image_size=None,
    lt_exponent=2.0,
    lt_min=5,
    download=False,
):
    """Build a protocol by name (see the module docstring).

    Args:
        name: e.g. `"digits"`, `"digits-lt"`, `"digits-bg-lt"`, `"cifar100"`.
        data_dir: tfds data directory.
        seed: fixes the nuisance parameters and the long-tail subset.
        image_size: resize images to this square size first (None keeps them).
        lt_exponent, lt_min: the Zipf profile of `-lt`.
        download: let tfds download a missing real dataset.
    """
    base, nuisance, long_tail = parse_protocol_name(name)
    train_x, train_y, test_x, test_y, num_classes, class_names, notes = _base_splits(
        base, data_dir, image_size, download
    )
    if nuisance:
        # Distinct seeds so train and test images get independent parameters.
        train_x = transforms.apply_nuisance(train_x, nuisance, seed=[seed, 0])
        test_x = transforms.apply_nuisance(test_x, nuisance, seed=[seed, 1])
        notes.append(f"one random '{nuisance}' nuisance per image (seed {seed})")
    if long_tail:
        keep, sizes = longtail.long_tail_indices(train_y, lt_exponent, lt_min, seed)
        train_x, train_y = train_x[keep], train_y[keep]
        notes.append(
            f"Zipf long tail (exponent {lt_exponent}, min {lt_min}): "
            f"{len(keep)} train images, class sizes {dict(sorted(sizes.items()))}"
        )
    return Protocol(
        name, train_x, train_y, test_x, test_y, num_classes, class_names, notes
    )


def make_domain_shift(name, shift, seed=0, data_dir=None, image_size=None, **shift_kwargs):
    """Source and target protocols for unsupervised domain adaptation.

    The training split is cut into two seeded halves: the source keeps its
    images, the target half gets the `shift` nuisance (e.g. `"bg"`, or
    `"rot"` with `max_degrees=45`). Target labels are kept only so that the
    target can be evaluated; an adaptation trainer must not read them.

    Returns:
        (source, target): two `Protocol`s. source.test is the clean test split,
        target.test the shifted one.
    """
    clean = make_protocol(name, data_dir, seed, image_size)
    first, second = splits.halves(len(clean.train_labels), seed)
    shifted_train = transforms.apply_nuisance(
        clean.train_images[second], shift, seed=[seed, 2], **shift_kwargs
    )
    shifted_test = transforms.apply_nuisance(
        clean.test_images, shift, seed=[seed, 3], **shift_kwargs
    )
    source = dataclasses.replace(
        clean,
        name=f"{name}-source",
        train_images=clean.train_images[first],
        train_labels=clean.train_labels[first],
        notes=clean.notes + [f"source: {len(first)} images (seeded half)"],
    )
    target = dataclasses.replace(
        clean,
        name=f"{name}-{shift}",
        train_images=shifted_train,
        train_labels=clean.train_labels[second],
        test_images=shifted_test,
        notes=clean.notes
        + [f"target: the other {len(second)} images with a '{shift}' shift {shift_kwargs or ''}"],
    )
    return source, target


def make_few_labels(name, per_class, seed=0, data_dir=None, image_size=None):
    """A semi-supervised split: `(labelled protocol, unlabelled images)`."""
    full = make_protocol(name, data_dir, seed, image_size)
    labelled, unlabelled = splits.few_label_indices(full.train_labels, per_class, seed)
    protocol = dataclasses.replace(
        full,
        name=f"{name}-{per_class}labels",
        train_images=full.train_images[labelled],
        train_labels=full.train_labels[labelled],
        notes=full.notes + [f"{per_class} labels per class; {len(unlabelled)} unlabelled"],
    )
    return protocol, full.train_images[unlabelled]
