"""Knowledge distillation on the old classes' logits (iCaRL-CNN / LwF, as LUCIR's baseline)."""

from keras import ops


def distillation_loss(logits, old_logits, temperature=2.0):
    """T² · mean over the batch of KL(softmax(z_old/T) ‖ softmax(z[:, :C_old]/T)).

    z_old are the frozen old model's logits over its C_old classes; z the
    current model's logits, of which the first C_old columns (the old
    classes) are compared. This is the LUCIR code's iCaRL-CNN baseline
    (its incremental training loop):
    `KLDivLoss()(log_softmax(z[:, :C_old]/T), softmax(z_old/T)) · T² · C_old · β`
    — PyTorch's `KLDivLoss` averages over B·C_old elements, and the factor
    C_old turns that into a per-sample sum; β (0.25 there, T = 2) is the
    caller's weight. The old logits get no gradient.

    A batch-level scalar: under a multi-replica strategy divide by the
    replica count.

    Args:
        logits: (B, C) current logits, C >= C_old.
        old_logits: (B, C_old) logits of the frozen old model.
        temperature: T > 0.

    Returns:
        float32 scalar.

    Example:

    ```python
    import numpy as np
    from kerazoo.losses import distillation_loss

    rng = np.random.default_rng(0)
    old_logits = rng.normal(size=(4, 3)).astype("float32")  # the old model, 3 classes
    new_logits = rng.normal(size=(4, 5)).astype("float32")  # the new model, 5 classes
    loss = distillation_loss(new_logits, old_logits, temperature=2.0)
    print(float(loss))
    ```

    References:
        - [Rebuffi et al., iCaRL: Incremental Classifier and Representation Learning, CVPR
          2017](https://arxiv.org/abs/1611.07725)
    """
    if temperature <= 0:
        raise ValueError(f"distillation_loss: temperature must be > 0, got {temperature}.")
    logits = ops.convert_to_tensor(logits)
    old_logits = ops.stop_gradient(ops.cast(ops.convert_to_tensor(old_logits), "float32"))
    num_old = old_logits.shape[-1]
    if logits.shape[-1] is not None and num_old is not None and logits.shape[-1] < num_old:
        raise ValueError(
            f"distillation_loss: logits have {logits.shape[-1]} classes, fewer than the old "
            f"model's {num_old}; pass (new logits, old logits) in that order."
        )
    logits = ops.cast(logits, "float32")[:, :num_old]
    target = ops.softmax(old_logits / temperature, axis=-1)
    log_target = ops.log_softmax(old_logits / temperature, axis=-1)
    log_prediction = ops.log_softmax(logits / temperature, axis=-1)
    kl = ops.sum(target * (log_target - log_prediction), axis=-1)
    return temperature**2 * ops.mean(kl)
