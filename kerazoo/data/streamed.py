"""Protocols read from tfds as a stream: datasets too large for memory (ImageNet-LT).

`make_protocol` returns a `StreamedProtocol` for the tfds names in
`kerazoo.protocol_names.STREAMED` (`imagenet_lt`, `imagenet2012`, `imagenet2012_subset`); every
other name is loaded into arrays (`protocols.Protocol`). The images stay
encoded on disk and are decoded, cropped and resized per batch; only the
labels are read into memory (one pass over each split, images not decoded).

Epoch e of a training stream depends on (seed, e) only, like the in-memory
streams of `pipeline.py` (whose epoch machinery it shares), so a killed run
resumes exactly:
- the split is cut at tfds shard boundaries into at most `MAX_PIECES`
  pieces, each read in its file order (tfds shuffled the examples once when
  it wrote the files); epoch e merges the pieces in a random order: which
  piece gives the next example is a stateless permutation keyed by (seed, e);
- every run of `shuffle_window` consecutive examples of that merge is then
  permuted, keyed by (seed, e, run): a seeded shuffle buffer without state;
- the augmentation of the example at position j uses the key split from
  (seed, e, j), as in `pipeline.py`: a random-resized crop (scale 0.08-1,
  aspect ratio 3/4-4/3, torchvision's `RandomResizedCrop` defaults) to
  `image_size`, then a horizontal flip (`augment.random_flip`).
Evaluation images (and training images without augmentation) have their
shorter side resized to image_size / 0.875 (256 for 224), then the centre
image_size x image_size crop: the standard ImageNet evaluation.
"""

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from kerazoo.data import augment as augment_ops
from kerazoo.data.datasets import default_data_dir, load
from kerazoo.data.pipeline import AUGMENT_TAG, epoch_batches, stream_key
from kerazoo.protocol_names import STREAMED, builder_name

# Pieces merged per epoch: enough to mix the shards, few enough open files.
MAX_PIECES = 16
# Evaluation crop: the shorter side goes to image_size / EVAL_CROP_FRACTION.
EVAL_CROP_FRACTION = 0.875


def _resize(image, height, width):
    # Antialiased like torchvision's (PIL) resize when an ImageNet photo shrinks.
    return tf.clip_by_value(tf.image.resize(image, (height, width), antialias=True), 0.0, 1.0)


def random_resized_crop(image, key, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """A random crop of `scale` of the area and aspect ratio in `ratio`,
    resized to (size, size); the whole image when 10 draws find no such crop.

    Args:
        image: float32 (H, W, C) tensor in [0, 1].
        key: a stateless seed, int (2,) tensor.
        size: the output's side.
        scale: the crop's share of the area, (min, max).
        ratio: the crop's aspect ratio, (min, max).

    Example:

    ```python
    import numpy as np
    import tensorflow as tf
    from kerazoo.data.streamed import random_resized_crop

    image = tf.constant(np.random.default_rng(0).uniform(size=(32, 24, 3)), tf.float32)
    print(random_resized_crop(image, tf.constant([0, 1]), 16).shape)  # (16, 16, 3)
    ```
    """
    begin, extent, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.zeros([1, 0, 4]),
        seed=key,
        min_object_covered=0.0,
        aspect_ratio_range=ratio,
        area_range=scale,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    return _resize(tf.slice(image, begin, extent), size, size)


def center_crop(image, size):
    """The shorter side resized to size / 0.875, then the central (size, size) crop.

    Args:
        image: float32 (H, W, C) tensor.
        size: the output's side.

    Example:

    ```python
    import numpy as np
    import tensorflow as tf
    from kerazoo.data.streamed import center_crop

    image = tf.constant(np.zeros((32, 24, 3)), tf.float32)
    print(center_crop(image, 14).shape)  # (14, 14, 3): resize to 16, crop 14
    ```
    """
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = (size / EVAL_CROP_FRACTION) / tf.reduce_min(shape)
    height, width = tf.unstack(tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), size))
    return tf.image.resize_with_crop_or_pad(_resize(image, height, width), size, size)


class StreamedProtocol:
    """The train and evaluation splits of a tfds dataset, streamed from disk.

    Shares the shape the recipes use with the in-memory `Protocol`:
    `name`, `num_classes`, `class_names`, `notes`, `image_shape`,
    `train_labels`, `test_labels` (in the order `eval_dataset` yields),
    `class_counts()`, `train_dataset(...)`, `eval_dataset(...)` and
    `sample_images(n)`; there are no image arrays. Reading the labels costs
    one pass over both splits when the protocol is made.

    Args:
        name: a tfds name, e.g. `"imagenet_lt"`.
        data_dir: tfds data directory (default `datasets.default_data_dir()`).
        image_size: the square size images are cropped to (required: the
            photos have no common size; 224 for the paper protocols).
        download: let tfds prepare a missing dataset.
        test_split: the evaluation split (default `STREAMED[name]`, else "test").

    Raises:
        DatasetNotFoundError: as `kerazoo.data.load`: the dataset is not
            prepared in `data_dir`; the message says how to provide it.

    Example:

    ```python
    import inspect
    from kerazoo.data.streamed import StreamedProtocol

    # With the dataset prepared in DIR (a large download, not done here):
    #     p = StreamedProtocol("imagenet_lt", data_dir=DIR, image_size=224)
    #     counter = EpochCounter()
    #     model.fit(p.train_dataset(128, seed=0, epoch_counter=counter, augment=True),
    #               epochs=90, callbacks=[counter])
    #     model.evaluate(p.eval_dataset())
    print(inspect.signature(StreamedProtocol.train_dataset))
    ```
    """

    def __init__(self, name, data_dir=None, image_size=None, download=False, test_split=None):
        if not image_size:
            raise ValueError(
                f"Dataset '{name}' is streamed and its images have no common size: "
                "pass image_size (--set image_size=224 for the ImageNet protocols)."
            )
        self.name = name
        self.image_size = image_size
        self.test_split = test_split or STREAMED.get(builder_name(name), "test")
        data_dir = data_dir or default_data_dir()
        # load() prepares the dataset, or raises the missing-dataset error
        # saying how to provide it; the stream itself reads the encoded records.
        _, self._info = load(name, "train", data_dir, download=download, with_info=True)
        self._builder = tfds.builder(name, data_dir=data_dir)
        label = self._info.features[self._info.supervised_keys[1]]
        self.num_classes = label.num_classes
        self.class_names = list(label.names)
        self._channels = self._info.features[self._info.supervised_keys[0]].shape[-1]
        self.train_labels = self._labels("train")
        self.test_labels = self._labels(self.test_split)
        self.notes = [
            f"{name}: {len(self.train_labels)} train / {len(self.test_labels)} "
            f"{self.test_split} images from tfds, streamed (decoded per batch)",
            f"training images: random-resized crop to {image_size}x{image_size} + flip "
            f"when augmented; evaluation: shorter side to {round(image_size / EVAL_CROP_FRACTION)}, "
            f"centre {image_size}x{image_size} crop",
        ]

    @property
    def image_shape(self):
        return (self.image_size, self.image_size, self._channels)

    def class_counts(self, split="train"):
        """Images per class of the `"train"` or the `"test"` split."""
        labels = self.train_labels if split == "train" else self.test_labels
        return np.bincount(labels, minlength=self.num_classes)

    def _read(self, split):
        """(encoded image, label) records of `split` in tfds' file order."""
        ds = self._builder.as_dataset(
            split=split, decoders={"image": tfds.decode.SkipDecoding()}, shuffle_files=False
        )
        image, label = self._info.supervised_keys
        return ds.map(lambda example: (example[image], tf.cast(example[label], tf.int32)))

    def _labels(self, split):
        batches = self._read(split).map(lambda image, label: label).batch(8192)
        labels = list(batches.as_numpy_iterator())
        if not labels:
            raise ValueError(f"Split '{split}' of '{self.name}' is empty.")
        return np.concatenate(labels)

    def _decode(self, encoded):
        image = self._info.features[self._info.supervised_keys[0]].decode_example(encoded)
        return tf.image.convert_image_dtype(image, tf.float32)

    def _pieces(self, split, size):
        """`split` cut at shard boundaries into at most MAX_PIECES (sub-split,
        size) pairs; the whole split when tfds knows no shards (mock data)."""
        if split not in self._info.splits:
            return [(split, size)]
        lengths = self._info.splits[split].shard_lengths
        ends = np.cumsum(lengths)[
            [g[-1] for g in np.array_split(np.arange(len(lengths)), min(MAX_PIECES, len(lengths)))]
        ]
        starts = np.concatenate([[0], ends[:-1]])
        return [(f"{split}[{a}:{b}]", int(b - a)) for a, b in zip(starts, ends)]

    def train_dataset(
        self, batch_size, seed, epoch_counter, augment=False, drop_remainder=True, shuffle_window=2048
    ):
        """Training batches `(x, y)`, each epoch a function of (seed, epoch).

        Args:
            batch_size, seed, epoch_counter, drop_remainder: as in
                `pipeline.train_dataset`.
            augment: True for random-resized crop + flip, False for the
                evaluation crop (see the module docstring).
            shuffle_window: consecutive examples permuted together (memory:
                that many encoded images).

        Example: `p.train_dataset(128, seed=0, epoch_counter=counter, augment=True)`.
        """
        stream = _TrainStream(self, seed, augment, shuffle_window)
        return epoch_batches([(stream, batch_size)], epoch_counter, drop_remainder=drop_remainder)

    def eval_dataset(self, batch_size=256):
        """Evaluation batches `(x, y)` of the test split in `test_labels` order, the last partial.

        Example: `model.evaluate(p.eval_dataset())`.
        """
        size = self.image_size
        ds = self._read(self.test_split).map(
            lambda encoded, label: (center_crop(self._decode(encoded), size), label),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        return ds.batch(batch_size).prefetch(2)

    def sample_images(self, count):
        """The first `count` evaluation images, float32 (count, H, W, C)."""
        return next(iter(self.eval_dataset(count)))[0].numpy()


class _TrainStream:
    """One training split read as `pipeline.epoch_batches` reads a stream:
    `num_examples` and `examples(epoch, count)` (count = num_examples)."""

    def __init__(self, protocol, seed, augment, shuffle_window):
        if augment in ("crop_flip", "none"):
            augment = augment == "crop_flip"
        if augment not in (True, False):
            raise ValueError(
                f"augment={augment!r}: a streamed protocol takes 'crop_flip' or True (random-resized "
                "crop + flip), or 'none' or False (the evaluation crop)."
            )
        self.protocol, self.seed, self.augment = protocol, seed, augment
        self.window = shuffle_window
        self.num_examples = len(protocol.train_labels)
        pieces = protocol._pieces("train", self.num_examples)
        self.pieces = [protocol._read(split) for split, _ in pieces]
        # One entry per example: the piece it comes from.
        self.piece_ids = tf.constant(
            np.repeat(np.arange(len(pieces), dtype=np.int64), [n for _, n in pieces])
        )

    def batches(self, epoch, count, batch_size, drop_remainder):
        return self.examples(epoch, count).batch(batch_size, drop_remainder=drop_remainder)

    def examples(self, epoch, count):
        order_key = stream_key(self.seed, epoch)
        choices = tf.random.experimental.stateless_shuffle(self.piece_ids, order_key)
        records = tf.data.Dataset.choose_from_datasets(
            self.pieces, tf.data.Dataset.from_tensor_slices(choices)
        )

        def permute(run, window):
            key = tf.random.experimental.stateless_fold_in(order_key, run)
            order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(window[1])[0]), key)
            return tuple(tf.gather(part, order) for part in window)

        records = records.batch(self.window).enumerate().map(permute).unbatch()
        keys = tf.random.experimental.stateless_split(stream_key(self.seed, epoch, AUGMENT_TAG, 0), count)
        return tf.data.Dataset.zip(records, tf.data.Dataset.from_tensor_slices(keys)).map(
            self._example, num_parallel_calls=tf.data.AUTOTUNE
        )

    def _example(self, record, key):
        encoded, label = record
        image = self.protocol._decode(encoded)
        size = self.protocol.image_size
        if not self.augment:
            return center_crop(image, size), label
        crop_key, flip_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
        return augment_ops.random_flip(random_resized_crop(image, crop_key, size), flip_key), label
