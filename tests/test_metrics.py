import numpy as np
import pytest

from kerazoo import metrics


def test_forgetting_is_the_drop_from_the_best_earlier_accuracy():
    tasks = [[0.9], [0.8, 0.95], [0.7, 0.85, 0.9]]
    # task 0: best 0.9 -> 0.7 ; task 1: best 0.95 -> 0.85
    np.testing.assert_allclose(metrics.average_forgetting(tasks), (0.2 + 0.1) / 2)
    # The best earlier accuracy, not the first: task 0 rises to 0.9 before it falls to 0.6.
    np.testing.assert_allclose(
        metrics.average_forgetting([[0.5], [0.9, 0.8], [0.6, 0.7, 0.9]]), (0.3 + 0.1) / 2
    )
    assert metrics.average_forgetting([[0.9]]) == 0.0


def test_incremental_and_balanced_accuracy():
    assert metrics.average_incremental_accuracy([1.0, 0.5]) == 0.75
    labels = np.array([0, 0, 0, 1])
    assert metrics.balanced_accuracy(labels, np.array([0, 0, 0, 0]), 2) == 0.5
    assert metrics.accuracy(labels, np.array([0, 0, 0, 0])) == 0.75


def test_shot_accuracy_splits_classes_by_training_images():
    counts = [150, 101, 100, 20, 19, 5]  # many: >100; few: <20; medium: the rest
    labels = np.array([0, 1, 2, 3, 4, 5, 5])
    predictions = np.array([0, 0, 2, 0, 4, 5, 0])
    shots = metrics.shot_accuracy(labels, predictions, counts)
    assert shots == {"many": 0.5, "medium": 0.5, "few": 2 / 3}
    empty = metrics.shot_accuracy(labels, predictions, counts, many=1000, few=1)
    assert np.isnan(empty["many"]) and np.isnan(empty["few"]) and empty["medium"] == 4 / 7


def _linear_model(weights):
    return lambda images: images.reshape(len(images), -1) @ weights


def _flip_some(images, draw):
    # A seeded random transform: mirror each image left-right with probability 1/2.
    flip = np.random.default_rng(draw).random(len(images)) < 0.5
    return np.where(flip[:, None, None, None], images[:, :, ::-1], images)


def test_ekld_is_zero_for_a_model_that_ignores_the_transform():
    rng = np.random.default_rng(0)
    images = rng.random((12, 4, 4, 1))
    labels = np.repeat([0, 1, 2], 4)
    # Row sums are unchanged by a mirror, so this model cannot see it...
    invariant = lambda x: np.stack([x.sum(axis=(1, 2, 3)), -x.sum(axis=(1, 2, 3))], -1)  # noqa: E731
    np.testing.assert_allclose(metrics.ekld(invariant, images, labels, _flip_some, 5), 0.0, atol=1e-12)
    # ...while it tells the images apart: comparing *different* images (the
    # original helper's bug) would give a positive value even for the identity.
    identity = lambda x, k: x  # noqa: E731
    sensitive = _linear_model(rng.normal(size=(16, 3)))
    np.testing.assert_allclose(metrics.ekld(sensitive, images, labels, identity, 3), 0.0, atol=1e-12)


def test_ekld_matches_a_numpy_reference_per_class():
    rng = np.random.default_rng(1)
    images = rng.random((10, 4, 4, 1))
    labels = np.array([0, 0, 0, 2, 2, 2, 2, 3, 3, 3])  # class 1 absent
    predict = _linear_model(3 * rng.normal(size=(16, 4)))

    def probs(x):
        e = np.exp(predict(x))
        return e / e.sum(-1, keepdims=True)

    expected = np.full(4, np.nan)
    for c in (0, 2, 3):
        values = []
        for i in np.flatnonzero(labels == c):
            p = probs(images[i : i + 1])[0]
            for k in range(7):
                q = probs(_flip_some(images, k)[i : i + 1])[0]
                values.append(np.sum(p * np.log(p / q)))
        expected[c] = np.mean(values)
    got = metrics.ekld(predict, images, labels, _flip_some, 7)
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert np.isnan(got[1]) and np.all(got[[0, 2, 3]] > 0)


def test_ekld_is_the_same_whatever_the_draws_per_call():
    rng = np.random.default_rng(3)
    images = rng.random((10, 4, 4, 1))
    labels = np.repeat([0, 1], 5)
    model = _linear_model(rng.normal(size=(16, 3)))
    calls = []

    def predict(x):
        calls.append(len(x))
        return model(x)

    one_a_call = metrics.ekld(predict, images, labels, _flip_some, 7, batch_size=1)
    assert calls == [10] * 8
    calls.clear()
    two_a_call = metrics.ekld(predict, images, labels, _flip_some, 7, batch_size=25)
    assert calls == [10, 20, 20, 20, 10]  # the clean images, then 2 + 2 + 2 + 1 draws
    np.testing.assert_allclose(two_a_call, one_a_call, rtol=1e-12)


def test_draw_variance_is_zero_without_randomness_and_matches_numpy():
    images = np.random.default_rng(2).random((5, 4, 4, 1))
    assert metrics.draw_variance(lambda x, k: x, images, 4) == 0.0
    flips = np.stack([_flip_some(images, k) for k in range(6)])
    np.testing.assert_allclose(metrics.draw_variance(_flip_some, images, 6), flips.var(axis=0).mean())


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match=r"few \(50\) must be <= many \(10\)"):
        metrics.shot_accuracy(np.array([0]), np.array([0]), [5], many=10, few=50)
    with pytest.raises(ValueError, match="num_transforms must be a whole number >= 1"):
        metrics.ekld(lambda x: x, np.zeros((2, 3)), np.array([0, 1]), lambda x, k: x, num_transforms=0)
