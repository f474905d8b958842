"""Evaluation metrics on NumPy predictions."""

import numpy as np

from kerazoo._checks import is_whole


def per_class_accuracy(labels, predictions, num_classes):
    """Recall of every class; NaN for a class absent from `labels`.

    Args:
        labels: (N,) true classes.
        predictions: (N,) predicted classes.
        num_classes: length of the result.

    Returns:
        float64 (num_classes,).

    Example:

    ```python
    from kerazoo.metrics import per_class_accuracy

    print(per_class_accuracy([0, 0, 1, 1], [0, 1, 1, 1], num_classes=3))  # [0.5 1.  nan]
    ```
    """
    labels = np.asarray(labels)
    correct = np.asarray(predictions) == labels
    totals = np.bincount(labels, minlength=num_classes)
    hits = np.bincount(labels, weights=correct, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, hits / np.maximum(totals, 1), np.nan)


def accuracy(labels, predictions):
    """Share of `predictions` equal to `labels`.

    Args:
        labels: (N,) true classes.
        predictions: (N,) predicted classes.

    Example:

    ```python
    from kerazoo.metrics import accuracy

    print(accuracy([0, 0, 1, 1], [0, 1, 1, 1]))  # 0.75
    ```
    """
    return float(np.mean(np.asarray(predictions) == np.asarray(labels)))


def balanced_accuracy(labels, predictions, num_classes):
    """Mean per-class recall over the classes present in `labels`.

    Args:
        labels: (N,) true classes.
        predictions: (N,) predicted classes.
        num_classes: number of classes.

    Example:

    ```python
    from kerazoo.metrics import balanced_accuracy

    print(balanced_accuracy([0, 0, 0, 1], [0, 0, 0, 0], num_classes=2))  # 0.5
    ```
    """
    return float(np.nanmean(per_class_accuracy(labels, predictions, num_classes)))


def average_incremental_accuracy(phase_accuracies):
    """Mean of the accuracy on all seen classes after each phase, the base
    phase included (as the official LUCIR code evaluates it).

    Args:
        phase_accuracies: the accuracy on all seen classes after each phase.

    Example:

    ```python
    from kerazoo.metrics import average_incremental_accuracy

    print(average_incremental_accuracy([0.9, 0.7, 0.6]))
    ```

    References:
        - [Rebuffi et al., iCaRL: Incremental Classifier and Representation Learning, CVPR
          2017](https://arxiv.org/abs/1611.07725)
    """
    return float(np.mean(phase_accuracies))


def average_forgetting(task_accuracy):
    """Mean over earlier tasks j of max_{l<T} a[l][j] − a[T][j] at the final
    phase T (Chaudhry et al., 2018). `task_accuracy[i][j]` is the accuracy on
    task j's classes after phase i (j <= i). 0 with a single phase.

    Args:
        task_accuracy: `task_accuracy[l][j]`, the accuracy on task j after phase l
            (rows of growing length).

    Example:

    ```python
    from kerazoo.metrics import average_forgetting

    print(average_forgetting([[0.9], [0.7, 0.8], [0.6, 0.7, 0.9]]))  # mean(0.9 - 0.6, 0.8 - 0.7) = 0.2
    ```
    """
    final = len(task_accuracy) - 1
    if final == 0:
        return 0.0
    drops = [
        max(task_accuracy[later][j] for later in range(j, final)) - task_accuracy[final][j]
        for j in range(final)
    ]
    return float(np.mean(drops))


def shot_accuracy(labels, predictions, class_counts, many=100, few=20):
    """Accuracy on the many-, medium- and few-shot classes of a long tail.

    A class is many-shot with more than `many` training images, few-shot
    with fewer than `few`, medium-shot otherwise (the split of Liu et al.
    2019, OLTR, used by Balanced Softmax and BatchFormer on ImageNet-LT and
    CIFAR-LT). Each group's accuracy is over its test images (on a balanced
    test set: the mean recall of its classes); NaN for an empty group.

    Args:
        labels, predictions: test labels and predicted classes.
        class_counts: training images per class.
        many: a class with more training images than this is many-shot (OLTR: 100).
        few: a class with fewer is few-shot (OLTR: 20); at most `many`.

    Returns:
        {"many": float, "medium": float, "few": float}.

    Example:

    ```python
    import numpy as np
    from kerazoo.metrics import shot_accuracy

    labels = np.array([0, 0, 1, 1, 2, 2])
    predictions = np.array([0, 0, 1, 0, 0, 0])
    print(shot_accuracy(labels, predictions, class_counts=[500, 50, 5]))  # many 1.0, medium 0.5, few 0.0
    ```
    """
    counts = np.asarray(class_counts)
    labels = np.asarray(labels)
    correct = np.asarray(predictions) == labels
    if few > many:
        raise ValueError(f"shot_accuracy: few ({few}) must be <= many ({many}), or a class is both.")
    groups = {"many": counts > many, "medium": (counts >= few) & (counts <= many), "few": counts < few}
    result = {}
    for name, members in groups.items():
        rows = members[labels]
        result[name] = float(correct[rows].mean()) if rows.any() else float("nan")
    return result


def ekld(predict_fn, images, labels, transform_fn, num_transforms, num_classes=None, batch_size=4096):
    """Per-class expected KL divergence between predictions on an image and
    on random transforms of *the same* image (GIT's invariance metric).

        eKLD(c) = mean over x of class c and draws k of KL(p(y|x) || p(y|T_k(x)))

    (Zhou et al., ICLR 2022, Section 3; lower = more invariant). GIT's helper
    `calc_outputs_inv` pairs `class_data[i]` with transforms of
    `class_data[perm[i]]`, i.e. of a different image; here row i of every
    draw is a transform of row i of `images`.

    Args:
        predict_fn: images -> logits (B, C) (log-probabilities up to a
            per-row constant; a softmax is taken here).
        images: (N, H, W, C) untransformed images (GIT: 40 per class).
        labels: (N,) their classes.
        transform_fn: (images, draw) -> transformed images, one random
            transform per image, seeded by the draw index (GIT: 100 draws).
        num_transforms: draws per image.
        num_classes: length of the result (default max(labels) + 1).
        batch_size: images per `predict_fn` call: the draws go in groups of
            as many as fit (at least one a call), since a call has a fixed
            cost (100 calls of 400 digits images took 1.8 s eagerly, 10
            calls of 4,000 0.4 s, with the same outputs).

    Returns:
        float64 (num_classes,): eKLD of every class, NaN for a class absent
        from `labels`.

    Example:

    ```python
    import numpy as np
    from kerazoo.metrics import ekld

    rng = np.random.default_rng(0)
    images = rng.uniform(size=(6, 4, 4, 1)).astype("float32")
    labels = np.array([0, 0, 0, 1, 1, 1])
    weights = rng.normal(size=(16, 2)).astype("float32")

    def predict_fn(x):
        return x.reshape(len(x), -1) @ weights

    def transform_fn(x, draw):
        return np.clip(x + np.random.default_rng(draw).normal(0, 0.1, x.shape), 0, 1)

    print(ekld(predict_fn, images, labels, transform_fn, num_transforms=3))  # (2,), one per class
    ```

    References:
        - [Zhou et al., Do Deep Networks Transfer Invariances Across Classes?, ICLR
          2022](https://arxiv.org/abs/2203.09739)
    """
    if not is_whole(num_transforms, 1):
        raise ValueError(f"ekld: num_transforms must be a whole number >= 1, got {num_transforms!r}.")
    labels = np.asarray(labels)
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    log_p = _log_softmax(predict_fn(images))
    total = np.zeros(len(labels))
    per_call = max(1, batch_size // len(labels))
    for first in range(0, num_transforms, per_call):
        draws = range(first, min(first + per_call, num_transforms))
        outputs = predict_fn(np.concatenate([transform_fn(images, draw) for draw in draws]))
        for log_q in np.split(_log_softmax(outputs), len(draws)):
            total += np.sum(np.exp(log_p) * (log_p - log_q), axis=-1)
    per_image = total / num_transforms
    counts = np.bincount(labels, minlength=num_classes)
    sums = np.bincount(labels, weights=per_image, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def draw_variance(transform_fn, images, num_draws):
    """Pixel variance across random draws of a transform, averaged over
    pixels and images: how much a translator (or a true nuisance) varies
    one image. 0 for a transform that ignores its randomness.

    Args:
        transform_fn: (images, draw) -> transformed images, seeded by `draw`.
        images: (N, H, W, C) images.
        num_draws: draws per image (at least 2).

    Returns:
        float: the mean pixel variance.

    Example:

    ```python
    import numpy as np
    from kerazoo.metrics import draw_variance

    images = np.zeros((2, 4, 4, 1), "float32")

    def noise(x, draw):
        return x + np.random.default_rng(draw).normal(0, 0.1, x.shape)

    print(draw_variance(noise, images, num_draws=8))  # about 0.01
    print(draw_variance(lambda x, draw: x, images, num_draws=2))  # 0.0
    ```

    References:
        - [Zhou et al., Do Deep Networks Transfer Invariances Across Classes?, ICLR
          2022](https://arxiv.org/abs/2203.09739)
    """
    if num_draws < 2:
        raise ValueError(f"num_draws={num_draws}: a variance across draws needs at least 2.")
    draws = np.stack([np.asarray(transform_fn(images, k), np.float64) for k in range(num_draws)])
    return float(draws.var(axis=0).mean())


def _log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
