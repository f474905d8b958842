"""NegativeBank: cosine similarities to normalised columns, FIFO writes, effective rank, serialization."""

import numpy as np
import pytest
import tensorflow as tf

from helpers.layers import check_layer
from kerazoo.layers import NegativeBank
from kerazoo.layers.negative_bank import effective_rank

RNG = np.random.default_rng(0)


def unit_rows(n, d):
    x = RNG.normal(size=(n, d)).astype("float32")
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_similarities_use_columns_normalised_at_use_and_the_layer_round_trips(tmp_path):
    bank = NegativeBank(16, 4, name="bank")
    queries = unit_rows(3, 4)
    output = check_layer(bank, queries, (3, 16), tmp_path)
    stored = np.asarray(bank.bank)
    # Stored unnormalised (standard normal start), normalised only when used.
    assert abs(np.linalg.norm(stored, axis=0).mean() - 1.0) > 0.05
    np.testing.assert_allclose(output, queries @ (stored / np.linalg.norm(stored, axis=0)), atol=1e-6)


def test_write_fills_columns_first_in_first_out_with_normalised_keys():
    bank = NegativeBank(5, 3)
    bank.build((None, 3))
    first, second = 2 * unit_rows(3, 3), 3 * unit_rows(3, 3)
    before = np.asarray(bank.bank).copy()
    bank.write(first)
    bank.write(second)  # wraps: columns 3, 4, then 0
    stored = np.asarray(bank.bank)
    np.testing.assert_allclose(stored[:, [3, 4, 0]], (second / 3).T, atol=1e-6)
    np.testing.assert_allclose(stored[:, [1, 2]], (first[1:] / 2).T, atol=1e-6)
    assert int(bank.position) == 1
    assert not np.allclose(before, stored)


@pytest.mark.parametrize("traced", [False, True])
def test_more_keys_than_columns_are_refused_before_any_column_is_written(traced):
    bank = NegativeBank(4, 3)
    bank.build((None, 3))
    before = np.asarray(bank.bank).copy()
    if traced:  # a batch of unknown size: checked when the step runs
        write = tf.function(bank.write, input_signature=[tf.TensorSpec((None, 3), "float32")])
        with pytest.raises(tf.errors.InvalidArgumentError, match="more keys than the bank has columns"):
            write(unit_rows(5, 3))
    else:
        with pytest.raises(ValueError, match="Got 5 keys"):
            bank.write(unit_rows(5, 3))
    np.testing.assert_array_equal(np.asarray(bank.bank), before)
    assert int(bank.position) == 0


def numpy_effective_rank(matrix):
    s = np.linalg.svd(matrix.astype(np.float64), compute_uv=False)
    p = s / s.sum()
    p = p[p > 0]
    return np.exp(-(p * np.log(p)).sum())


@pytest.mark.parametrize("kind", ["random", "parallel", "orthonormal"])
def test_effective_rank_matches_the_svd_definition(kind):
    if kind == "random":
        matrix = unit_rows(64, 8).T
    elif kind == "parallel":
        matrix = np.repeat(unit_rows(1, 8).T, 64, axis=1)
    else:
        matrix = np.eye(8, 64, dtype="float32")
    value = float(effective_rank(matrix))
    np.testing.assert_allclose(value, numpy_effective_rank(matrix), rtol=1e-3, atol=1e-3)
    expected = {"random": (5.0, 8.0), "parallel": (0.99, 1.01), "orthonormal": (7.99, 8.01)}[kind]
    assert expected[0] <= value <= expected[1]


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "graph"])
def test_effective_rank_of_a_diverged_bank_is_nan_not_an_error(traced):
    # It is logged at every AdCo step: an error there hid the NaN loss from
    # TerminateOnNaN and from the recipes' divergence check.
    matrix = np.ones((4, 6), "float32")
    matrix[1, 2] = np.nan
    rank = tf.function(effective_rank)(matrix) if traced else effective_rank(matrix)
    assert np.isnan(float(rank))


def test_queries_of_another_size_are_refused():
    with pytest.raises(ValueError, match="dim=4"):
        NegativeBank(8, 4)(unit_rows(2, 5))


@pytest.mark.parametrize("size, dim", [(0, 8), (2.7, 8), (16, -1), (16, "8")])
def test_sizes_that_are_not_whole_numbers_above_zero_are_refused(size, dim):
    # 2.7 became a bank of 2 negatives silently.
    with pytest.raises(ValueError, match="size and dim must be whole numbers >= 1"):
        NegativeBank(size, dim)
