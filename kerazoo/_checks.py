"""Argument checks shared by kerazoo's modules."""

import numbers


def is_whole(value, minimum):
    """Whether `value` is an integer (a NumPy one too, not a bool) >= `minimum`:
    a count, size or seed (2.5 or "5" would be truncated or fail far away)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and bool(value >= minimum)
