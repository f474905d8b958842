import numpy as np
import pytest

from kerazoo.data.splits import class_order, few_label_indices, halves, holdout_indices, incremental_phases


def test_seed_1993_gives_the_usual_cifar100_class_order():
    # The order logged by LUCIR/PyCIL runs for seed 1993.
    assert list(class_order(100, 1993)[:10]) == [68, 56, 78, 8, 23, 84, 90, 65, 74, 76]


def test_incremental_phases_cover_the_order_without_overlap():
    order = class_order(10, 0)
    phases = incremental_phases(order, num_base=2, num_phases=4)
    assert [len(p) for p in phases] == [2, 2, 2, 2, 2]
    np.testing.assert_array_equal(np.concatenate(phases), order)


def test_uneven_phases_are_refused():
    with pytest.raises(ValueError, match="equal phases"):
        incremental_phases(np.arange(10), num_base=3, num_phases=4)


def test_few_labels_are_disjoint_and_balanced():
    labels = np.repeat(np.arange(5), 30)
    labelled, unlabelled = few_label_indices(labels, per_class=4, seed=0)
    assert np.bincount(labels[labelled]).tolist() == [4] * 5
    assert set(labelled).isdisjoint(unlabelled)
    assert len(labelled) + len(unlabelled) == len(labels)
    np.testing.assert_array_equal(few_label_indices(labels, per_class=4, seed=0)[0], labelled)
    assert not np.array_equal(few_label_indices(labels, per_class=4, seed=1)[0], labelled)


def test_halves_are_disjoint_and_seeded():
    a, b = halves(101, seed=3)
    assert set(a).isdisjoint(b) and len(a) + len(b) == 101 and abs(len(a) - len(b)) == 1
    np.testing.assert_array_equal(halves(101, seed=3)[0], a)
    assert not np.array_equal(np.sort(halves(101, seed=4)[0]), np.sort(a))


def test_holdout_is_stratified_seeded_and_keeps_every_class_in_both_splits():
    labels = np.repeat([0, 1, 2], [10, 3, 2])
    train, test = holdout_indices(labels, 0.2, seed=0)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(labels)
    # round(20 %) per class, at least one for testing and one for training.
    np.testing.assert_array_equal(np.bincount(labels[test]), [2, 1, 1])
    np.testing.assert_array_equal(np.bincount(labels[train]), [8, 2, 1])
    np.testing.assert_array_equal(holdout_indices(labels, 0.2, seed=0)[1], test)
    assert not np.array_equal(
        holdout_indices(np.repeat([0, 1], 50), 0.2, seed=1)[1],
        holdout_indices(np.repeat([0, 1], 50), 0.2, seed=0)[1],
    )
    with pytest.raises(ValueError, match="Class 1 has 1 example"):
        holdout_indices(np.array([0, 0, 1]), 0.2, seed=0)
