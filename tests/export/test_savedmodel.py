"""export_savedmodel: a `serve` signature equal to Keras, written atomically."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerazoo.export import export_savedmodel

SHAPE = (8, 8, 1)  # the input shape of the `model` fixture (conftest.py)


@pytest.mark.parametrize("batch", [1, 7])
def test_serve_signature_matches_keras(model, tmp_path, batch):
    path = export_savedmodel(model, tmp_path / "saved")
    serve = tf.saved_model.load(str(path)).signatures["serve"]

    assert list(serve.structured_input_signature[1]) == ["images"]
    assert serve.structured_input_signature[1]["images"].shape.as_list() == [None, *SHAPE]
    x = np.random.default_rng(batch).uniform(0, 1, (batch, *SHAPE)).astype("float32")
    out = serve(images=tf.constant(x))
    logits = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(out["logits"], logits, atol=1e-5)
    np.testing.assert_allclose(out["probabilities"], tf.nn.softmax(logits), atol=1e-6)


def test_refuses_to_clobber_unless_asked(model, tmp_path):
    path = tmp_path / "saved"
    path.mkdir()
    (path / "keep.txt").write_text("old")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_savedmodel(model, path)
    assert (path / "keep.txt").exists()

    export_savedmodel(model, path, overwrite=True)
    assert not (path / "keep.txt").exists()
    assert (path / "saved_model.pb").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved"]  # no temporaries left
