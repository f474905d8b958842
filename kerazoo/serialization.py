"""Rebuilding a layer's or model's nested Keras objects in `from_config`."""

import copy

import keras


def deserialized(config, *names):
    """A copy of `config` with the entries `names` (serialized layers or
    models, or None) deserialized; `config` itself is left as it was, so
    that `from_config(config)` can be called on it again (Keras' own
    `from_config` leaves its argument intact too).

    Args:
        config: a `get_config()` dict.
        *names: the keys holding serialized Keras objects; a missing key or
            a None stays as it is.

    Returns:
        A new dict.

    Example:

    ```python
    import keras
    from kerazoo.serialization import deserialized

    config = {"head": keras.saving.serialize_keras_object(keras.layers.Dense(3)), "num_classes": 3}
    print(type(deserialized(config, "head")["head"]).__name__)  # Dense
    print(type(config["head"]).__name__)  # dict: unchanged
    ```

    References:
        - [Keras, Serialization and saving](https://keras.io/guides/serialization_and_saving/)
    """
    # A deep copy: Keras' deserializer empties parts of the dict it is given.
    return {
        **config,
        **{n: keras.saving.deserialize_keras_object(copy.deepcopy(config[n])) for n in names if n in config},
    }
