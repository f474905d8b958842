"""LUCIR's incremental-phase losses: less-forget feature distillation and margin ranking.

Both are batch-level scalars (means over the batch this call sees), not per-sample losses.
Under a multi-replica strategy the caller divides them by the replica count before gradients
are summed (docs/architecture.md, "Many devices"); Keras does that only for its own compiled losses.
"""

import math

from keras import ops

from kerazoo.ops import check_class_ids

# torch.nn.functional.cosine_embedding_loss adds this to each squared norm.
_COSINE_EMBEDDING_EPS = 1e-12


def adaptive_lambda(lambda_base, num_old, num_new):
    """LUCIR's adaptive less-forget weight: λ = λ_base · √(|C_old| / |C_new|).

    This is the official code's form (its CIFAR-100 cosine script:
    `lamda_mult = old / new`, `cur_lamda = lamda_base * sqrt(lamda_mult)`), used by every
    re-implementation. The paper's Eq. 7 prints the inverse, √(|C_new| / |C_old|) (issue
    hshustc/CVPR19_Incremental_Learning#4). λ_base is 5 for CIFAR-100 and 10 for ImageNet;
    e.g. 50 old / 10 new classes with λ_base 5 gives 5√5 ≈ 11.180.

    Args:
        lambda_base: λ_base.
        num_old: number of classes seen in earlier phases.
        num_new: number of classes added in this phase (> 0).

    Returns:
        λ as a Python float.

    Example:

    ```python
    from kerazoo.losses import adaptive_lambda

    print(adaptive_lambda(5.0, num_old=50, num_new=10))  # 5·√5 ≈ 11.180
    ```

    References:
        - [Hou et al., Learning a Unified Classifier Incrementally via Rebalancing, CVPR
          2019](https://openaccess.thecvf.com/content_CVPR_2019/html/Hou_Learning_a_Unified_Classifier_Incrementally_via_Rebalancing_CVPR_2019_paper.html)
    """
    if num_new <= 0 or num_old < 0:
        raise ValueError(f"adaptive_lambda: need num_old >= 0 and num_new > 0, got {num_old} and {num_new}.")
    return float(lambda_base) * math.sqrt(num_old / num_new)


def less_forget_loss(new_features, old_features):
    """LUCIR's less-forget constraint: mean over the batch of 1 − cos(f, f*).

    f is the current model's feature (the input of the cosine head: pooled, no final ReLU),
    f* the frozen old model's feature of the same image; f* is wrapped in `stop_gradient`.
    cos(a, b) = ⟨a, b⟩ / √((‖a‖² + ε)(‖b‖² + ε)), ε = 1e-12, as PyTorch's
    `CosineEmbeddingLoss(margin 0)` with target +1 that [LUCIR code]
    official code's training loop uses (paper Eq. 6). Applied to every sample in the
    batch. The weight λ is the caller's: `adaptive_lambda(λ_base, |C_old|, |C_new|)`, the
    code's λ_base·√(|C_old|/|C_new|) (the paper's Eq. 7 prints the inverse ratio).

    A batch-level scalar: under a multi-replica strategy divide by the replica count.

    Args:
        new_features: (B, D) features of the model being trained.
        old_features: (B, D) features of the frozen old model.

    Returns:
        float32 scalar.

    Example:

    ```python
    import numpy as np
    from kerazoo.losses import less_forget_loss

    rng = np.random.default_rng(0)
    old = rng.normal(size=(4, 8)).astype("float32")
    print(float(less_forget_loss(old, old)))  # 0: same direction
    print(float(less_forget_loss(-old, old)))  # 2: opposite directions
    ```

    References:
        - [Hou et al., Learning a Unified Classifier Incrementally via Rebalancing, CVPR
          2019](https://openaccess.thecvf.com/content_CVPR_2019/html/Hou_Learning_a_Unified_Classifier_Incrementally_via_Rebalancing_CVPR_2019_paper.html)
    """
    new_features = ops.cast(new_features, "float32")
    old_features = ops.stop_gradient(ops.cast(old_features, "float32"))
    new_shape, old_shape = tuple(new_features.shape), tuple(old_features.shape)
    # Unknown (None) dimensions, as in a traced batch axis, are compatible with anything.
    if len(new_shape) != len(old_shape) or any(
        a is not None and b is not None and a != b for a, b in zip(new_shape, old_shape)
    ):
        raise ValueError(
            f"less_forget_loss: new and old features differ in shape: {new_shape} vs {old_shape}."
        )
    dot = ops.sum(new_features * old_features, axis=-1)
    # ε goes into each squared norm before multiplying, as PyTorch does; it also keeps the
    # gradient finite for an all-zero feature.
    denominator = ops.sqrt(
        (ops.sum(ops.square(new_features), axis=-1) + _COSINE_EMBEDDING_EPS)
        * (ops.sum(ops.square(old_features), axis=-1) + _COSINE_EMBEDDING_EPS)
    )
    return ops.mean(1.0 - dot / denominator)


def margin_ranking_loss(cos_logits, labels, num_old_classes, margin=0.5, k=2, num_pairs_total=None):
    """LUCIR's inter-class separation: margin ranking of old-class samples against new classes.

    On the *unscaled* cosine scores (before σ; `CosineLinear(..., return_cosine=True)`), for
    each batch row i whose label y_i < num_old_classes (in practice the exemplars):

        L = Σ_i Σ_{j ∈ top-k(cos_i[num_old:])} max(0, margin − cos_i[y_i] + cos_i[j]) / (N_old · k)

    i.e. the ground-truth cosine must beat the k hardest new-class cosines by `margin`.
    Source: the official LUCIR code's training loop (`MarginRankingLoss` over the
    gt score repeated k times and the top-k new-class scores), which averages over the
    N_old · k pairs; the paper's Eq. 9 averages over N_old and sums over k, so the code (used
    here) is the paper's value / k. Defaults m = 0.5, K = 2 as in the paper (§4.1).

    The loss is 0 (with zero gradient) when the batch holds no old-class row; rows are chosen
    with a mask, so it works inside `tf.function` / `model.fit`. k is clamped to the number of
    new classes (the code's `topk` would fail with fewer). A batch-level scalar: under a
    multi-replica strategy divide by the replica count.

    Args:
        cos_logits: (B, C) unscaled cosines over all seen classes, old classes first; C must be
            known statically.
        labels: (B,) or (B, 1) integer labels in [0, C). Out-of-range labels raise ValueError
            when their values are known (eager); inside a graph a `tf.debugging` assertion
            fails at run time (skipped under XLA, which compiles asserts away).
        num_old_classes: Python int, number of old classes (columns [0, num_old_classes)).
        margin: the margin m.
        k: number of hard negatives K.
        num_pairs_total: optional divisor replacing this batch's (old rows × k). Under a
            multi-replica strategy pass the all-reduced count of the global batch (times the
            replica count, see `LUCIRClassifier`): the number of old rows differs between replicas,
            so per-replica means would not average to the global-batch mean.

    Returns:
        float32 scalar.

    Example:

    ```python
    import numpy as np
    from kerazoo.losses import margin_ranking_loss

    rng = np.random.default_rng(0)
    cosines = np.tanh(rng.normal(size=(6, 5))).astype("float32")  # 3 old + 2 new classes
    labels = np.array([0, 1, 2, 3, 4, 0])
    loss = margin_ranking_loss(cosines, labels, num_old_classes=3, margin=0.5, k=2)
    print(float(loss))
    ```

    References:
        - [Hou et al., Learning a Unified Classifier Incrementally via Rebalancing, CVPR
          2019](https://openaccess.thecvf.com/content_CVPR_2019/html/Hou_Learning_a_Unified_Classifier_Incrementally_via_Rebalancing_CVPR_2019_paper.html)
    """
    cos_logits = ops.cast(cos_logits, "float32")
    num_classes = cos_logits.shape[-1]
    if num_classes is None:
        raise ValueError("margin_ranking_loss: the class axis of cos_logits must be static.")
    if not 0 <= num_old_classes < num_classes:
        raise ValueError(
            f"margin_ranking_loss: num_old_classes must be in [0, {num_classes}) so that some "
            f"new classes exist, got {num_old_classes}."
        )
    if k < 1:
        raise ValueError(f"margin_ranking_loss: k must be >= 1, got {k}.")
    k = min(k, num_classes - num_old_classes)

    labels = check_class_ids(labels, num_classes, "margin_ranking_loss: labels (the seen classes)")
    positive = ops.sum(cos_logits * ops.one_hot(labels, num_classes), axis=-1)  # (B,)
    hard_negatives, _ = ops.top_k(cos_logits[:, num_old_classes:], k=k)  # (B, k)
    hinge = ops.relu(margin - positive[:, None] + hard_negatives)
    is_old = ops.cast(labels < num_old_classes, "float32")
    num_pairs = ops.sum(is_old) * k
    if num_pairs_total is None:
        num_pairs_total = num_pairs
    # max(., 1) only guards the no-old-row case, where the masked sum is 0 anyway.
    return ops.sum(hinge * is_old[:, None]) / ops.maximum(num_pairs_total, 1.0)
