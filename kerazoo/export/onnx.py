"""ONNX export via tf2onnx, parity-checked in ONNX Runtime before the file is kept."""

import json
import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import tensorflow as tf
import tf2onnx

from kerazoo.atomic import atomic_path, check_free
from kerazoo.export.deploy import deploy_model, kind_of, serving_spec
from kerazoo.export.runtime import CLASS_NAMES_KEY

PARITY_BATCH_SIZES = (1, 7)


class ParityError(RuntimeError):
    """ONNX Runtime and Keras disagree by more than the tolerance.

    Example:

    ```python
    from kerazoo.export import ParityError

    # export_onnx raises it, writing nothing, when ONNX Runtime and Keras disagree:
    try:
        raise ParityError("max |onnx - keras| = 0.1 > atol 1e-4")
    except RuntimeError as error:
        print(error)
    ```
    """


def export_onnx(
    model,
    path,
    atol=1e-4,
    sample_images=None,
    opset=17,
    class_names=None,
    overwrite=False,
):
    """Write the inference graph of `model` as ONNX, if it matches Keras.

    The file has one input `images` (float32, (batch, H, W, C), dynamic
    batch named `batch`) and the outputs of the model's kind: `logits` and
    `probabilities` for a classifier (load it with `OnnxClassifier`),
    `features` for a feature extractor (`OnnxFeatureExtractor`).
    Train-only layers are left out (`kerazoo.export.deploy_model`).
    Before the file is kept, ONNX Runtime (CPU) runs it on batches of 1 and
    7 images and every output is compared with Keras; if any differs by
    more than `atol`, `ParityError` is raised and no file is left behind.

    Args:
        model: a trained `keras.Model` (see `deploy_model`).
        path: the `.onnx` file to write.
        atol: largest tolerated absolute difference, >= 0.
        sample_images: real images (N, H, W, C) in [0, 1] for the check,
            reused cyclically if fewer than 7; default uniform noise.
        opset: ONNX opset version.
        class_names: stored in the file's metadata (`class_names`, JSON) so
            `OnnxClassifier` can report them; classifiers only.
        overwrite: replace an existing `path`; otherwise it is an error.

    Returns:
        {batch size: max abs difference over every output}.

    Example:

    ```python
    import tempfile
    from pathlib import Path
    import numpy as np
    import kerazoo

    images = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    model = kerazoo.models.Classifier(kerazoo.backbones.get("convnet", width=8), num_classes=3)
    model(images)  # built

    from kerazoo.export import export_onnx

    path = Path(tempfile.mkdtemp()) / "digits.onnx"
    diffs = export_onnx(model, path, class_names=["a", "b", "c"])
    print(diffs)  # {1: ..., 7: ...}: the largest difference at each batch size
    ```
    """
    if not (math.isfinite(atol) and atol >= 0):
        raise ValueError(f"atol must be a finite number >= 0, got {atol!r}.")
    kind = kind_of(model)
    if class_names is not None and kind != "classifier":
        raise ValueError(
            f"class_names were given for a {kind!r} model; only classifiers have classes: drop class_names."
        )
    path = Path(path)
    check_free(path, overwrite)
    deployed = deploy_model(model)
    batches = _parity_batches(deployed, sample_images)
    # The reference outputs come from Keras, before conversion: a model must
    # have run once to be converted.
    expected = [deployed(x, training=False) for x in batches]
    if class_names is not None and len(class_names) != expected[0]["logits"].shape[-1]:
        raise ValueError(
            f"{len(class_names)} class names given for a model with {expected[0]['logits'].shape[-1]} "
            "classes; give one name per output column, in column order."
        )

    spec = serving_spec(deployed)
    serve = tf.function(lambda images: deployed(images, training=False), input_signature=[spec])
    proto, _ = tf2onnx.convert.from_function(serve, input_signature=[spec], opset=opset)
    _name_batch_dimension(proto)
    if class_names is not None:
        entry = proto.metadata_props.add()
        entry.key, entry.value = CLASS_NAMES_KEY, json.dumps([str(n) for n in class_names])

    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))
        diffs = _check_parity(tmp, batches, expected, atol, path)
    return diffs


def _parity_batches(deployed, sample_images):
    shape = deployed.input_shape[1:]
    if sample_images is None:
        if None in shape:
            raise ValueError(
                f"The model takes images of any size {shape}, so the parity check has none to "
                "make up: pass sample_images (a batch of real images), or build the model with a "
                "fixed image size."
            )
        rng = np.random.default_rng(0)
        sample_images = rng.uniform(0.0, 1.0, (max(PARITY_BATCH_SIZES), *shape))
    sample_images = np.asarray(sample_images, dtype=np.float32)
    if sample_images.ndim != len(shape) + 1 or sample_images.shape[1:] != tuple(shape):
        raise ValueError(
            f"sample_images must have shape (N, {', '.join(map(str, shape))}), got {sample_images.shape}."
        )
    return [np.take(sample_images, np.arange(n), axis=0, mode="wrap") for n in PARITY_BATCH_SIZES]


def _name_batch_dimension(proto):
    # tf2onnx names the unknown batch dimension `unk__<n>`, differently for
    # each tensor; one shared name tells tools the batch sizes agree.
    for value in (*proto.graph.input, *proto.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        if not dim.HasField("dim_value"):
            dim.dim_param = "batch"


def _check_parity(onnx_path, batches, expected, atol, final_path):
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    diffs = {}
    for x, keras_outputs in zip(batches, expected):
        names = list(keras_outputs)
        got = session.run(names, {input_name: x})
        per_output = {
            name: float(np.max(np.abs(value - np.asarray(keras_outputs[name]))))
            for name, value in zip(names, got)
        }
        for name, diff in per_output.items():
            if not diff <= atol:  # also catches NaN
                raise ParityError(
                    f"ONNX Runtime output '{name}' differs from Keras by {diff:.3g} at batch "
                    f"size {len(x)} (atol={atol:g}); {final_path} was not written. Check the "
                    "model for ops tf2onnx converts inexactly, or raise atol if the gap is "
                    "float rounding."
                )
        diffs[len(x)] = max(per_output.values())
    return diffs
