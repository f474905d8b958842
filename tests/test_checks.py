"""is_whole: the counts, sizes and seeds kerazoo takes."""

import numpy as np
import pytest

from kerazoo._checks import is_whole


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
