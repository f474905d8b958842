"""The experimental protocols every recipe draws its data from.

A protocol name is a tfds dataset name, or `imagefolder` / `arrays` for the
user's own images or arrays (`user_sources`; `data_dir` names them),
followed by modifiers separated by `-`:
- `rot`, `bg`, `dil`: every image (train and test) gets one random nuisance
  transform, seeded (see `transforms.py`);
- `lt`: the training split is subsampled to a Zipf long tail (exponent 2.0,
  at least 5 images per class); the test split stays balanced;
- `lt100`: an exponential long tail with imbalance ratio 100 in class-id
  order (CIFAR-100-LT, rho = 100); the test split stays balanced.

So `digits-rot-lt` is the GIT paper's K49-ROT-LT construction on digits.
Protocols hold whole splits in memory (digits, CIFAR). The names in
`kerazoo.protocol_names.STREAMED` (`imagenet_lt`, `imagenet2012`, `imagenet2012_subset`:
too large for memory) give a `streamed.StreamedProtocol` instead, which
takes no modifiers. Recipes read both kinds through the same methods:
`train_dataset`, `eval_dataset`, `sample_images`, `class_counts`.

Domain adaptation (`make_domain_shift`) and few-label semi-supervised splits
(`make_few_labels`) are built from the same pieces; the images whose labels
a method must not train on are `unlabelled_images`, their labels kept for
evaluation only.
"""

import dataclasses

import numpy as np

from kerazoo._checks import is_whole
from kerazoo.data import longtail, splits, transforms
from kerazoo.data.datasets import load_arrays
from kerazoo.data.errors import DataSizeError
from kerazoo.data.pipeline import eval_dataset, train_dataset
from kerazoo.data.streamed import StreamedProtocol
from kerazoo.protocol_names import is_streamed, is_user_source, parse_protocol_name


@dataclasses.dataclass
class Protocol:
    """Train and test arrays of one protocol, with what was done to them.

    Images are float32 (N, H, W, C) in [0, 1]; labels int32 (N,).
    `train_indices` and `unlabelled_indices` say which examples of the
    dataset's training split each array holds (row i of `train_images` is
    example `train_indices[i]`, transformed as `notes` say).

    Semi-supervised and domain-adaptation protocols also hold
    `unlabelled_images`, whose labels a method must not train on: they are
    reachable only through `evaluation_labels()`. A protocol with no labelled
    training data (a domain-adaptation target) has `train_images` and
    `train_labels` None.

    Example:

    ```python
    import numpy as np
    from kerazoo.data import make_few_labels
    from kerazoo.metrics import accuracy

    p = make_few_labels("digits", per_class=5)
    print(p.train_images.shape, p.unlabelled_images.shape)  # 50 labelled images; the rest unlabelled
    guess = np.zeros(len(p.unlabelled_images), int)
    print(accuracy(p.evaluation_labels(), guess))
    ```
    """

    name: str
    train_images: np.ndarray | None
    train_labels: np.ndarray | None
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int
    class_names: list
    notes: list = dataclasses.field(default_factory=list)
    train_indices: np.ndarray | None = None
    unlabelled_images: np.ndarray | None = None
    unlabelled_indices: np.ndarray | None = None
    _unlabelled_labels: np.ndarray | None = dataclasses.field(default=None, repr=False)

    @property
    def image_shape(self):
        return tuple(self.test_images.shape[1:])

    def class_counts(self, split="train"):
        """Images per class of the labelled `"train"` or the `"test"` split."""
        if split not in ("train", "test"):
            raise ValueError(f"class_counts(split={split!r}): use 'train' or 'test'.")
        labels = self.train_labels if split == "train" else self.test_labels
        if labels is None:
            raise ValueError(
                f"Protocol '{self.name}' has no training labels: its training images "
                "are unlabelled (labels for evaluation only: evaluation_labels())."
            )
        return np.bincount(labels, minlength=self.num_classes)

    def train_dataset(self, batch_size, seed, epoch_counter, **kwargs):
        """`pipeline.train_dataset` over the labelled training arrays.

        Example: `p.train_dataset(64, seed=0, epoch_counter=counter, augment=True)`.
        """
        return train_dataset(self.train_images, self.train_labels, batch_size, seed, epoch_counter, **kwargs)

    def eval_dataset(self, batch_size=256):
        """`pipeline.eval_dataset` over the test arrays."""
        return eval_dataset(self.test_images, self.test_labels, batch_size)

    def sample_images(self, count):
        """The first `count` test images."""
        return self.test_images[:count]

    def evaluation_labels(self):
        """The labels of `unlabelled_images`, to evaluate on them; never train on these.

        Example: `accuracy(target.evaluation_labels(), predict(target.unlabelled_images))`.
        """
        if self.unlabelled_images is None:
            raise ValueError(f"Protocol '{self.name}' has no unlabelled images.")
        return self._unlabelled_labels


def _base_splits(base, data_dir, image_size, download):
    # The one place a dataset name becomes arrays: tfds, or the user's own
    # files (`user_sources`), resized on reading (their images may differ in size).
    train_x, train_y, info = load_arrays(base, "train", data_dir, download=download, image_size=image_size)
    test_x, test_y, _ = load_arrays(base, "test", data_dir, download=download, image_size=image_size)
    origin = info.description if is_user_source(base) else "from tfds"
    notes = [f"{base}: {len(train_y)} train / {len(test_y)} test images {origin}"]
    if image_size:
        notes.append(f"bilinear resize to {image_size}x{image_size}")
    label = info.features[info.supervised_keys[1]]
    return train_x, train_y, test_x, test_y, label.num_classes, list(label.names), notes


def _check_arguments(name, seed, image_size, lt_exponent, lt_min):
    """The errors TensorFlow or tfds would give in their own words, in ours."""
    if not isinstance(name, str) or name != name.strip():
        raise ValueError(
            f"Protocol name {name!r}: give the name as a string without spaces, e.g. 'digits-lt'."
        )
    if not is_whole(seed, 0):
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}.")
    if image_size is not None and not is_whole(image_size, 0):
        raise ValueError(
            f"image_size must be a whole number of pixels (or None: keep the size), got {image_size!r}."
        )
    if not (isinstance(lt_exponent, (int, float)) and lt_exponent > 0) or not is_whole(lt_min, 1):
        raise ValueError(
            f"The Zipf long tail needs lt_exponent > 0 and lt_min a whole number >= 1, got "
            f"{lt_exponent!r} and {lt_min!r}."
        )


def make_protocol(
    name,
    data_dir=None,
    seed=0,
    image_size=None,
    lt_exponent=2.0,
    lt_min=5,
    download=False,
):
    """Build a protocol by name (see the module docstring): a `Protocol` in
    memory, or a `StreamedProtocol` for the names in `kerazoo.protocol_names.STREAMED`.

    Args:
        name: e.g. `"digits"`, `"digits-lt"`, `"digits-bg-lt"`, `"cifar100"`,
            `"imagenet_lt"` (streamed).
        data_dir: tfds data directory.
        seed: fixes the nuisance parameters and the long-tail subset.
        image_size: resize images to this square size first (None or 0 keeps them).
        lt_exponent, lt_min: the Zipf profile of `-lt` (`-lt100` is exponential, rho = 100).
        download: let tfds download a missing real dataset.

    Example:

    ```python
    from kerazoo.data import make_protocol

    p = make_protocol("digits-bg-lt", seed=0)
    print(p.train_images.shape, p.class_counts())
    ```
    """
    _check_arguments(name, seed, image_size, lt_exponent, lt_min)
    base, nuisance, long_tail = parse_protocol_name(name)
    if is_streamed(base):
        return StreamedProtocol(base, data_dir, image_size, download)
    train_x, train_y, test_x, test_y, num_classes, class_names, notes = _base_splits(
        base, data_dir, image_size, download
    )
    if nuisance:
        # Distinct seeds so train and test images get independent parameters.
        train_x = transforms.apply_nuisance(train_x, nuisance, seed=[seed, 0])
        test_x = transforms.apply_nuisance(test_x, nuisance, seed=[seed, 1])
        notes.append(f"one random '{nuisance}' nuisance per image (seed {seed})")
    keep = np.arange(len(train_y))
    if long_tail:
        imbalance = 100.0 if long_tail == "lt100" else None
        try:
            keep, sizes = longtail.long_tail_indices(train_y, lt_exponent, lt_min, seed, imbalance)
        except DataSizeError as error:
            raise DataSizeError(
                f"'{name}': its Zipf long tail keeps at least {lt_min} training images of every class "
                f"of '{base}' ({str(error).rstrip('.')}); give every class at least {lt_min} training images, or use "
                f"'{name}100' (an exponential tail that keeps at least one)."
            ) from None
        train_x, train_y = train_x[keep], train_y[keep]
        profile = (
            f"Zipf long tail (exponent {lt_exponent}, min {lt_min})"
            if imbalance is None
            else (
                "exponential long tail (rho 100: n_i = int(n_max 100^(-i/(C-1))), at least 1; "
                f"class-id order; largest / smallest here {max(sizes.values())} / {min(sizes.values())})"
            )
        )
        notes.append(f"{profile}: {len(keep)} train images, class sizes {dict(sorted(sizes.items()))}")
    return Protocol(
        name,
        train_x,
        train_y,
        test_x,
        test_y,
        num_classes,
        class_names,
        notes,
        train_indices=keep,
    )


def _labelled(protocol, rows):
    """Fields keeping rows `rows` of `protocol`'s training split as its labelled part."""
    return dict(
        train_images=protocol.train_images[rows],
        train_labels=protocol.train_labels[rows],
        train_indices=protocol.train_indices[rows],
    )


def _unlabelled(protocol, rows, images=None):
    """Fields moving rows `rows` of `protocol`'s training split (or `images`,
    transformed copies of them) to `unlabelled_images`, labels hidden."""
    return dict(
        unlabelled_images=protocol.train_images[rows] if images is None else images,
        unlabelled_indices=protocol.train_indices[rows],
        _unlabelled_labels=protocol.train_labels[rows],
    )


def make_domain_shift(name, shift, data_dir=None, seed=0, image_size=None, download=False, **shift_kwargs):
    """Source and target protocols for unsupervised domain adaptation.

    The training split of protocol `name` is cut into two seeded halves: the
    source keeps its half with labels; the other half gets the `shift`
    nuisance (e.g. `"bg"`, or `"rot"` with `max_degrees=45`) and becomes the
    target's `unlabelled_images`. The target has no training labels
    (`train_labels` None); its labels are reachable only for evaluation
    (`target.evaluation_labels()`). `source.train_indices` and
    `target.unlabelled_indices` partition the training split.

    A shift in `SPLIT_SHIFTS` (`make_domain_shift("glyphs", "fonts")`) is
    a pair of the dataset's own splits instead: see `_split_shift`.

    Args:
        name: the base protocol, e.g. `"digits"`.
        shift: the target's nuisance (`"rot"`, `"bg"`, `"dil"`), or a shift
            of `SPLIT_SHIFTS`.
        data_dir, seed, image_size, download: as `make_protocol`'s.
        **shift_kwargs: forwarded to the nuisance (e.g. `max_level=127`).

    Returns:
        (source, target): two `Protocol`s. source's test split is the clean
        one, target's the same images shifted.

    Example:

    ```python
    from kerazoo.data import EpochCounter, make_domain_shift, paired_dataset

    source, target = make_domain_shift("digits", "bg", max_level=127)
    ds = paired_dataset(
        source.train_images, source.train_labels, target.unlabelled_images, 64,
        seed=0, epoch_counter=EpochCounter(),
    )
    ```
    """
    if (name, shift) in SPLIT_SHIFTS:
        return _split_shift(name, shift, data_dir, seed, image_size, download, **shift_kwargs)
    clean = make_protocol(name, data_dir, seed, image_size, download=download)
    first, second = splits.halves(len(clean.train_labels), seed)
    shifted_train = transforms.apply_nuisance(
        clean.train_images[second], shift, seed=[seed, 2], **shift_kwargs
    )
    shifted_test = transforms.apply_nuisance(clean.test_images, shift, seed=[seed, 3], **shift_kwargs)
    source = dataclasses.replace(
        clean,
        name=f"{name}-source",
        notes=clean.notes + [f"source: {len(first)} labelled images (seeded half)"],
        **_labelled(clean, first),
    )
    target = dataclasses.replace(
        clean,
        name=f"{name}-{shift}-target",
        train_images=None,
        train_labels=None,
        train_indices=None,
        test_images=shifted_test,
        notes=clean.notes
        + [
            f"target: the other {len(second)} images, unlabelled, with a '{shift}' shift {shift_kwargs or ''}"
        ],
        **_unlabelled(clean, second, shifted_train),
    )
    return source, target


# Domain shifts a dataset holds as a (source split, target split) pair,
# e.g. glyphs' sans/serif faces against its held-out faces.
SPLIT_SHIFTS = {("glyphs", "fonts"): ("fonts_train", "fonts_test")}


def _split_shift(name, shift, data_dir, seed, image_size, download, test_per_class=50):
    """`make_domain_shift` for a shift in `SPLIT_SHIFTS`: the source is the
    source split, the target the target split, each cut (seeded, per class)
    into `test_per_class` test images and the rest (the source's labelled
    training images; the target's `unlabelled_images`). `train_indices` and
    `unlabelled_indices` index the source and the target split."""
    protocols = []
    for role, split in zip(("source", f"{shift}-target"), SPLIT_SHIFTS[(name, shift)]):
        images, labels, info = load_arrays(name, split, data_dir, download=download)
        notes = [f"{name} '{split}': {len(labels)} images from tfds"]
        if image_size:
            images = transforms.resize(images, image_size)
            notes.append(f"bilinear resize to {image_size}x{image_size}")
        test, rest = splits.few_label_indices(labels, test_per_class, seed)
        notes.append(
            f"{role}: {test_per_class} test images per class (seeded), {len(rest)} "
            + ("labelled training images" if role == "source" else "unlabelled")
        )
        label = info.features[info.supervised_keys[1]]
        protocols.append(
            Protocol(
                f"{name}-{role}",
                images[rest],
                labels[rest],
                images[test],
                labels[test],
                label.num_classes,
                list(label.names),
                notes,
                train_indices=rest,
            )
        )
    source, target = protocols
    return source, dataclasses.replace(
        target, **_unlabelled(target, slice(None)), train_images=None, train_labels=None, train_indices=None
    )


def make_few_labels(name, per_class, data_dir=None, seed=0, image_size=None, download=False):
    """A semi-supervised split of protocol `name`: `per_class` labelled
    training images per class (seeded), the rest as `unlabelled_images`
    (their labels only through `evaluation_labels()`).

    Args:
        name: a protocol name, e.g. `"digits"`.
        per_class: labelled images per class.
        data_dir, seed, image_size, download: as `make_protocol`'s.

    Example:

    ```python
    from kerazoo.data import EpochCounter, make_few_labels, paired_dataset

    p = make_few_labels("digits", per_class=5)
    ds = paired_dataset(
        p.train_images, p.train_labels, p.unlabelled_images, 32, seed=0, epoch_counter=EpochCounter(),
        unlabelled_batch_size=128, epoch_length="unlabelled",
    )
    ```
    """
    if not is_whole(per_class, 1):
        raise ValueError(
            f"per_class must be a whole number >= 1 of labelled images per class, got {per_class!r}."
        )
    full = make_protocol(name, data_dir, seed, image_size, download=download)
    labelled, unlabelled = splits.few_label_indices(full.train_labels, per_class, seed)
    return dataclasses.replace(
        full,
        name=f"{name}-{per_class}labels",
        notes=full.notes + [f"{per_class} labels per class; {len(unlabelled)} unlabelled"],
        **_labelled(full, labelled),
        **_unlabelled(full, unlabelled),
    )
