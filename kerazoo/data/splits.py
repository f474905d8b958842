"""Seeded splits: class order and class-incremental phases, few labels,
source/target halves for domain adaptation."""

import numpy as np

from kerazoo.data.errors import DataSizeError


def class_order(num_classes, seed):
    """A seeded permutation of the classes.

    Matches the LUCIR code's `np.random.seed(seed); np.random.shuffle(order)`,
    so seed 1993 gives the usual CIFAR-100 class order.

    Args:
        num_classes: number of classes.
        seed: NumPy's legacy seed.

    Example:

    ```python
    from kerazoo.data.splits import class_order

    print(class_order(10, seed=1993))
    ```

    References:
        - [Hou et al., Learning a Unified Classifier Incrementally via Rebalancing, CVPR
          2019](https://openaccess.thecvf.com/content_CVPR_2019/html/Hou_Learning_a_Unified_Classifier_Incrementally_via_Rebalancing_CVPR_2019_paper.html)
    """
    order = np.arange(num_classes)
    np.random.RandomState(seed).shuffle(order)
    return order


def incremental_phases(order, num_base, num_phases):
    """Split a class order into a base phase and `num_phases` equal phases.

    Args:
        order: the class order.
        num_base: classes of the base phase.
        num_phases: incremental phases after it.

    Example:

    ```python
    from kerazoo.data.splits import incremental_phases

    print(incremental_phases(list(range(10)), num_base=4, num_phases=3))  # 4 classes, then 3 x 2
    ```

    References:
        - [Hou et al., Learning a Unified Classifier Incrementally via Rebalancing, CVPR
          2019](https://openaccess.thecvf.com/content_CVPR_2019/html/Hou_Learning_a_Unified_Classifier_Incrementally_via_Rebalancing_CVPR_2019_paper.html)
    """
    order = np.asarray(order)
    rest = len(order) - num_base
    if num_base < 1 or num_phases < 0 or rest < 0 or (num_phases and rest % num_phases):
        raise ValueError(
            f"Cannot split {len(order)} classes into {num_base} base classes and "
            f"{num_phases} equal phases ({rest} classes left for the phases)."
        )
    step = rest // num_phases if num_phases else 0
    return [order[:num_base]] + [
        order[num_base + i * step : num_base + (i + 1) * step] for i in range(num_phases)
    ]


def few_label_indices(labels, per_class, seed):
    """`(labelled, unlabelled)` index arrays with `per_class` labels per class.

    Args:
        labels: (N,) class labels.
        per_class: labels kept per class.
        seed: which ones.

    Example:

    ```python
    import numpy as np
    from kerazoo.data.splits import few_label_indices

    labelled, unlabelled = few_label_indices(np.repeat([0, 1], 10), per_class=2, seed=0)
    print(len(labelled), len(unlabelled))  # 4 16
    ```
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    labelled = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        if per_class > len(members):
            raise DataSizeError(
                f"Class {cls} has {len(members)} training images, fewer than the {per_class} to label "
                "per class; lower labels_per_class."
            )
        labelled.append(rng.choice(members, size=per_class, replace=False))
    labelled = np.sort(np.concatenate(labelled))
    unlabelled = np.setdiff1d(np.arange(len(labels)), labelled)
    return labelled, unlabelled


def halves(num_examples, seed):
    """Two disjoint seeded halves `(first, second)` of range(num_examples).

    Args:
        num_examples: N.
        seed: the split's seed.

    Example:

    ```python
    from kerazoo.data.splits import halves

    first, second = halves(10, seed=0)
    print(sorted([*first, *second]) == list(range(10)))  # True
    ```
    """
    perm = np.random.default_rng(seed).permutation(num_examples)
    cut = num_examples // 2
    return np.sort(perm[:cut]), np.sort(perm[cut:])


def holdout_indices(labels, fraction, seed):
    """`(train, test)` index arrays: a seeded, stratified hold-out.

    Each class keeps round(fraction * n) of its n examples for testing, at
    least one, and at least one for training, so every class is in both
    splits (a class needs two examples).

    Args:
        labels: (N,) class labels.
        fraction: the share of each class kept for testing.
        seed: the split's seed.

    Example:

    ```python
    import numpy as np
    from kerazoo.data.splits import holdout_indices

    train, test = holdout_indices(np.repeat([0, 1], 10), 0.2, seed=0)
    print(len(train), len(test))  # 16 4
    ```
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    test = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        if len(members) < 2:
            raise ValueError(f"Class {cls} has {len(members)} example; a hold-out needs at least 2.")
        count = min(max(1, round(fraction * len(members))), len(members) - 1)
        test.append(rng.choice(members, size=count, replace=False))
    test = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(len(labels)), test), test
