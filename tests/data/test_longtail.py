import numpy as np
import pytest

from kerazoo.data.longtail import exponential_class_sizes, long_tail_indices, zipf_class_sizes


def test_zipf_sizes_reproduce_the_k49_profile():
    sizes = zipf_class_sizes(49, 4800, exponent=2.0, min_size=5)
    assert list(sizes[:12]) == [4800, 1200, 533, 300, 192, 133, 97, 75, 59, 48, 39, 33]
    assert (sizes == 5).sum() == 21 and sizes.sum() == 7822


def test_long_tail_counts_follow_the_ranks():
    labels = np.repeat(np.arange(10), 140)
    keep, class_sizes = long_tail_indices(labels, exponent=2.0, min_size=5, seed=3)
    counts = np.bincount(labels[keep], minlength=10)
    assert sorted(counts, reverse=True) == list(zipf_class_sizes(10, 140, 2.0, 5))
    assert {c: counts[c] for c in range(10)} == class_sizes
    assert len(np.unique(keep)) == len(keep)


def test_long_tail_is_seeded():
    labels = np.repeat(np.arange(10), 50)
    a, _ = long_tail_indices(labels, seed=1)
    b, _ = long_tail_indices(labels, seed=1)
    c, _ = long_tail_indices(labels, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_min_size_larger_than_a_class_is_refused():
    with pytest.raises(ValueError, match="min_size"):
        long_tail_indices(np.repeat(np.arange(3), 4), min_size=5)


def test_exponential_sizes_reproduce_cifar100_lt100():
    # LDAM's IMBALANCECIFAR100: int(500 * 0.01 ** (i / 99)), class-id order.
    sizes = exponential_class_sizes(100, 500, imbalance=100)
    assert list(sizes[:4]) == [500, 477, 455, 434] and sizes[-1] == 5
    assert sizes.sum() == 10847


def test_exponential_long_tail_keeps_class_order_and_is_seeded():
    labels = np.repeat(np.arange(10), 200)
    keep, class_sizes = long_tail_indices(labels, seed=0, imbalance=10)
    counts = np.bincount(labels[keep], minlength=10)
    np.testing.assert_array_equal(counts, exponential_class_sizes(10, 200, 10))
    assert counts[0] == 200 and counts[-1] == 20
    again, _ = long_tail_indices(labels, seed=1, imbalance=10)
    assert not np.array_equal(keep, again)


def test_a_tail_that_would_grow_is_refused():
    # exponent -1 gave [100, 200, 300]; imbalance 0.5 classes above max_size.
    with pytest.raises(ValueError, match="exponent must be > 0"):
        zipf_class_sizes(3, 100, exponent=-1.0)
    with pytest.raises(ValueError, match="imbalance must be >= 1"):
        exponential_class_sizes(3, 100, imbalance=0.5)
