"""Tensor operations shared by kerazoo's layers and models.

`l2_normalize` is PyTorch's `F.normalize` (the methods' official code uses
it for cosine heads, contrastive keys and negative banks), in `keras.ops`
and in NumPy; `outputs_numpy` runs a model over an array in inference mode;
`check_class_ids` checks the labels a loss is given; `gather_replica_rows`
gathers a batch across replicas and says where this replica's rows are;
`replica_rows_of_draw` gives each replica its own rows of a random draw.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

# F.normalize's eps: a vector's norm is clamped to at least this before dividing.
EPSILON = 1e-12


def l2_normalize(x, axis):
    """x / max(‖x‖, ε) along `axis`, as PyTorch's `F.normalize` (ε = 1e-12).

    Written as x · rsqrt(max(‖x‖², ε²)) (the same value) so that the
    gradient stays finite for an all-zero vector, where d√s/ds is infinite.
    A float16 or bfloat16 `x` is normalised in float32 and the result cast
    back, as PyTorch's autocast runs norms in float32: in float16 ε² rounds
    to 0 (NaN for a zero vector) and ‖x‖² overflows once ‖x‖ > 256.
    (`keras.ops.normalize` clamps 1/‖x‖ at 1/1e-7 instead, which differs for
    tiny vectors and has no finite gradient at zero.)

    Args:
        x: a tensor.
        axis: the axis whose vectors get unit length.

    Returns:
        `x` with unit L2 norm along `axis` (zero vectors stay zero).

    Example:

    ```python
    from kerazoo.ops import l2_normalize

    print(l2_normalize([[3.0, 4.0]], axis=1))  # [[0.6, 0.8]]
    ```
    """
    x = ops.convert_to_tensor(x)
    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype in ("float16", "bfloat16"):
        return ops.cast(l2_normalize(ops.cast(x, "float32"), axis), dtype)
    squared = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * ops.rsqrt(ops.maximum(squared, EPSILON**2))


def l2_normalize_numpy(x, axis):
    """`l2_normalize` in NumPy, in `x`'s own precision (herding, imprinting).

    Args:
        x: a NumPy array.
        axis: the axis to normalise along.

    Example:

    ```python
    import numpy as np
    from kerazoo.ops import l2_normalize_numpy

    print(l2_normalize_numpy(np.array([[3.0, 4.0], [0.0, 0.0]]), axis=1))  # [[0.6 0.8] [0. 0.]]
    ```
    """
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), EPSILON)


def outputs_numpy(model, images, batch_size=512):
    """`model`'s outputs on `images` in inference mode, as one NumPy array
    (float32 when the model computes in bfloat16 or float16): the model
    called eagerly on one batch after another.

    Evaluation code (herding, class means, probes) calls models that change
    from phase to phase; `model.predict` traces a function for each new
    model and costs a fixed ~0.2 s a call more (digits convnet, 2 cores),
    and gives the same numbers.

    Args:
        model: a Keras model (or layer) with a `training` argument.
        images: a NumPy array, batch first.
        batch_size: images per call.

    Example:

    ```python
    import numpy as np
    import kerazoo
    from kerazoo.ops import outputs_numpy

    backbone = kerazoo.backbones.get("convnet", width=8)
    features = outputs_numpy(backbone, np.zeros((1000, 8, 8, 1), "float32"))
    print(features.shape)  # (1000, 8)
    ```
    """
    outputs = np.concatenate(
        [
            ops.convert_to_numpy(model(images[i : i + batch_size], training=False))
            for i in range(0, len(images), batch_size)
        ]
    )
    # Under mixed precision the outputs are bfloat16 (or float16), which
    # NumPy-side evaluation (scikit-learn's probes and kNN) cannot take.
    return outputs.astype("float32") if outputs.dtype.name in ("bfloat16", "float16") else outputs


def check_class_ids(labels, num_classes, where="labels"):
    """`labels` as a (B,) int32 tensor of class ids, checked to lie in
    [0, num_classes): at once when their values are known (eagerly), else
    by a check that runs in the graph (on a CPU an out-of-range label would
    fail with an opaque gather error, on a GPU give NaN silently; XLA drops
    the check).

    Args:
        labels: (B,) or (B, 1) integer class ids.
        num_classes: C.
        where: who asks, for the message (e.g. `"balanced_softmax_loss: labels"`).

    Returns:
        the labels, (B,) int32.

    Raises:
        ValueError: one-hot or probability rows instead of ids, or ids out
            of range or fractional (when known; 1.7 would be truncated to 1).

    Example:

    ```python
    import numpy as np
    from kerazoo.ops import check_class_ids

    print(check_class_ids(np.array([[2], [0]]), 3).numpy())  # [2 0]
    try:
        check_class_ids(np.eye(3), 3)
    except ValueError as error:
        print(error)  # labels are class ids of shape (B,), not ...
    ```
    """
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank is not None and (
        labels.shape.rank > 2 or (labels.shape.rank == 2 and labels.shape[-1] != 1)
    ):
        raise ValueError(
            f"{where} are class ids of shape (B,), not rows of shape {labels.shape} "
            "(one-hot or probabilities); pass argmax(labels, axis=-1)."
        )
    known = tf.get_static_value(labels)
    if labels.dtype.is_floating and known is not None and not np.all(np.equal(np.mod(known, 1), 0)):
        raise ValueError(
            f"{where} are class ids, whole numbers; got fractions such as {known[np.mod(known, 1) != 0][0]}."
        )
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    message = f"{where} must be class ids in [0, {num_classes})"
    known = tf.get_static_value(labels)
    if known is not None:
        bad = known[(known < 0) | (known >= num_classes)]
        if bad.size:
            raise ValueError(f"{message}; got {sorted(set(bad.tolist()))}.")
        return labels
    checks = [
        tf.debugging.assert_non_negative(labels, message=message),
        tf.debugging.assert_less(labels, tf.constant(num_classes, tf.int32), message=message),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(labels)


def gather_replica_rows(context, x):
    """(the global batch `x` gathered across replicas in replica order,
    [start, end) of this replica's rows in it).

    Per-replica batches may differ in size (a last partial batch split
    2 + 1), so the offsets come from the gathered sizes, not from
    replica id × B: with the latter, AdCo's positives were other rows'
    keys on such a batch.

    Args:
        context: the replica context (`tf.distribute.get_replica_context()`).
        x: this replica's rows, (B_r, ...).

    Returns:
        (gathered, (start, end)), with `gathered[start:end]` this replica's `x`.

    Example:

    ```python
    import numpy as np
    import tensorflow as tf
    from kerazoo.ops import gather_replica_rows

    context = tf.distribute.get_replica_context()  # the default: one replica
    gathered, (start, end) = gather_replica_rows(context, np.zeros((3, 2), "float32"))
    print(gathered.shape, int(start), int(end))  # (3, 2) 0 3
    ```
    """
    size = ops.shape(x)[0:1]
    sizes = context.all_gather(ops.cast(size, "int32"), axis=0)
    replica = context.replica_id_in_sync_group
    start = ops.sum(sizes[:replica])
    return context.all_gather(x, axis=0), (start, start + sizes[replica])


def replica_rows_of_draw(draw, rows, capacity=None):
    """This replica's `rows` rows of a draw for every replica: per-row random
    numbers (styles, masks, picks) that differ between replicas.

    Keras keeps a copy of a `SeedGenerator`'s state per replica, all alike,
    so a draw made in each replica gave every replica the same numbers: two
    replicas translated their images with the same styles, where one device
    draws a style per image. Stateless draws fill their rows in order, so
    replica r taking rows [r·B, (r+1)·B) of a draw for R·B rows gets, on
    equal shares of the global batch, exactly the rows one device draws for
    them; with one replica this is `draw(rows)`. Where the row count varies
    between replicas (GIT translates only the rows it replaces), `capacity`,
    a bound equal on every replica (the replica's batch size), keeps their
    rows apart: replica r takes `rows` rows from r·capacity. Replicas given
    unequal batches (a ragged last batch) can share rows.

    Args:
        draw: a function of a row count that returns that many rows of
            random numbers (e.g. `lambda n: keras.random.normal((n, 8),
            seed=generator)`), the same rows for the same count and seed.
        rows: this replica's row count (a tensor or int).
        capacity: an upper bound of `rows`, the same on every replica
            (default: `rows`).

    Example:

    ```python
    import keras
    from kerazoo.ops import replica_rows_of_draw

    generator = keras.random.SeedGenerator(0)
    styles = replica_rows_of_draw(lambda n: keras.random.normal((n, 8), seed=generator), 4)
    print(styles.shape)  # (4, 8)
    ```
    """
    context = tf.distribute.get_replica_context()
    replicas = 1 if context is None else context.num_replicas_in_sync
    if replicas == 1:
        return draw(rows)
    capacity = rows if capacity is None else capacity
    start = context.replica_id_in_sync_group * capacity
    return draw(capacity * replicas)[start : start + rows]
