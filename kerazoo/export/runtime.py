"""OnnxClassifier: run an exported classifier with ONNX Runtime alone.

This module imports neither TensorFlow nor Keras, so a serving process
needs only numpy and onnxruntime.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
OUTPUT_NAME = "probabilities"
CLASS_NAMES_KEY = "class_names"  # metadata key written by export_onnx

# ONNX Runtime's logger severities: 2 = warning (its default), 4 = fatal only.
_ORT_DEFAULT_SEVERITY = 2
_ORT_FATAL_ONLY = 4


class OnnxClassifier:
    """A classifier exported by `kerazoo.export.export_onnx`, in ONNX Runtime.

    Provider choice: by default CUDA when ONNX Runtime lists it, else CPU.
    ONNX Runtime falls back to CPU without raising when CUDA cannot start
    (no GPU, or CUDA/cuDNN versions it was not built for), so `.provider`
    reports the provider actually in use, read back from the session. When
    `providers` is given and the first one is not the one in use, a
    `UserWarning` names the fallback.

    Args:
        path: the `.onnx` file.
        providers: ONNX Runtime execution providers in order of preference;
            default `["CUDAExecutionProvider", "CPUExecutionProvider"]` when
            CUDA is listed, else `["CPUExecutionProvider"]`.
        class_names: names of the output classes; default the names stored
            in the file by `export_onnx(..., class_names=...)`, else None.

    Attributes:
        provider: the execution provider in use.
        input_shape: (None, H, W, C).
        class_names: list of names, or None.

    Example:

    ```python
    from kerazoo.export import OnnxClassifier
    clf = OnnxClassifier("export/digits.onnx")
    clf.provider                                  # "CPUExecutionProvider"
    probabilities = clf.predict(images)           # float32 (N, H, W, C) in [0, 1]
    clf.class_names[probabilities[0].argmax()]
    ```
    """

    def __init__(self, path, providers=None, class_names=None):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No ONNX file at {path}.")
        options = ort.SessionOptions()
        # Session-level warnings (e.g. nodes left on the CPU) are noise here.
        options.log_severity_level = 3
        if providers is None:
            requested = [CUDA, CPU] if CUDA in ort.get_available_providers() else [CPU]
            self._session = _quiet_session(path, options, requested)
        else:
            requested = list(providers)
            self._session = ort.InferenceSession(str(path), options, providers=requested)
        self.provider = self._session.get_providers()[0]
        if providers is not None and _provider_name(requested[0]) != self.provider:
            warnings.warn(
                f"{_provider_name(requested[0])} was requested but ONNX Runtime fell back to "
                f"{self.provider} (its log above says why; onnxruntime {ort.__version__} "
                "lists but may be unable to start CUDA).",
                stacklevel=2,
            )

        model_input = self._session.get_inputs()[0]
        self._input_name = model_input.name
        self.input_shape = tuple(d if isinstance(d, int) else None for d in model_input.shape)
        outputs = {o.name: o for o in self._session.get_outputs()}
        if OUTPUT_NAME not in outputs:
            raise ValueError(
                f"{path} has no output '{OUTPUT_NAME}' (outputs: {sorted(outputs)}); "
                "export the model with kerazoo.export.export_onnx."
            )
        if class_names is None:
            stored = self._session.get_modelmeta().custom_metadata_map.get(CLASS_NAMES_KEY)
            class_names = json.loads(stored) if stored is not None else None
        num_classes = outputs[OUTPUT_NAME].shape[-1]
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(
                f"{len(class_names)} class names given for a model with {num_classes} classes."
            )
        self.class_names = None if class_names is None else list(class_names)

    def predict(self, images):
        """Class probabilities, float32 (N, num_classes), for a batch of
        float32 images (N, H, W, C) with values in [0, 1]."""
        images = self._validate(images)
        (probabilities,) = self._session.run([OUTPUT_NAME], {self._input_name: images})
        return probabilities.astype(np.float32, copy=False)

    def _validate(self, images):
        try:
            images = np.asarray(images)
        except ValueError as error:
            raise ValueError(f"images must be an array (N, H, W, C): {error}") from None
        if images.dtype.kind != "f":
            raise ValueError(
                f"images have dtype {images.dtype}; the model takes float32 in [0, 1]: "
                "convert 0..255 pixels with images.astype('float32') / 255."
            )
        expected = self.input_shape[1:]
        dims = ", ".join("?" if d is None else str(d) for d in expected)
        if images.shape == expected:
            raise ValueError(
                f"images has shape {images.shape}, a single image without the batch axis; "
                f"pass images[None] (shape (1, {dims}))."
            )
        if images.ndim != len(expected) + 1 or any(
            e is not None and e != g for e, g in zip(expected, images.shape[1:])
        ):
            raise ValueError(
                f"images have shape {images.shape}; expected (N, {dims}), a batch of N images."
            )
        images = images.astype(np.float32, copy=False)
        if images.size:
            if not np.isfinite(images).all():
                raise ValueError("images contain NaN or infinity; pass finite values in [0, 1].")
            low, high = float(images.min()), float(images.max())
            if low < 0.0 or high > 1.0:
                raise ValueError(
                    f"images must lie in [0, 1] but range over [{low:g}, {high:g}]; scale "
                    "them to [0, 1], e.g. divide 0..255 pixels by 255."
                )
        return images


def _provider_name(provider):
    # ONNX Runtime also accepts (name, options) pairs.
    return provider[0] if isinstance(provider, tuple) else provider


def _quiet_session(path, options, providers):
    # A CUDA provider that cannot start is logged through ONNX Runtime's
    # default logger, which `SessionOptions.log_severity_level` does not
    # govern (onnxruntime-gpu 1.31.1). An automatic choice reports the
    # outcome in `.provider`, so that error is silenced here; the default
    # severity is then reset to ONNX Runtime's own default.
    ort.set_default_logger_severity(_ORT_FATAL_ONLY)
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    finally:
        ort.set_default_logger_severity(_ORT_DEFAULT_SEVERITY)
