"""Argument checks shared by kerazoo's modules."""

import numbers


def is_whole(value, minimum):
    """Whether `value` is an integer (a NumPy one too, not a bool) >= `minimum`:
    a count, size or seed (2.5 or "5" would be truncated or fail far away)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and bool(value >= minimum)


def check_non_negative(owner, **values):
    """Raise a ValueError naming the first of `values` that is not a real
    number >= 0 (a string, a bool or NaN included): a negative weight, rate
    or margin turns a term or an update the other way without a word."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
            raise ValueError(f"{owner}: {name} must be >= 0, got {value!r}.")
