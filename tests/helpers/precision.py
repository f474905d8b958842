"""Building models under a Keras dtype policy for the length of a block."""

import contextlib


@contextlib.contextmanager
def dtype_policy(name):
    """Keras' global dtype policy `name` inside the block, the previous one after it."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
