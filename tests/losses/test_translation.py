"""MUNIT's reconstruction and LSGAN losses against their formulas."""

import numpy as np
import pytest

from kerazoo.losses import lsgan_discriminator_loss, lsgan_generator_loss, reconstruction_loss

RNG = np.random.default_rng(0)
A, B = RNG.normal(size=(2, 4, 4, 3)).astype("float32"), RNG.normal(size=(2, 4, 4, 3)).astype("float32")


def test_reconstruction_is_the_mean_absolute_difference():
    assert float(reconstruction_loss(A, B)) == pytest.approx(np.abs(A - B).mean(), rel=1e-6)
    assert float(reconstruction_loss(A, A)) == 0.0


def test_lsgan_losses_match_mao_et_al():
    real, fake = A[..., :1], B[..., :1]
    assert float(lsgan_discriminator_loss(real, fake)) == pytest.approx(
        (fake**2).mean() + ((real - 1) ** 2).mean(), rel=1e-6
    )
    assert float(lsgan_generator_loss(fake)) == pytest.approx(((fake - 1) ** 2).mean(), rel=1e-6)
    # A perfect critic, and a fooled one, score 0.
    assert float(lsgan_discriminator_loss(np.ones(3), np.zeros(3))) == 0.0
    assert float(lsgan_generator_loss(np.ones(3))) == 0.0


@pytest.mark.parametrize("shapes", [((2, 4, 4, 1), (2, 4, 4, 3)), ((2, 4, 4, 3), (4, 4, 3))])
def test_reconstruction_loss_refuses_shapes_that_would_broadcast(shapes):
    a, b = (np.zeros(s, "float32") for s in shapes)
    with pytest.raises(ValueError, match="must have the same shape"):
        reconstruction_loss(a, b)
