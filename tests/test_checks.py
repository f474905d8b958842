"""is_whole and check_non_negative: the counts, sizes, seeds, weights and
rates kerazoo takes."""

import numpy as np
import pytest

from kerazoo._checks import check_non_negative, is_whole


@pytest.mark.parametrize(
    "value, minimum, expected",
    [
        (3, 1, True),
        (np.int64(3), 1, True),
        (0, 0, True),
        (0, 1, False),
        (2.5, 1, False),
        (3.0, 1, False),
        ("5", 1, False),
        (True, 0, False),
        (None, 0, False),
    ],
)
def test_whole_numbers_from_a_minimum(value, minimum, expected):
    assert is_whole(value, minimum) is expected


@pytest.mark.parametrize("value", [0, 0.0, 2.5, np.float32(0.1), np.int64(3)])
def test_non_negative_numbers_pass(value):
    check_non_negative("Owner", rate=1.0, weight=value)


@pytest.mark.parametrize("value", [-0.1, float("nan"), "0.1", True, None])
def test_anything_else_is_refused_by_its_name(value):
    with pytest.raises(ValueError, match=r"^Owner: weight must be >= 0, got "):
        check_non_negative("Owner", rate=1.0, weight=value)
