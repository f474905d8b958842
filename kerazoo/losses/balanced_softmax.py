"""Balanced Softmax: cross-entropy on logits shifted by the log class prior (Ren et al., NeurIPS 2020)."""

import numpy as np
from keras import ops

from kerazoo.ops import check_class_ids


def balanced_softmax_loss(labels, logits, class_counts):
    """Mean over the batch of CE(y, z + log n), n the training images per class.

    Ren et al. 2020, Eq. 4 and the official `BalancedSoftmaxLoss`
    (`logits + log(sample_per_class)` before cross-entropy). Adding the log
    prior during training only makes the *unshifted* logits estimate the
    balanced posterior, so the model is used without the shift at test time.
    log n and log(n / Σn) give the same loss (softmax ignores a constant).

    A batch mean: under a multi-replica strategy divide by the replica count
    (`TrainingModel` does).

    Args:
        labels: (B,) integer class ids in [0, C).
        logits: (B, C) logits.
        class_counts: C positive training-image counts (list, array or tensor).

    Returns:
        float32 scalar.

    Example:

    ```python
    import numpy as np
    from kerazoo.losses import balanced_softmax_loss

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 3)).astype("float32")
    loss = balanced_softmax_loss(np.array([0, 1, 2, 0]), logits, class_counts=[100, 10, 1])
    print(float(loss))
    ```

    References:
        - [Ren et al., Balanced Meta-Softmax for Long-Tailed Visual Recognition, NeurIPS
          2020](https://arxiv.org/abs/2007.10740)
    """
    counts = np.asarray(class_counts, dtype=np.float64)
    logits = ops.cast(logits, "float32")
    if counts.ndim != 1 or counts.shape[0] != logits.shape[-1]:
        raise ValueError(
            f"balanced_softmax_loss: class_counts has shape {counts.shape}; it needs one count "
            f"per class ({logits.shape[-1]})."
        )
    if (counts <= 0).any():
        raise ValueError(
            "balanced_softmax_loss: every class needs at least one training image "
            f"(counts {counts.tolist()}); log 0 would rule a class out."
        )
    shifted = logits + ops.convert_to_tensor(np.log(counts), "float32")
    labels = check_class_ids(labels, counts.shape[0], "balanced_softmax_loss: labels")
    if labels.shape[0] is not None and logits.shape[0] is not None and labels.shape[0] != logits.shape[0]:
        raise ValueError(
            f"balanced_softmax_loss: {labels.shape[0]} labels for {logits.shape[0]} rows of logits."
        )
    log_probs = ops.log_softmax(shifted, axis=-1)
    return -ops.mean(ops.take_along_axis(log_probs, labels[:, None], axis=1))
