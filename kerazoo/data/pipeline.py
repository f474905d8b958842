"""tf.data input pipelines whose order depends only on (seed, epoch).

`BackupAndRestore` resumes a killed run at the start of the epoch it was in,
but a freshly created dataset would restart its shuffle sequence at epoch 0.
Here the shuffle order of epoch e is drawn from a stateless RNG seeded with
(seed, e), where e is read from a variable that `EpochCounter` sets at the
start of every epoch, so a resumed run sees exactly the batches an
uninterrupted run would.
"""

import keras
import tensorflow as tf

from kerazoo.data.transforms import pad_crop_flip


class EpochCounter(keras.callbacks.Callback):
    """Keeps `variable` equal to the epoch `fit` is in.

    Example:

    ```python
    counter = EpochCounter()
    ds = train_dataset(x, y, batch_size=32, seed=0, epoch_counter=counter)
    model.fit(ds, epochs=5, callbacks=[counter])
    ```
    """

    def __init__(self):
        super().__init__()
        self.variable = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")

    def on_epoch_begin(self, epoch, logs=None):
        self.variable.assign(epoch)


def train_dataset(
    images, labels, batch_size, seed, epoch_counter, augment=False, drop_remainder=True
):
    """Shuffled training batches, reshuffled every epoch as a function of
    (seed, epoch). `augment` applies pad-4 crop and horizontal flip."""
    num_examples = len(images)
    if num_examples < batch_size and drop_remainder:
        raise ValueError(
            f"batch_size={batch_size} is larger than the training set "
            f"({num_examples} examples)."
        )
    images = tf.convert_to_tensor(images)
    labels = tf.convert_to_tensor(labels)

    def epoch_order(_):
        seed_pair = tf.stack([tf.constant(seed, tf.int64), epoch_counter.variable.read_value()])
        order = tf.argsort(tf.random.stateless_uniform([num_examples], seed=seed_pair))
        return tf.data.Dataset.from_tensor_slices(order)

    ds = tf.data.Dataset.from_tensors(0).flat_map(epoch_order)
    ds = ds.map(lambda i: (tf.gather(images, i), tf.gather(labels, i)))
    if augment:
        ds = ds.map(
            lambda x, y: (pad_crop_flip(x), y), num_parallel_calls=tf.data.AUTOTUNE
        )
    steps = num_examples // batch_size if drop_remainder else -(-num_examples // batch_size)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.apply(tf.data.experimental.assert_cardinality(steps)).prefetch(2)


def eval_dataset(images, labels, batch_size=256):
    """Batches in order, the last one partial."""
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)
