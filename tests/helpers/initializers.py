"""Checks that weights were drawn from a given distribution (enough draws: a few thousand)."""

import numpy as np


def assert_uniform(values, bound):
    """Drawn from U(±bound): inside it, reaching near its edge, std bound/√3 to 10 %."""
    values = np.asarray(values).ravel()
    assert np.abs(values).max() <= bound
    assert np.abs(values).max() > 0.9 * bound
    assert abs(values.std() / (bound / np.sqrt(3)) - 1) < 0.1, (values.std(), bound / np.sqrt(3))


def assert_normal(values, std, truncated=False):
    """Drawn from N(0, std²) (std to 10 %); untruncated: some values beyond 2.5·std;
    truncated at 2σ as Keras' truncated normals (σ = std / 0.8796): none beyond
    2σ ≈ 2.27·std, some beyond 2·std (a uniform of that std stops at 1.73·std)."""
    values = np.asarray(values).ravel()
    assert abs(values.std() / std - 1) < 0.1, (values.std(), std)
    if truncated:
        assert 2 * std < np.abs(values).max() <= 2 * std / 0.87962566
    else:
        assert np.abs(values).max() > 2.5 * std
