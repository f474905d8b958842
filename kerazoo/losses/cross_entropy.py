"""Cross-entropy of integer labels against logits, in float32."""

import keras
from keras import ops


def cross_entropy_loss(labels, logits):
    """Mean over the batch of CE(y, softmax(z)), computed in float32.

    PyTorch's `CrossEntropyLoss()` (mean reduction), the classification term
    of every kerazoo model. Under a mixed policy the logits come in
    bfloat16; the loss is taken on their float32 copy, as Keras' own `Loss`
    objects do (in bfloat16 one batch's 2.3163 came out 2.3125). float32
    logits are used as they are.

    A batch mean: under a multi-replica strategy divide by the replica count
    (`TrainingModel` does).

    Args:
        labels: (B,) integer class ids in [0, C).
        logits: (B, C) logits.

    Returns:
        float32 scalar.

    Example:

    ```python
    import numpy as np
    from kerazoo.losses import cross_entropy_loss

    logits = np.log(np.array([[0.5, 0.5], [0.9, 0.1]], "float32"))
    print(float(cross_entropy_loss(np.array([0, 0]), logits)))  # (ln 2 + ln(1/0.9)) / 2 ≈ 0.399
    ```

    References:
        - [PyTorch, torch.nn.CrossEntropyLoss](https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html)
        - [Micikevicius et al., Mixed Precision Training, ICLR
          2018](https://arxiv.org/abs/1710.03740) (losses in float32)
    """
    logits = ops.cast(logits, "float32")
    return ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
