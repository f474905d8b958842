"""tf.data input pipelines whose batches depend only on (seed, epoch).

`BackupAndRestore` resumes a killed run at the start of the epoch it was in,
but a freshly created dataset would restart any random sequence at epoch 0.
Here every random choice of epoch e is drawn from stateless RNGs keyed by
(seed, e), where e is read from a variable that `EpochCounter` sets at the
start of every epoch, so a resumed run sees exactly the batches an
uninterrupted run would:

- the order: pass p over an array is `sampler(key=(seed, p), epoch)` (see
  `samplers.py`: instance, class-balanced or DRS);
- the augmentation of the example at position j of epoch e, view v, uses
  the key split from (seed, e, j, v) (see `augment.py`).

Three streams share this machinery: `train_dataset` (labelled, or with
`views=2` two augmented views), `unlabelled_dataset` (images only) and
`paired_dataset` (a labelled and an unlabelled array side by side).
"""

import functools

import keras
import tensorflow as tf

from kerazoo._checks import is_whole
from kerazoo.data import augment as augment_ops
from kerazoo.data import samplers
from kerazoo.data.errors import DataSizeError

# Fold-in tags keeping the order and augmentation draws of one (seed, counter)
# apart; `kerazoo.data.streamed` draws its augmentation with AUGMENT_TAG too.
ORDER_TAG, AUGMENT_TAG = 0, 1
# The last epoch `all_epochs` would reach: never, in practice.
_ENDLESS = 2**62


def _as_written(function):
    """`function` for tf.data to trace as written, without AutoGraph: its
    first conversion in a process took ~0.5 s for this module's functions
    (a tenth of the baseline recipe's run), and their Python control flow is
    over Python values only (a tensor's branch is a `tf.cond`)."""
    return tf.autograph.experimental.do_not_convert(function)


class EpochCounter(keras.callbacks.Callback):
    """Keeps `variable` equal to the epoch `fit` is in.

    Example:

    ```python
    import numpy as np
    import keras
    from kerazoo.data import EpochCounter, train_dataset

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(16, 4)).astype("float32")
    y = rng.integers(0, 2, size=16)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    counter = EpochCounter()
    ds = train_dataset(x, y, batch_size=8, seed=0, epoch_counter=counter)
    model.fit(ds, epochs=2, callbacks=[counter], verbose=0)  # a new order each epoch
    ```
    """

    def __init__(self):
        super().__init__()
        self.variable = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")

    def on_epoch_begin(self, epoch, logs=None):
        self.variable.assign(epoch)


def stream_key(seed, counter, *tags):
    """The stateless random key of (seed, counter), folded with `tags`: every
    order and augmentation draw of a stream is keyed by one, so that it
    depends only on (seed, epoch, position), never on what ran before.

    Args:
        seed: the stream's seed.
        counter: e.g. the epoch.
        *tags: integers folded in (which stream, `AUGMENT_TAG`, ...).

    Example:

    ```python
    from kerazoo.data.pipeline import AUGMENT_TAG, stream_key

    key = stream_key(0, 3, AUGMENT_TAG, 1)  # epoch 3's augmentation of stream 1
    print(key)
    ```
    """
    key = tf.stack([tf.constant(seed, tf.int64), tf.cast(counter, tf.int64)])
    for tag in tags:
        key = tf.random.experimental.stateless_fold_in(key, tf.constant(tag, tf.int64))
    return key


class _Stream:
    """One array (with or without labels) read as an endless sequence of
    sampler passes; epoch e takes elements [e·count, (e+1)·count) of it.

    With count = N (the stream that sets the epoch length) epoch e is pass e.
    A stream cycled alongside it continues where the previous epoch stopped,
    so it visits all its data evenly and never repeats one order.
    """

    def __init__(self, images, labels, seed, stream, sampler, drs_epoch, augment, views):
        self.num_examples = len(images)
        if not is_whole(seed, 0):
            raise ValueError(f"seed must be a whole number >= 0, got {seed!r}.")
        if not tf.as_dtype(getattr(images, "dtype", "float32")).is_floating:
            # uint8 pixels went through unscaled, or failed deep in augmentation.
            raise ValueError(
                f"images are {tf.as_dtype(images.dtype).name}; the pipelines take float images in "
                "[0, 1]: pass pixels / 255 (as make_protocol's arrays are)."
            )
        if labels is not None and len(labels) != self.num_examples:
            # An extra label was dropped silently; a missing one failed mid-epoch.
            raise ValueError(
                f"{len(labels)} labels for {self.num_examples} images; give one label per image."
            )
        self.draw = samplers.make_sampler(sampler, self.num_examples, labels, drs_epoch)
        self.transform = augment_ops.policy(augment)
        if views < 1 or (views > 1 and self.transform is None):
            raise ValueError(
                f"views={views}: use views=1, or views >= 2 with an augmentation "
                "(e.g. augment='views'), without which the views would be identical."
            )
        self.images = tf.convert_to_tensor(images)
        self.labels = None if labels is None else tf.convert_to_tensor(labels)
        self.seed, self.stream, self.views = seed, stream, views

    def _order_key(self, p):
        if self.stream == 0:
            # The key of the original single-stream pipeline, so that runs
            # made before paired streams existed still reproduce.
            return stream_key(self.seed, p)
        return stream_key(self.seed, p, ORDER_TAG, self.stream)

    def batches(self, epoch, count, batch_size, drop_remainder):
        """Epoch `epoch`'s `count` examples in batches, augmented with keys
        split from (seed, epoch), one per position in the epoch."""
        n = self.num_examples
        start = epoch * count

        def pass_slice(p):
            order = self.draw(self._order_key(p), epoch)
            return tf.data.Dataset.from_tensor_slices(
                order[tf.maximum(start - p * n, 0) : tf.minimum(start + count - p * n, n)]
            )

        if count == n:
            # The stream that sets the epoch length: epoch e is exactly pass e
            # (the general path below gives the same indices, more slowly).
            indices = tf.data.Dataset.from_tensor_slices(self.draw(self._order_key(epoch), epoch))
        else:
            indices = tf.data.Dataset.range(start // n, (start + count - 1) // n + 1).flat_map(
                _as_written(pass_slice)
            )
        if self.transform is None:
            # A plain gather per batch: per example, tf.data's own cost is
            # larger than the gather's.
            return indices.batch(batch_size, drop_remainder=drop_remainder).map(_as_written(self._gather))
        keys = tf.random.experimental.stateless_split(
            stream_key(self.seed, epoch, AUGMENT_TAG, self.stream), count
        )
        # Augmented one example at a time, in parallel: faster than a
        # tf.map_fn over each batch.
        ds = tf.data.Dataset.zip(indices, tf.data.Dataset.from_tensor_slices(keys))
        ds = ds.map(_as_written(self._augmented), num_parallel_calls=tf.data.AUTOTUNE)
        return ds.batch(batch_size, drop_remainder=drop_remainder)

    def _gather(self, index):
        image = tf.gather(self.images, index)
        return image if self.labels is None else (image, tf.gather(self.labels, index))

    def _augmented(self, index, key):
        image, *label = tf.nest.flatten(self._gather(index))
        view_keys = tf.random.experimental.stateless_split(key, self.views)
        views = tuple(self.transform(image, view_keys[v]) for v in range(self.views))
        image = views[0] if self.views == 1 else views
        return image if self.labels is None else (image, *label)


def epoch_batches(streams, epoch_counter, lead=0, drop_remainder=True, num_replicas=1):
    """Zip `streams` [(stream, batch size), ...] epoch by epoch; `streams[lead]`
    sets the number of steps, the others are cycled to match.

    A stream has `num_examples` and `batches(epoch, count, batch_size,
    drop_remainder)`, a `tf.data.Dataset` of epoch `epoch`'s `count` examples
    in batches (`train_dataset`'s streams, and `kerazoo.data.streamed`'s). The result is the endless
    `tf.data.Dataset` `model.fit` reads, its epoch taken from `epoch_counter`.

    Args:
        streams: [(stream, batch size), ...].
        epoch_counter: the `EpochCounter` of the `fit` that reads the result.
        lead: the index of the stream that sets the number of steps.
        drop_remainder: drop the lead stream's last partial batch.
        num_replicas: with `drop_remainder=False`, the replicas of the
            `tf.distribute` strategy that reads the batches: the last
            partial batch is cut to a multiple of them (at most
            `num_replicas - 1` examples fewer an epoch; the stream goes on
            where the epoch stopped, so every example is read as often): with
            a batch size that is a multiple of them, no replica gets an
            empty or a smaller share.

    Example:

    ```python
    import numpy as np
    from kerazoo.data import EpochCounter, paired_dataset

    # paired_dataset is epoch_batches over a labelled and an unlabelled stream:
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(16, 4)).astype("float32")
    ds = paired_dataset(x, np.zeros(16, int), x[:8], 4, seed=0, epoch_counter=EpochCounter())
    print(len(list(ds.take(4))))  # 4 steps of one epoch
    ```
    """
    for _, batch_size in streams:
        if not is_whole(batch_size, 1):
            raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}.")
    lead_stream, lead_batch = streams[lead]
    n = lead_stream.num_examples
    if n < lead_batch and drop_remainder:
        raise DataSizeError(
            f"batch_size={lead_batch} is larger than the training set ({n} examples); lower batch_size."
        )
    if not is_whole(num_replicas, 1):
        raise ValueError(f"num_replicas must be a whole number >= 1, got {num_replicas!r}.")
    # An empty share failed in TensorFlow's convolutions and made the
    # per-replica loss means NaN; an unequal one weighs its examples unequally.
    count = n if drop_remainder else n - (n % lead_batch) % num_replicas
    if count == 0:
        raise DataSizeError(
            f"{n} training examples cannot give each of {num_replicas} replicas one; use more data."
        )
    steps = n // lead_batch if drop_remainder else -(-count // lead_batch)

    def batches_of(epoch):
        parts = [
            stream.batches(epoch, count if i == lead else steps * batch, batch, drop_remainder)
            for i, (stream, batch) in enumerate(streams)
        ]
        return parts[0] if len(parts) == 1 else tf.data.Dataset.zip(tuple(parts))

    return _epochs(batches_of, steps, epoch_counter)


def _epochs(batches_of, steps, epoch_counter):
    """The dataset of one epoch, `batches_of(epoch)` (`steps` batches) for the
    epoch `epoch_counter` holds when iteration starts, with the endless
    stream of `all_epochs` from it."""

    def from_counter(_):
        # Runs at an iterator's first batch (iterators start lazily), i.e.
        # once `fit` is in the epoch EpochCounter has just set.
        return tf.data.Dataset.range(epoch_counter.variable.read_value(), _ENDLESS).flat_map(
            _as_written(batches_of)
        )

    # No autotuning: its optimisation thread, over an endless stream that
    # opens a new pipeline every epoch, held up the iterator's deletion at
    # the end of `fit` by up to 19 s (30 epochs of AdCo on digits), in about
    # half the runs.
    options = tf.data.Options()
    options.autotune.enabled = False
    # One epoch is the first `steps` batches of the endless stream: one
    # traced pipeline for both (tracing one took ~40 ms a stage).
    endless = tf.data.Dataset.from_tensors(0).flat_map(_as_written(from_counter))
    ds = endless.take(steps).apply(tf.data.experimental.assert_cardinality(steps))
    ds = ds.prefetch(2).with_options(options)
    ds._kerazoo_all_epochs = endless.prefetch(2).with_options(options)
    ds._kerazoo_epochs = (batches_of, steps, epoch_counter)
    return ds


def concatenate_epochs(datasets):
    """Datasets of `epoch_batches` read one after the other as one epoch:
    an epoch of several passes, each in its own order. Unlike
    `Dataset.concatenate`, the result keeps an `all_epochs` stream.

    Args:
        datasets: datasets from `train_dataset`, `paired_dataset`,
            `unlabelled_dataset` or a streamed protocol's `train_dataset`,
            read by the same `EpochCounter`.

    Example:

    ```python
    import numpy as np
    from kerazoo.data import EpochCounter, train_dataset
    from kerazoo.data.pipeline import concatenate_epochs

    x = np.arange(16, dtype="float32").reshape(16, 1)
    counter = EpochCounter()
    passes = [train_dataset(x, np.zeros(16, int), 4, seed=s, epoch_counter=counter) for s in (0, 1)]
    epoch = concatenate_epochs(passes)
    print(int(epoch.cardinality()))  # 8: two passes of 4 batches
    ```
    """
    parts = [getattr(d, "_kerazoo_epochs", None) for d in datasets]
    if None in parts:
        raise ValueError(
            "concatenate_epochs reads datasets made by train_dataset, paired_dataset, "
            "unlabelled_dataset or a streamed protocol's train_dataset; use Dataset.concatenate "
            "for others (fit then opens an iterator every epoch)."
        )
    counters = {id(counter) for _, _, counter in parts}
    if len(counters) != 1:
        raise ValueError("concatenate_epochs: the datasets must read the same EpochCounter.")

    def batches_of(epoch):
        passes = [batches(epoch) for batches, _, _ in parts]
        return functools.reduce(lambda first, second: first.concatenate(second), passes)

    return _epochs(batches_of, sum(steps for _, steps, _ in parts), parts[0][2])


def all_epochs(dataset):
    """The batches of every epoch from the one the `EpochCounter` holds when
    iteration starts, in one endless stream; None for a dataset that
    `epoch_batches` did not make.

    `fit` opens an iterator per epoch of a finite dataset, and opening one
    costs tens of milliseconds (more than a small model's whole epoch);
    `model.fit(all_epochs(ds), steps_per_epoch=int(ds.cardinality()), ...)`
    reads the same batches from one iterator. A call of the training step
    must not cross an epoch's end (`steps_per_execution` must divide the
    steps per epoch), or it would read the next epoch's first batches.

    Args:
        dataset: a dataset from `train_dataset`, `paired_dataset`,
            `unlabelled_dataset` or a streamed protocol's `train_dataset`.

    Example:

    ```python
    import numpy as np
    from kerazoo.data import EpochCounter, train_dataset
    from kerazoo.data.pipeline import all_epochs

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(16, 4)).astype("float32")
    ds = train_dataset(x, np.zeros(16, int), 4, seed=0, epoch_counter=EpochCounter())
    stream = iter(all_epochs(ds))
    first_two_epochs = [next(stream) for _ in range(2 * int(ds.cardinality()))]
    ```
    """
    return getattr(dataset, "_kerazoo_all_epochs", None)


def train_dataset(
    images,
    labels,
    batch_size,
    seed,
    epoch_counter,
    augment=False,
    drop_remainder=True,
    sampler="instance",
    drs_epoch=None,
    views=1,
    num_replicas=1,
):
    """Labelled training batches `(x, y)`, each epoch a function of (seed, epoch).

    Args:
        images, labels: arrays (N, H, W, C) float32 in [0, 1] and (N,) int.
        batch_size: examples per batch.
        seed: int; with the epoch it fixes order, draws and augmentation.
        epoch_counter: the `EpochCounter` passed to `fit` as a callback.
        augment: False, True (pad-4 crop + flip), a name in
            `augment.POLICIES` (`"crop_flip"`, `"views"`) or a function
            (image, key) -> image of stateless ops.
        drop_remainder: drop the last partial batch.
        sampler: `"instance"` (shuffle), `"class_balanced"` or `"drs"` (see
            `samplers.py`); every epoch has N examples.
        drs_epoch: the first class-balanced epoch of `sampler="drs"`.
        views: with views=2 a batch is `((view1, view2), y)`: two independent
            augmentations of the same images.
        num_replicas: with `drop_remainder=False`, cut the last partial
            batch to a multiple of the strategy's replicas (`epoch_batches`).

    Example:

    ```python
    import numpy as np
    from kerazoo.data import EpochCounter, train_dataset

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(32, 8, 8, 1)).astype("float32")
    y = np.repeat([0, 1], [28, 4])  # a long tail
    counter = EpochCounter()
    ds = train_dataset(x, y, 8, seed=0, epoch_counter=counter, sampler="class_balanced")
    images, labels = next(iter(ds))  # about half of each class
    ```
    """
    stream = _Stream(images, labels, seed, 0, sampler, drs_epoch, augment, views)
    return epoch_batches(
        [(stream, batch_size)], epoch_counter, drop_remainder=drop_remainder, num_replicas=num_replicas
    )


def unlabelled_dataset(images, batch_size, seed, epoch_counter, augment=False, drop_remainder=True, views=1):
    """Batches of images only: `x`, or `(view1, view2)` with views=2.

    The arguments mean what they mean in `train_dataset`; the order is a
    fresh permutation every epoch.

    Args:
        images: (N, H, W, C) images.
        batch_size, seed, epoch_counter, augment, drop_remainder: as `train_dataset`'s.
        views: 1 for batches `x`, 2 for `(view1, view2)`.

    Example:

    ```python
    import numpy as np
    from kerazoo.data import EpochCounter, unlabelled_dataset

    x = np.random.default_rng(0).uniform(size=(16, 8, 8, 1)).astype("float32")
    ds = unlabelled_dataset(x, 8, seed=0, epoch_counter=EpochCounter(), augment="views", views=2)
    query_images, key_images = next(iter(ds))
    ```
    """
    stream = _Stream(images, None, seed, 0, "instance", None, augment, views)
    return epoch_batches([(stream, batch_size)], epoch_counter, drop_remainder=drop_remainder)


def paired_dataset(
    images,
    labels,
    unlabelled_images,
    batch_size,
    seed,
    epoch_counter,
    unlabelled_batch_size=None,
    epoch_length="labelled",
    sampler="instance",
    drs_epoch=None,
    augment=False,
):
    """Batches `((x, y), x_unlabelled)` from a labelled and an unlabelled array.

    The array named by `epoch_length` (`"labelled"` or `"unlabelled"`) is
    read once per epoch, its last partial batch dropped; the other is cycled
    to fill as many batches, continuing across epochs where it stopped (a
    fresh order for every pass over it). `sampler`/`drs_epoch` apply to the
    labelled array, `augment` to both; the rest means what it means in
    `train_dataset`.

    Args:
        unlabelled_batch_size: unlabelled images per batch (default `batch_size`).

    Example:

    ```python
    import numpy as np
    from kerazoo.data import EpochCounter, paired_dataset

    rng = np.random.default_rng(0)
    source = rng.uniform(size=(16, 8, 8, 1)).astype("float32")
    labels = rng.integers(0, 3, size=16)
    target = rng.uniform(size=(24, 8, 8, 1)).astype("float32")
    ds = paired_dataset(source, labels, target, 8, seed=0, epoch_counter=EpochCounter())
    (x_source, y_source), x_target = next(iter(ds))
    ```
    """
    labelled = (_Stream(images, labels, seed, 0, sampler, drs_epoch, augment, 1), batch_size)
    unlabelled = (
        _Stream(unlabelled_images, None, seed, 1, "instance", None, augment, 1),
        unlabelled_batch_size or batch_size,
    )
    lengths = ("labelled", "unlabelled")
    if epoch_length not in lengths:
        raise ValueError(
            f"epoch_length={epoch_length!r}: use 'labelled' or 'unlabelled' (the array read once per epoch)."
        )
    return epoch_batches([labelled, unlabelled], epoch_counter, lead=lengths.index(epoch_length))


def eval_dataset(images, labels, batch_size=256):
    """Batches in order, the last one partial.

    Args:
        images: (N, H, W, C) images.
        labels: (N,) labels.
        batch_size: the batch size.

    Example:

    ```python
    import numpy as np
    from kerazoo.data import eval_dataset

    ds = eval_dataset(np.zeros((10, 8, 8, 1), "float32"), np.zeros(10, int), batch_size=4)
    print([len(y) for _, y in ds])  # [4, 4, 2]
    ```
    """
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)
