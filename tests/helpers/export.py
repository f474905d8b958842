"""export_round_trip: a model through SavedModel and ONNX and back, checked against Keras."""

import numpy as np

from kerazoo.export import CheckedSavedModel, export_onnx, export_savedmodel, kind_of
from kerazoo.export.deploy import inference_model
from kerazoo.export.runtime import RUNTIMES

SHAPE = (8, 8, 1)  # the digits image shape the export tests use


def random_images(n, shape=SHAPE, seed=0):
    """n uniform float32 images in [0, 1]."""
    return np.random.default_rng(seed).uniform(0, 1, (n, *shape)).astype("float32")


def export_round_trip(model, tmp_path, images, atol=1e-4):
    """Export `model` to `tmp_path` (SavedModel `model/`, `model.onnx`), load
    both back with kerazoo's runtimes (`CheckedSavedModel`, and
    `OnnxClassifier` or `OnnxFeatureExtractor` by kind), and assert that
    every output of its kind equals `model.inference_model()` on `images`,
    whole and as a batch of one (the batch is dynamic), within `atol`.

    Returns:
        {"savedmodel": the loaded SavedModel, "onnx": the ONNX runtime,
        "max_abs_diff": {(format, output): largest difference seen}}.

    Example:

    ```python
    from helpers.export import export_round_trip
    export_round_trip(model, tmp_path, images)["max_abs_diff"]
    ```
    """
    images = np.asarray(images, np.float32)
    kind = kind_of(model)
    export_savedmodel(model, tmp_path / "model")
    export_onnx(model, tmp_path / "model.onnx", atol=atol, sample_images=images)
    saved = CheckedSavedModel(tmp_path / "model")
    onnx = RUNTIMES[kind](tmp_path / "model.onnx", providers=["CPUExecutionProvider"])

    values = np.asarray(inference_model(model)(images, training=False))
    expected = (
        {"features": values} if kind == "features" else {"logits": values, "probabilities": softmax(values)}
    )
    assert saved.output_names == tuple(sorted(expected))
    diffs = {}
    for batch in (images[:1], images):
        n = len(batch)
        got = {("savedmodel", name): value for name, value in saved.serve(batch).items()}
        got["onnx", onnx.output_name] = onnx.predict(batch)
        for (format, name), value in got.items():
            assert value.shape == expected[name][:n].shape, (format, name, value.shape)
            diff = float(np.max(np.abs(value - expected[name][:n])))
            assert diff <= atol, f"{format} output {name!r} differs from Keras by {diff:.3g}"
            diffs[format, name] = max(diff, diffs.get((format, name), 0.0))
    return {"savedmodel": saved, "onnx": onnx, "max_abs_diff": diffs}


def softmax(logits):
    """Row-wise softmax of (N, C) logits, in numpy."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
