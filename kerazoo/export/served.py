"""CheckedSavedModel: a SavedModel from `export_savedmodel`, loaded with input checks."""

from pathlib import Path

import numpy as np
import tensorflow as tf

from kerazoo.export.deploy import INPUT_NAME
from kerazoo.inputs import check_images

SIGNATURE = "serve"


class CheckedSavedModel:
    """A SavedModel written by `kerazoo.export.export_savedmodel`, whose
    `serve` checks its images first.

    The bare signature casts nothing and checks little: uint8 pixels are
    refused only by dtype, 0..255 floats give confident wrong answers and an
    empty batch fails deep inside the graph. `serve` applies
    `kerazoo.inputs.check_images` (the messages of every kerazoo runtime)
    and answers an empty batch with empty outputs. Every other attribute
    (`signatures`, `variables`, ...) is the loaded SavedModel's.

    Args:
        path: the SavedModel directory.

    Attributes:
        input_shape: (None, H, W, C).
        output_names: the signature's outputs, e.g. ("logits", "probabilities").

    Example:

    ```python
    from kerazoo.export import CheckedSavedModel
    model = CheckedSavedModel("runs/mine/model")
    model.serve(images)["probabilities"]   # float32 numpy (N, C)
    ```
    """

    def __init__(self, path):
        path = Path(path)
        if not (path / "saved_model.pb").is_file():
            raise FileNotFoundError(f"No SavedModel at {path} (no saved_model.pb).")
        self._loaded = tf.saved_model.load(str(path))
        if SIGNATURE not in self._loaded.signatures:
            raise ValueError(
                f"{path} has no '{SIGNATURE}' signature (it has {sorted(self._loaded.signatures)}); "
                "export the model with kerazoo.export.export_savedmodel."
            )
        self._signature = self._loaded.signatures[SIGNATURE]
        spec = self._signature.structured_input_signature[1][INPUT_NAME]
        self.input_shape = tuple(spec.shape.as_list())
        self._output_specs = self._signature.structured_outputs
        self.output_names = tuple(sorted(self._output_specs))

    def serve(self, images):
        """{output name: float32 numpy array (N, ...)} for float32 images
        (N, H, W, C) with values in [0, 1]."""
        images = check_images(images, self.input_shape[1:])
        if not len(images):
            return {
                name: np.zeros((0, *spec.shape[1:]), np.float32)
                for name, spec in self._output_specs.items()
            }
        outputs = self._signature(**{INPUT_NAME: tf.constant(images)})
        return {name: value.numpy() for name, value in outputs.items()}

    def __getattr__(self, name):
        # Only reached for names this wrapper lacks; `_loaded` itself may be
        # missing if __init__ failed.
        if name == "_loaded":
            raise AttributeError(name)
        return getattr(self._loaded, name)
