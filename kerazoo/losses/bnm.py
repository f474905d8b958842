"""Batch nuclear-norm maximisation (BNM, Cui et al., CVPR 2020) and the
entropy-minimisation baseline, on a batch of predicted probabilities.

All three take `probs`, a (B, C) matrix of softmax probabilities (not
logits), and cast it to float32 first: TensorFlow has no float16 SVD kernel.
They are minimised, so the BNM losses are negative. Called eagerly they
refuse logits (rows that are not probabilities); inside a traced function
(`fit`, `tf.function`) the values are unknown when the graph is built and
are not checked (kerazoo's models pass their own softmax).

Caveat: rank(probs) <= min(B, C), so BNM encourages diversity over at most
B classes per batch; keep B >= C (the paper's multi-batch remedy for B < C
was not released).
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

NORMALIZATIONS = ("batch", "min_dim")

# Inside FBNM's square root: a class with exactly zero probability over the
# batch (float32 underflow) would otherwise give sqrt'(0) = inf -> NaN.
FBNM_EPSILON = 1e-12


# How far a row of softmax probabilities may sum from 1: float16 and
# bfloat16 rows (a mixed policy's softmax) round to 0.998 and below at C = 10
# already; logits miss by far more.
_ROW_SUM_TOLERANCE = {"float16": 0.05, "bfloat16": 0.05}


def _as_matrix(probs):
    # tf, not keras.ops: Keras hands a tf.Variable back, which its SVD refuses.
    probs = tf.convert_to_tensor(probs)
    tolerance = _ROW_SUM_TOLERANCE.get(keras.backend.standardize_dtype(probs.dtype), 1e-3)
    probs = ops.cast(probs, "float32")
    if len(probs.shape) != 2:
        raise ValueError(f"Expected (batch, classes) probabilities, got shape {probs.shape}.")
    if 0 in probs.shape:
        raise ValueError(
            f"Expected (batch, classes) probabilities, got an empty batch of shape {probs.shape}."
        )
    if tf.executing_eagerly():  # values are known: catch logits passed for probabilities
        rows = ops.convert_to_numpy(ops.sum(probs, axis=1))
        if len(rows) and not (
            np.allclose(rows, 1.0, atol=tolerance) and ops.convert_to_numpy(ops.min(probs)) >= 0
        ):
            raise ValueError(
                f"Expected probabilities (rows in [0, 1] summing to 1); row sums range over "
                f"[{rows.min():.3g}, {rows.max():.3g}]. Pass softmax(logits), not logits."
            )
    return probs


def _normalize(total, probs, normalization):
    batch = ops.cast(ops.shape(probs)[0], "float32")
    if normalization == "batch":
        return total / batch
    if normalization == "min_dim":
        return total / ops.minimum(batch, ops.cast(ops.shape(probs)[1], "float32"))
    raise ValueError(f"normalization={normalization!r}: use one of {NORMALIZATIONS}.")


def bnm_loss(probs, normalization="batch"):
    """BNM: minus the nuclear norm of the batch prediction matrix.

    L = -||A||_* / B   (`"batch"`: paper Eq. 12, the official SSL code), or
    L = -||A||_* / min(B, C)   (`"min_dim"`: the official domain-adaptation
    code's `-mean(singular values)`), with ||A||_* = sum_i sigma_i(A).

    The singular values come from `keras.ops.svd(compute_uv=False)`; on
    TensorFlow its registered gradient (U diag(dL/dsigma) V^T) stays finite
    for rank-deficient inputs such as uniform predictions. Only min(B, C)
    classes can be encouraged per batch (see the module docstring).

    Args:
        probs: (B, C) predicted class probabilities.
        normalization: `"batch"` (divide by B) or `"min_dim"` (by min(B, C)).

    Returns:
        A scalar to *minimise* (adding it maximises the nuclear norm).

    Example:

    ```python
    import numpy as np
    import keras
    from kerazoo.losses import bnm_loss

    logits = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    probs = keras.ops.softmax(logits)
    loss = bnm_loss(probs, normalization="min_dim")  # in [-1, 0]
    print(float(loss))
    ```

    References:
        - [Cui et al., Towards Discriminability and Diversity: Batch Nuclear-norm Maximization under Label
          Insufficient Situations, CVPR 2020](https://arxiv.org/abs/2003.12237)
    """
    probs = _as_matrix(probs)
    singular_values = ops.svd(probs, compute_uv=False)
    return -_normalize(ops.sum(singular_values), probs, normalization)


def fbnm_loss(probs, normalization="min_dim"):
    """Fast BNM (BNM v2): the nuclear norm approximated by the L_{1,2} norm.

    L = -sum(top_{min(B,C)} ||A[:, j]||_2) / min(B, C) (`"min_dim"`, the
    official DA code) or / B (`"batch"`), with the per-class L2 norms over
    the batch computed as sqrt(sum_i A_ij^2 + eps). Equals BNM when the kept
    columns are orthogonal (one-hot predictions of distinct classes),
    otherwise is larger; its gradient vanishes at uniform predictions.

    Args:
        probs: (B, C) predicted class probabilities.
        normalization: `"min_dim"` (divide by min(B, C)) or `"batch"` (by B).

    Returns:
        A scalar to minimise.

    Example:

    ```python
    import numpy as np
    import keras
    from kerazoo.losses import bnm_loss, fbnm_loss

    probs = keras.ops.one_hot(np.array([0, 1, 2, 3]), 4)  # orthogonal columns
    print(float(fbnm_loss(probs)), float(bnm_loss(probs, normalization="min_dim")))  # -1.0 -1.0
    ```

    References:
        - [Cui et al., Fast Batch Nuclear-norm Maximization and Minimization for Robust Domain
          Adaptation](https://arxiv.org/abs/2107.06154)
    """
    probs = _as_matrix(probs)
    norms = ops.sqrt(ops.sum(ops.square(probs), axis=0) + FBNM_EPSILON)
    keep = ops.minimum(ops.shape(probs)[0], ops.shape(probs)[1])
    top, _ = ops.top_k(norms, k=keep)
    return -_normalize(ops.sum(top), probs, normalization)


ENTROPY_NORMALIZATIONS = (None, "log_classes")


def entropy_loss(probs, normalization=None):
    """Mean per-sample entropy -1/B sum_ij A_ij log A_ij (EntMin, Grandvalet &
    Bengio 2005; the paper's baseline), to be minimised.

    `normalization="log_classes"` divides it by log C, into [0, 1]: the
    official BNM domain-adaptation code's EntMin (its training script,
    which adds 1e-8 inside the log; here 0 log 0 = 0 exactly). The official
    SSL code and the paper use the plain entropy (None).

    Args:
        probs: (B, C) predicted class probabilities.
        normalization: None (plain entropy, nats) or `"log_classes"` (divided by log C).

    Returns:
        A scalar to minimise.

    Example:

    ```python
    import numpy as np
    from kerazoo.losses import entropy_loss

    print(float(entropy_loss([[0.5, 0.5]])))  # log 2 = 0.693...
    print(float(entropy_loss([[0.5, 0.5]], normalization="log_classes")))  # 1.0
    ```

    References:
        - [Grandvalet & Bengio, Semi-supervised Learning by Entropy Minimization, NeurIPS
          2004](https://papers.nips.cc/paper/2004/hash/96f2b50b5d3613adf9c27049b2a888c7-Abstract.html)
        - [Cui et al., Towards Discriminability and Diversity: Batch Nuclear-norm Maximization under Label
          Insufficient Situations, CVPR 2020](https://arxiv.org/abs/2003.12237)
    """
    if normalization not in ENTROPY_NORMALIZATIONS:
        raise ValueError(f"normalization={normalization!r}: use one of {ENTROPY_NORMALIZATIONS}.")
    probs = _as_matrix(probs)
    if normalization == "log_classes" and probs.shape[1] == 1:
        raise ValueError("normalization='log_classes' needs two or more classes (log 1 = 0).")
    # 0 log 0 = 0 with a finite gradient, no epsilon needed: the log never
    # sees a zero (where it would, it sees 1 and the product is 0 anyway).
    p_log_p = probs * ops.log(ops.where(probs > 0, probs, 1.0))
    entropy = -ops.mean(ops.sum(p_log_p, axis=1))
    if normalization == "log_classes":
        entropy = entropy / ops.log(ops.cast(ops.shape(probs)[1], "float32"))
    return entropy
