"""The InfoNCE loss of MoCo and AdCo (He et al., CVPR 2020; Hu et al., CVPR 2021)."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops


def info_nce_loss(logits, labels, temperature):
    """Mean cross-entropy of each query's positive among its candidates, at temperature τ.

    L = −1/N Σ_i log( exp(l_i,y_i / τ) / Σ_j exp(l_ij / τ) )

    with `logits[i]` the similarities of query i to every candidate (the
    keys of the batch, then the negatives of a queue or an AdCo bank) and
    `labels[i]` the column of its positive key. AdCo minimises it at τ for
    the encoder and, with the negatives' gradient reversed, at τ_m for the
    bank (the official AdCo code: `CrossEntropyLoss` on `logits / T`).
    Computed in float32: at τ_m = 0.02 the scaled logits reach ±50.

    Args:
        logits: (N, M) similarities (cosines for unit vectors).
        labels: (N,) int, the positive's column in each row.
        temperature: τ > 0.

    Returns:
        the scalar loss.

    Example:

    ```python
    import numpy as np
    from kerazoo.losses import info_nce_loss

    q = k = np.eye(4, dtype="float32")
    loss = info_nce_loss(q @ k.T, np.arange(4), temperature=0.1)  # ≈ 1.4e-4
    print(float(loss))
    ```

    References:
        - [He et al., Momentum Contrast for Unsupervised Visual
          Representation Learning, CVPR 2020](https://arxiv.org/abs/1911.05722)
        - [Hu et al., AdCo: Adversarial Contrast for Efficient Learning of
          Unsupervised Representations from Self-Trained Negative
          Adversaries, CVPR 2021](https://arxiv.org/abs/2011.08435)
    """
    known = tf.get_static_value(temperature)  # a number, NumPy scalar or eager tensor
    if known is not None and not np.all(np.asarray(known) > 0):
        raise ValueError(f"info_nce_loss: temperature must be > 0, got {known}.")
    logits = ops.cast(logits, "float32")
    labels = ops.convert_to_tensor(labels)
    return ops.mean(
        keras.losses.sparse_categorical_crossentropy(labels, logits / temperature, from_logits=True)
    )
