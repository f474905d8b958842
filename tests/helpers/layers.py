"""Layer checks every kerazoo layer passes: shapes, config round trip, `.keras` file."""

import keras
import numpy as np


def check_layer(layer, inputs, expected_shape, tmp_path, training=False):
    """Call `layer` on `inputs`, check the output shape, rebuild it from its
    config, and save/load it inside a model as a `.keras` file; the rebuilt
    and reloaded layers must give the same outputs. Returns the output."""
    inputs = np.asarray(inputs, dtype="float32")
    output = np.asarray(layer(inputs, training=training))
    assert output.shape == tuple(expected_shape), output.shape

    clone = type(layer).from_config(layer.get_config())
    clone(inputs)  # builds it
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(clone(inputs, training=training)), output, atol=1e-6)
    assert clone.get_config() == layer.get_config()

    model = keras.Sequential([keras.Input(inputs.shape[1:]), layer])
    path = tmp_path / f"{layer.name}.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(restored(inputs, training=training)), output, atol=1e-6)
    return output
