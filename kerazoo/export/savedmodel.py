"""Inference-only SavedModel with a named serving signature."""

from pathlib import Path

import keras
import tensorflow as tf

from kerazoo.atomic import atomic_dir, check_free
from kerazoo.export.deploy import deploy_model, serving_spec


def export_savedmodel(model, path, overwrite=False):
    """Write the inference graph of `model` as a SavedModel directory.

    The signature `serve` (also `serving_default`) takes `images`
    (float32, (batch, H, W, C), any batch size) and returns a dict with
    the outputs of the model's kind: `logits` and `probabilities` for a
    classifier, `features` for a feature extractor. Images of another
    height, width or channel count, and images holding NaN or infinity, fail
    with `InvalidArgumentError` instead of returning scores (or, for a
    missing axis, aborting the process in a kernel's shape check).
    Train-only layers are left out (`kerazoo.export.deploy_model`). The directory appears complete or not
    at all: it is written beside `path` and renamed into place.

    Args:
        model: a trained `keras.Model` (see `deploy_model`).
        path: the SavedModel directory to create.
        overwrite: replace an existing `path`; otherwise it is an error.

    Returns:
        `path` as a `pathlib.Path`.

    Example:

    ```python
    import tempfile
    from pathlib import Path
    import tensorflow as tf
    import numpy as np
    import kerazoo

    images = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    model = kerazoo.models.Classifier(kerazoo.backbones.get("convnet", width=8), num_classes=3)
    model(images)  # built

    from kerazoo.export import export_savedmodel

    path = Path(tempfile.mkdtemp()) / "digits"
    export_savedmodel(model, path)
    serve = tf.saved_model.load(str(path)).signatures["serve"]
    print(serve(images=tf.constant(images))["probabilities"].shape)  # (4, 3)
    ```
    """
    path = Path(path)
    check_free(path, overwrite)  # before the slow tracing, not after
    deployed = deploy_model(model)
    archive = keras.export.ExportArchive()
    archive.track(deployed)
    spec = serving_spec(deployed)
    archive.add_endpoint(
        "serve",
        lambda images: deployed(_checked(images, spec), training=False),
        input_signature=[spec],
    )
    with atomic_dir(path, overwrite) as tmp:
        archive.write_out(str(tmp), verbose=False)
    return path


def _checked(images, spec):
    # A signature called directly (no kerazoo on the caller's side) does not
    # hold its inputs to the declared shape: 9x8 images came out as confident
    # scores, and 8x8 images without the channel axis aborted the process.
    images = tf.ensure_shape(images, spec.shape)
    # A NaN pixel would otherwise come out as NaN scores that callers of the
    # bare signature could take for an answer.
    return tf.debugging.check_numerics(images, "images contain NaN or infinity; pass finite values in [0, 1]")
