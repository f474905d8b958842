"""Layer checks every kerazoo layer passes: shapes, config round trip, `.keras` file."""

import keras
import numpy as np


def check_layer(layer, inputs, expected_shape, tmp_path, training=False):
    """Call `layer` on `inputs` (an array, or a tuple of arrays for a layer
    taking several), check the output shape (a tuple of shapes for several
    outputs), rebuild it from its config, and save/load it inside a model as
    a `.keras` file; the rebuilt and reloaded layers must give the same
    outputs. Returns the output (as NumPy)."""
    several = isinstance(inputs, tuple)
    arrays = tuple(
        np.asarray(x) if np.asarray(x).dtype.kind in "iu" else np.asarray(x, "float32")
        for x in (inputs if several else (inputs,))
    )

    def outputs_of(target):
        out = target(*arrays, training=training)
        return [np.asarray(o) for o in (out if isinstance(out, (tuple, list)) else (out,))]

    output = outputs_of(layer)
    shapes = expected_shape if isinstance(expected_shape[0], tuple) else (tuple(expected_shape),)
    assert [o.shape for o in output] == [tuple(s) for s in shapes], [o.shape for o in output]

    clone = type(layer).from_config(layer.get_config())
    outputs_of(clone)  # builds it
    clone.set_weights(layer.get_weights())
    for got, want in zip(outputs_of(clone), output, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert clone.get_config() == layer.get_config()

    symbolic = [keras.Input(x.shape[1:], dtype=str(x.dtype)) for x in arrays]
    model = keras.Model(symbolic, layer(*symbolic))
    path = tmp_path / f"{layer.name}.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    reloaded = restored(list(arrays) if several else arrays[0], training=training)
    reloaded = reloaded if isinstance(reloaded, (tuple, list)) else (reloaded,)
    for got, want in zip(reloaded, output, strict=True):
        np.testing.assert_allclose(np.asarray(got), want, atol=1e-6)
    return output if len(output) > 1 else output[0]
