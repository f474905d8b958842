"""Replica equality: the same global batch on 1 and on 2 logical devices."""

import numpy as np
import tensorflow as tf


def two_cpu_strategy():
    """A MirroredStrategy over the two logical CPUs that conftest.py makes.

    ReductionToOneDevice: no collective ops, whose instance keys can clash
    with those of strategies created by earlier tests in this process.
    """
    return tf.distribute.MirroredStrategy(
        ["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice()
    )


def train_on(strategy, build, dataset, epochs=2):
    """Build a compiled model in `strategy`'s scope, fit it on `dataset`
    (batches are the *global* batches) and return its weights."""
    with strategy.scope():
        model = build()
    model.fit(dataset, epochs=epochs, verbose=0, shuffle=False)
    return model


def assert_replicas_agree(build, dataset, epochs=2, atol=2e-5, state=lambda m: m.get_weights()):
    """One device and two replicas reach the same state from the same start.

    `build()` must return the same initial weights each call (set them
    explicitly). Checks that training moved the state, then that both runs
    agree within `atol`. Returns (one-device model, two-replica model).
    """
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        initial = [np.copy(w) for w in state(build())]
    one = train_on(tf.distribute.OneDeviceStrategy("/cpu:0"), build, dataset, epochs)
    two = train_on(two_cpu_strategy(), build, dataset, epochs)
    moved = max(float(np.abs(a - w).max()) for a, w in zip(state(one), initial))
    assert moved > 1e-3, f"training did not change the state (max change {moved:.2g})"
    for a, b in zip(state(one), state(two)):
        np.testing.assert_allclose(a, b, atol=atol)
    return one, two
