"""LUCIR losses against NumPy written from the original code's formulas: values, gradients,
edge cases, and graph mode."""

import numpy as np
import pytest
import tensorflow as tf
from numpy.testing import assert_allclose

from kerazoo.losses import adaptive_lambda, less_forget_loss, margin_ranking_loss


def np_less_forget(new, old):
    """Batch mean of 1 − cos, cos as PyTorch's CosineEmbeddingLoss computes it."""
    eps = 1e-12
    dot = np.sum(new * old, axis=1)
    denominator = np.sqrt((np.sum(new**2, axis=1) + eps) * (np.sum(old**2, axis=1) + eps))
    return np.mean(1.0 - dot / denominator)


def np_margin_ranking(cos, labels, num_old, margin=0.5, k=2):
    """The code's steps: keep old-class rows, gt score repeated k times, top-k new-class
    scores, MarginRankingLoss(target=+1) = mean of max(0, margin − gt + neg)."""
    rows = labels < num_old
    if not rows.any():
        return 0.0
    k = min(k, cos.shape[1] - num_old)
    selected, selected_labels = cos[rows], labels[rows]
    gt = selected[np.arange(len(selected)), selected_labels]
    negatives = -np.sort(-selected[:, num_old:], axis=1)[:, :k]
    return np.mean(np.maximum(0.0, margin - gt[:, None] + negatives))


def np_margin_ranking_gradient(cos, labels, num_old, margin=0.5, k=2):
    """d loss / d cos: each active hinge pulls its gt score down and its negative up, by
    1 / (#old rows · k)."""
    grad = np.zeros_like(cos)
    rows = np.flatnonzero(labels < num_old)
    k = min(k, cos.shape[1] - num_old)
    for i in rows:
        top = num_old + np.argsort(-cos[i, num_old:])[:k]
        for j in top:
            if margin - cos[i, labels[i]] + cos[i, j] > 0:
                grad[i, labels[i]] -= 1.0 / (len(rows) * k)
                grad[i, j] += 1.0 / (len(rows) * k)
    return grad


def random_cosines(batch, num_classes, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=(batch, num_classes))


# --- adaptive λ -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lambda_base, num_old, num_new, expected",
    [
        (5, 50, 10, 11.180),  # CIFAR 50+10×5, phases 1..5
        (5, 60, 10, 12.247),
        (5, 70, 10, 13.229),
        (5, 80, 10, 14.142),
        (5, 90, 10, 15.0),
        (5, 50, 5, 15.811),  # CIFAR 50+5×10, first phase: 5√10
        (5, 95, 5, 21.794),  # last phase: 5√19
        (5, 50, 2, 25.0),  # CIFAR 50+2×25, first phase
        (10, 50, 10, 22.361),  # ImageNet-subset 50+10: 10√5
        (10, 500, 100, 22.361),  # ImageNet-full 500+100
    ],
)
def test_adaptive_lambda_matches_table(lambda_base, num_old, num_new, expected):
    assert adaptive_lambda(lambda_base, num_old, num_new) == pytest.approx(expected, abs=1e-3)


def test_adaptive_lambda_is_code_form_not_paper_form():
    # Paper Eq. 7 would give 5·√(10/50) ≈ 2.236; the code (followed here) gives 5·√(50/10).
    assert adaptive_lambda(5, 50, 10) == pytest.approx(5 * np.sqrt(5))
    with pytest.raises(ValueError):
        adaptive_lambda(5, 50, 0)


# --- less-forget ------------------------------------------------------------------------


def test_less_forget_matches_numpy():
    rng = np.random.default_rng(0)
    new, old = rng.normal(size=(8, 16)), rng.normal(size=(8, 16))
    loss = less_forget_loss(new.astype(np.float32), old.astype(np.float32))
    assert loss.dtype == tf.float32 and loss.shape == ()
    assert_allclose(float(loss), np_less_forget(new, old), rtol=1e-5)


def test_less_forget_extremes():
    f = np.random.default_rng(1).normal(size=(4, 8)).astype(np.float32)
    assert_allclose(float(less_forget_loss(3.0 * f, f)), 0.0, atol=1e-6)  # scale-free
    assert_allclose(float(less_forget_loss(-f, f)), 2.0, rtol=1e-6)
    orthogonal = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
    assert_allclose(float(less_forget_loss(orthogonal, orthogonal[::-1])), 1.0, rtol=1e-6)


def test_less_forget_gradient_and_stop_gradient(numeric_gradient):
    rng = np.random.default_rng(2)
    new, old = rng.normal(size=(5, 6)), rng.normal(size=(5, 6))
    new_t, old_t = tf.constant(new, tf.float32), tf.constant(old, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch([new_t, old_t])
        loss = less_forget_loss(new_t, old_t)
    grad_new, grad_old = tape.gradient(loss, [new_t, old_t])
    expected = numeric_gradient(lambda v: np_less_forget(v, old), new)
    assert_allclose(grad_new.numpy(), expected, atol=1e-6)
    assert grad_old is None  # the frozen model's features are detached


def test_less_forget_in_graph_with_unknown_batch():
    rng = np.random.default_rng(3)
    new, old = rng.normal(size=(2, 3, 4)).astype(np.float32)
    signature = [tf.TensorSpec([None, 4], tf.float32), tf.TensorSpec([3, 4], tf.float32)]
    graph_loss = tf.function(less_forget_loss, input_signature=signature)
    assert_allclose(float(graph_loss(new, old)), np_less_forget(new, old), rtol=1e-5)


def test_less_forget_shape_mismatch():
    with pytest.raises(ValueError, match="differ in shape"):
        less_forget_loss(np.ones((4, 8), np.float32), np.ones((4, 6), np.float32))


# --- margin ranking ---------------------------------------------------------------------


@pytest.mark.parametrize("num_old, margin, k", [(6, 0.5, 2), (3, 0.5, 2), (6, 0.2, 3), (8, 1.0, 1)])
def test_margin_ranking_matches_numpy(num_old, margin, k):
    cos = random_cosines(16, 10, seed=num_old)
    labels = np.random.default_rng(k).integers(0, 10, size=16)
    labels[0] = 0  # at least one old-class row
    loss = margin_ranking_loss(cos.astype(np.float32), labels, num_old, margin=margin, k=k)
    assert loss.dtype == tf.float32 and loss.shape == ()
    assert float(loss) > 0
    assert_allclose(float(loss), np_margin_ranking(cos, labels, num_old, margin, k), rtol=1e-5)


def test_margin_ranking_gradient_matches_numpy():
    cos = random_cosines(12, 8, seed=3)
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 7, 0, 2, 6, 7])
    cos_t = tf.constant(cos, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(cos_t)
        loss = margin_ranking_loss(cos_t, labels, num_old_classes=5)
    expected = np_margin_ranking_gradient(cos, labels, num_old=5)
    assert np.count_nonzero(expected) > 0
    assert_allclose(tape.gradient(loss, cos_t).numpy(), expected, atol=1e-7)


def test_margin_ranking_without_old_rows_is_zero_with_zero_gradient():
    cos_t = tf.constant(random_cosines(6, 8, seed=4), tf.float32)
    labels = np.array([5, 6, 7, 5, 6, 7])
    with tf.GradientTape() as tape:
        tape.watch(cos_t)
        loss = margin_ranking_loss(cos_t, labels, num_old_classes=5)
    assert float(loss) == 0.0 and loss.dtype == tf.float32
    assert_allclose(tape.gradient(loss, cos_t).numpy(), 0.0)


def test_single_new_class_clamps_k_to_one():
    cos = random_cosines(6, 5, seed=5)
    labels = np.array([0, 1, 2, 3, 4, 1])
    loss = margin_ranking_loss(cos.astype(np.float32), labels, num_old_classes=4, k=2)
    # With one new class every old row has exactly one pair: 5 rows · 1 negative.
    rows = labels < 4
    by_hand = np.maximum(0, 0.5 - cos[rows, labels[rows]] + cos[rows, 4]).sum() / 5
    assert_allclose(float(loss), by_hand, rtol=1e-5)
    assert_allclose(float(loss), np_margin_ranking(cos, labels, 4, k=1), rtol=1e-5)


def test_margin_ranking_accepts_column_labels():
    cos = random_cosines(6, 7, seed=6).astype(np.float32)
    labels = np.array([0, 3, 5, 6, 1, 2])
    assert_allclose(
        float(margin_ranking_loss(cos, labels[:, None], 4)),
        float(margin_ranking_loss(cos, labels, 4)),
    )


@pytest.mark.parametrize("bad_label", [7, 10, -1])
def test_margin_ranking_rejects_unseen_labels(bad_label):
    cos = random_cosines(4, 7, seed=7).astype(np.float32)
    labels = np.array([0, 1, bad_label, 6])
    with pytest.raises(ValueError, match=r"labels \(the seen classes\) must be class ids in \[0, 7\)"):
        margin_ranking_loss(cos, labels, 4)


@pytest.mark.parametrize("num_old", [7, -1])
def test_margin_ranking_rejects_bad_num_old(num_old):
    with pytest.raises(ValueError, match="num_old_classes"):
        margin_ranking_loss(np.zeros((2, 7), np.float32), np.array([0, 1]), num_old)


def test_margin_ranking_in_graph_matches_eager_and_asserts_labels():
    cos = random_cosines(10, 9, seed=8).astype(np.float32)
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 2], np.int32)
    signature = [tf.TensorSpec([None, 9], tf.float32), tf.TensorSpec([None], tf.int32)]
    graph_loss = tf.function(lambda c, y: margin_ranking_loss(c, y, 5), input_signature=signature)
    xla_loss = tf.function(lambda c, y: margin_ranking_loss(c, y, 5), jit_compile=True)
    eager = float(margin_ranking_loss(cos, labels, 5))
    assert_allclose(float(graph_loss(cos, labels)), eager, rtol=1e-6)
    assert_allclose(float(xla_loss(cos, labels)), eager, rtol=1e-6)
    assert float(graph_loss(cos, np.array([5, 6, 8, 7, 5, 6, 8, 7, 5, 6], np.int32))) == 0.0
    labels[3] = 9
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be class ids in"):
        graph_loss(cos, labels)
