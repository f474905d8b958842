"""Inference-only SavedModel with a named serving signature."""

import os
import shutil
import tempfile
from pathlib import Path

import keras

from kerazoo.export.deploy import deploy_model, serving_spec


def export_savedmodel(model, path, overwrite=False):
    """Write the inference graph of `model` as a SavedModel directory.

    The signature `serve` (also `serving_default`) takes `images`
    (float32, (batch, H, W, C), any batch size) and returns a dict with
    `logits` and `probabilities`. Train-only layers are left out
    (`kerazoo.export.deploy_model`). The directory appears complete or not
    at all: it is written beside `path` and renamed into place.

    Args:
        model: a trained `keras.Model` (see `deploy_model`).
        path: the SavedModel directory to create.
        overwrite: replace an existing `path`; otherwise it is an error.

    Returns:
        `path` as a `pathlib.Path`.

    Example:

    ```python
    kerazoo.export.export_savedmodel(model, "export/digits")
    serve = tf.saved_model.load("export/digits").signatures["serve"]
    serve(images=tf.constant(images))["probabilities"]
    ```
    """
    path = Path(path)
    _check_free(path, overwrite)
    deployed = deploy_model(model)
    archive = keras.export.ExportArchive()
    archive.track(deployed)
    archive.add_endpoint(
        "serve",
        lambda images: deployed(images, training=False),
        input_signature=[serving_spec(deployed)],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # Reserve a unique name, then let the writer create the directory: one
    # made by mkdtemp would keep its owner-only permissions.
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tmp.rmdir()
    try:
        archive.write_out(str(tmp), verbose=False)
        _move_into_place(tmp, path, overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _check_free(path, overwrite):
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it.")


def _move_into_place(tmp, path, overwrite):
    # A directory cannot be renamed over a non-empty one, so an old export
    # is moved aside first and deleted only once the new one is in place.
    _check_free(path, overwrite)
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
        os.replace(path, old / path.name)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old)
