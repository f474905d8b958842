"""Long-tail subsampling: Zipf (the GIT paper's K49-LT) or exponential (CIFAR-LT).

Zipf: the class at rank r (1-based, ranks assigned by a seeded permutation)
keeps
    size_r = max(int(n_max * r ** -exponent), min_size)
images, where n_max is the size of the smallest class in the full split, so
every class can supply its quota. With exponent 2.0 on K49 (n_max 4800) this
reproduces the paper's sizes [4800, 1200, 533, 300, ...].

Exponential with imbalance ratio rho (Cao et al. 2019, LDAM's CIFAR-LT code,
used by Balanced Softmax and BatchFormer): class i (0-based, in class-id
order, as that code) keeps
    size_i = max(int(n_max * rho ** (-i / (C - 1))), 1)
so CIFAR-100-LT with rho = 100 has [500, 477, ..., 5] (10,847 images).
"""

import numpy as np

from kerazoo.data.errors import DataSizeError


def zipf_class_sizes(num_classes, max_size, exponent=2.0, min_size=5):
    """Per-rank class sizes of a Zipf long tail (rank 1 first).

    Args:
        num_classes: number of classes.
        max_size: size of the largest class.
        exponent: the Zipf exponent.
        min_size: the smallest size.

    Example:

    ```python
    from kerazoo.data.longtail import zipf_class_sizes

    print(zipf_class_sizes(5, 100))  # [100, 25, 11, 6, 5]
    ```

    References:
        - [Cao et al., Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss, NeurIPS
          2019](https://arxiv.org/abs/1906.07413)
    """
    if not exponent > 0:
        raise ValueError(f"zipf_class_sizes: exponent must be > 0 (a tail that falls), got {exponent}.")
    ranks = np.arange(1, num_classes + 1, dtype=np.float64)
    sizes = (max_size * ranks**-exponent).astype(np.int64)
    return np.maximum(sizes, min_size)


def exponential_class_sizes(num_classes, max_size, imbalance=100.0):
    """Per-class sizes of an exponential long tail (class 0 first), largest / smallest = imbalance.

    Args:
        num_classes: number of classes.
        max_size: size of class 0.
        imbalance: largest / smallest.

    Example:

    ```python
    from kerazoo.data.longtail import exponential_class_sizes

    print(exponential_class_sizes(3, 100, imbalance=100.0))  # [100, 10, 1]
    ```

    References:
        - [Cao et al., Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss, NeurIPS
          2019](https://arxiv.org/abs/1906.07413)
    """
    if not imbalance >= 1:
        raise ValueError(
            f"exponential_class_sizes: imbalance must be >= 1 (largest / smallest), got {imbalance}."
        )
    positions = np.arange(num_classes, dtype=np.float64) / max(num_classes - 1, 1)
    sizes = (max_size * imbalance**-positions).astype(np.int64)
    return np.maximum(sizes, 1)


def long_tail_indices(labels, exponent=2.0, min_size=5, seed=0, imbalance=None):
    """Indices of a long-tailed subset of `labels`, sorted: Zipf, or exponential
    with ratio `imbalance` when it is given (then `exponent` and `min_size` are unused).

    Returns:
        (indices, class_sizes): the kept example indices and a dict
        class -> kept count.

    Args:
        labels: (N,) class labels.
        exponent, min_size: of the Zipf tail.
        seed: which examples are kept.
        imbalance: None, or the ratio of an exponential tail.

    Example:

    ```python
    import numpy as np
    from kerazoo.data.longtail import long_tail_indices

    labels = np.repeat(np.arange(4), 50)
    indices, sizes = long_tail_indices(labels, imbalance=10.0)
    print(sizes)
    ```

    References:
        - [Cao et al., Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss, NeurIPS
          2019](https://arxiv.org/abs/1906.07413)
    """
    labels = np.asarray(labels)
    classes = np.unique(labels)
    counts = np.array([(labels == c).sum() for c in classes])
    if imbalance is None and min_size > counts.min():
        raise DataSizeError(f"min_size={min_size} exceeds the smallest class ({counts.min()} images).")
    rng = np.random.default_rng(seed)
    if imbalance is None:
        ranked = rng.permutation(classes)
        sizes = zipf_class_sizes(len(classes), counts.min(), exponent, min_size)
    else:
        ranked = classes
        sizes = exponential_class_sizes(len(classes), counts.min(), imbalance)
    keep, class_sizes = [], {}
    for cls, size in zip(ranked, sizes):
        members = np.flatnonzero(labels == cls)
        keep.append(rng.choice(members, size=size, replace=False))
        class_sizes[int(cls)] = int(size)
    return np.sort(np.concatenate(keep)), class_sizes
