import keras
import numpy as np

from kerazoo.incremental import grow_head, herding, labels_in_phase_order, nme_predict


def test_herding_tracks_the_class_mean_better_than_random():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 16)) + rng.normal(size=16)
    chosen = herding(features, 6)
    assert len(set(chosen)) == 6
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    error = lambda idx: np.linalg.norm(unit[idx].mean(0) - unit.mean(0))
    random_errors = [error(rng.choice(200, 6, replace=False)) for _ in range(200)]
    assert error(chosen) < np.percentile(random_errors, 5)
    # A prefix of the ranking is the herding choice for a smaller memory.
    np.testing.assert_array_equal(herding(features, 3), chosen[:3])


def test_nme_is_nearest_normalised_mean():
    means = np.array([[1.0, 0.0], [0.0, 5.0]])
    assert nme_predict(np.array([[3.0, 1.0], [0.1, 0.2]]), means).tolist() == [0, 1]


def test_grow_dense_head_keeps_old_columns():
    head = keras.layers.Dense(3)
    head.build((None, 4))
    grown = grow_head(head, 2)
    kernel, bias = head.get_weights()
    new_kernel, new_bias = grown.get_weights()
    assert new_kernel.shape == (4, 5)
    np.testing.assert_array_equal(new_kernel[:, :3], kernel)
    np.testing.assert_array_equal(new_bias[:3], bias)


def test_labels_follow_the_class_order():
    order = np.array([3, 0, 2, 1])
    assert labels_in_phase_order([3, 0, 2, 1, 3], order).tolist() == [0, 1, 2, 3, 0]
