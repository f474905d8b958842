"""Which examples one pass over the data visits, drawn statelessly from a key.

A sampler is a function `draw(key, epoch) -> indices`: the N example
indices (N = dataset size) of one pass, int32 (N,). `key`, a shape [2]
integer seed tensor, fixes every random choice; `epoch`, a scalar tensor
read in the graph, only selects a phase of a schedule (DRS's switch), so a
run resumed at any epoch draws what an uninterrupted run would.

- `"instance"`: a random permutation, every example once per pass.
- `"class_balanced"`: N draws with replacement, example i with probability
  ∝ 1 / (number of examples of its class), so every class is equally
  likely. This is the GIT code's `WeightedRandomSampler(weights=1/class
  count, num_samples=N)`.
- `"drs"`: deferred re-sampling (Cao et al. 2019, LDAM-DRW; the GIT code's
  `DRS_Simple`): `"instance"` before epoch `drs_epoch`, `"class_balanced"`
  from it on.
"""

import numpy as np
import tensorflow as tf

SAMPLERS = ("instance", "class_balanced", "drs")


def instance(num_examples):
    """A fresh permutation of range(num_examples) per key.

    Args:
        num_examples: N.

    Returns:
        A function (key, epoch) -> int32 (N,) indices.

    Example:

    ```python
    import tensorflow as tf
    from kerazoo.data.samplers import instance

    print(instance(5)(tf.constant([0, 3]), 0))  # a permutation of 0..4
    ```
    """

    def draw(key, epoch):
        return tf.argsort(tf.random.stateless_uniform([num_examples], seed=key))

    return draw


def class_balanced(labels):
    """len(labels) draws with replacement, every class equally likely.

    Args:
        labels: (N,) class labels.

    Returns:
        A function (key, epoch) -> int32 (N,) indices.

    Example:

    ```python
    import tensorflow as tf
    from kerazoo.data.samplers import class_balanced

    print(class_balanced([0, 0, 0, 1])(tf.constant([0, 3]), 0))  # index 3 about half the time
    ```
    """
    labels = np.asarray(labels)
    weights = 1.0 / np.bincount(labels)[labels]
    # float64 keeps the cumulative sum exact to ~1e-16 for any dataset size.
    cdf = tf.constant(np.cumsum(weights) / weights.sum(), tf.float64)
    last = len(labels) - 1

    def draw(key, epoch):
        u = tf.random.stateless_uniform([len(labels)], seed=key, dtype=tf.float64)
        # Inverse-CDF sampling; the clamp absorbs a last cdf entry rounded below 1.
        return tf.minimum(tf.searchsorted(cdf, u, side="right"), last)

    return draw


def deferred(labels, drs_epoch):
    """Instance-balanced before `drs_epoch`, class-balanced from it on (DRS).

    Args:
        labels: (N,) class labels.
        drs_epoch: the first class-balanced epoch.

    Returns:
        A function (key, epoch) -> int32 (N,) indices.

    Example:

    ```python
    import tensorflow as tf
    from kerazoo.data.samplers import deferred

    sampler = deferred([0, 0, 0, 1], drs_epoch=2)
    print(sampler(tf.constant([0, 3]), 0), sampler(tf.constant([0, 3]), 2))
    ```

    References:
        - [Cao et al., Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss, NeurIPS
          2019](https://arxiv.org/abs/1906.07413)
    """
    before, after = instance(len(labels)), class_balanced(labels)

    def draw(key, epoch):
        return tf.cond(epoch < drs_epoch, lambda: before(key, epoch), lambda: after(key, epoch))

    return draw


def make_sampler(name, num_examples, labels=None, drs_epoch=None):
    """The sampler called `name` (one of `SAMPLERS`) for a dataset.

    Args:
        name: `"instance"`, `"class_balanced"` or `"drs"`.
        num_examples: dataset size N (every pass has N indices).
        labels: int (N,) class labels; needed by the class-balanced samplers.
        drs_epoch: the first class-balanced epoch of `"drs"` (only there).

    Example:

    ```python
    import numpy as np
    import tensorflow as tf
    from kerazoo.data.samplers import make_sampler

    y = np.array([0, 0, 0, 1])
    sampler = make_sampler("drs", len(y), y, drs_epoch=45)
    print(sampler(tf.constant([0, 1]), 45))
    ```
    """
    if name not in SAMPLERS:
        raise ValueError(f"Unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}.")
    if (name == "drs") != (drs_epoch is not None):
        raise ValueError(
            "sampler='drs' needs drs_epoch (the first class-balanced epoch, e.g. "
            "drs_epoch=160 of 200 as in LDAM-DRW), and drs_epoch means nothing "
            f"to other samplers; got sampler={name!r}, drs_epoch={drs_epoch!r}."
        )
    if name == "instance":
        return instance(num_examples)
    if labels is None:
        raise ValueError(
            f"sampler={name!r} balances classes and needs labels; an unlabelled "
            "stream can only use sampler='instance'."
        )
    if len(labels) != num_examples:
        raise ValueError(f"{len(labels)} labels for {num_examples} examples.")
    return class_balanced(labels) if name == "class_balanced" else deferred(labels, drs_epoch)
