"""distillation_loss's refusals (its value against NumPy and its use in
iCaRL-CNN are in tests/models/test_lucir.py)."""

import numpy as np
import pytest

from kerazoo.losses import distillation_loss


def test_fewer_new_classes_than_old_ones_are_refused():
    # Swapped arguments: the old model's 5 logits passed as the new ones.
    with pytest.raises(ValueError, match="logits have 3 classes, fewer than the old model's 5"):
        distillation_loss(np.zeros((2, 3), "float32"), np.zeros((2, 5), "float32"))


@pytest.mark.parametrize("temperature", [0, -1.0])
def test_a_temperature_that_is_not_positive_is_refused(temperature):
    with pytest.raises(ValueError, match="temperature must be > 0"):
        distillation_loss(np.zeros((2, 5), "float32"), np.zeros((2, 3), "float32"), temperature)


def test_lists_are_taken_like_arrays():
    logits, old = [[1.0, 2.0, 3.0]], [[1.0, 2.0]]
    assert float(distillation_loss(logits, old)) == pytest.approx(
        float(distillation_loss(np.array(logits, "float32"), np.array(old, "float32")))
    )
