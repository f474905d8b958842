"""Seeded splits: class order and class-incremental phases, few labels,
source/target halves for domain adaptation."""

import numpy as np


def class_order(num_classes, seed):
    """A seeded permutation of the classes.

    Matches the LUCIR code's `np.random.seed(seed); np.random.shuffle(order)`,
    so seed 1993 gives the usual CIFAR-100 class order.
    """
    order = np.arange(num_classes)
    np.random.RandomState(seed).shuffle(order)
    return order


def incremental_phases(order, num_base, num_phases):
    """Split a class order into a base phase and `num_phases` equal phases."""
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
    """`(labelled, unlabelled)` index arrays with `per_class` labels per class."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    labelled = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        if per_class > len(members):
            raise ValueError(f"Class {cls} has {len(members)} images, fewer than per_class={per_class}.")
        labelled.append(rng.choice(members, size=per_class, replace=False))
    labelled = np.sort(np.concatenate(labelled))
    unlabelled = np.setdiff1d(np.arange(len(labels)), labelled)
    return labelled, unlabelled


def halves(num_examples, seed):
    """Two disjoint seeded halves `(first, second)` of range(num_examples)."""
    perm = np.random.default_rng(seed).permutation(num_examples)
    cut = num_examples // 2
    return np.sort(perm[:cut]), np.sort(perm[cut:])


def holdout_indices(labels, fraction, seed):
    """`(train, test)` index arrays: a seeded, stratified hold-out.

    Each class keeps round(fraction * n) of its n examples for testing, at
    least one, and at least one for training, so every class is in both
    splits (a class needs two examples).

    Example: `train, test = holdout_indices(labels, 0.2, seed=0)`.
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
