"""ONNX Runtime alone runs an exported model: `OnnxClassifier`, `OnnxFeatureExtractor`.

This module imports neither TensorFlow nor Keras, so a serving process
needs only numpy and onnxruntime.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort

from kerazoo.inputs import check_images

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
CLASS_NAMES_KEY = "class_names"  # metadata key written by export_onnx

# ONNX Runtime's logger severities: 2 = warning (its default), 4 = fatal only.
_ORT_DEFAULT_SEVERITY = 2
_ORT_FATAL_ONLY = 4


class _OnnxModel:
    """An ONNX Runtime session on a file from `export_onnx`, with the provider
    choice and input checks every runtime class shares; a subclass names
    the output `predict` returns (`output_name`) and its `kind`."""

    kind = None
    output_name = None

    def __init__(self, path, providers=None):
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
        if self.output_name not in outputs:
            raise ValueError(
                f"{path} has no output '{self.output_name}' (outputs: {sorted(outputs)}), so it "
                f"is not a {self.kind} export; export the model with kerazoo.export.export_onnx, "
                "and load a classifier with OnnxClassifier, a feature extractor with "
                "OnnxFeatureExtractor."
            )
        self.output_size = outputs[self.output_name].shape[-1]

    def predict(self, images):
        """The model's `output_name` output, float32 (N, output_size), for a
        batch of float32 images (N, H, W, C) with values in [0, 1]; an empty
        batch gives an empty result.

        Raises:
            ValueError: the images are not what the model takes
                (`kerazoo.inputs.check_images`); the message says how to fix it.
        """
        images = check_images(images, self.input_shape[1:])
        if not len(images):
            return np.zeros((0, self.output_size), np.float32)
        (values,) = self._session.run([self.output_name], {self._input_name: images})
        return values.astype(np.float32, copy=False)


class OnnxClassifier(_OnnxModel):
    """A classifier exported by `kerazoo.export.export_onnx`, in ONNX Runtime.

    `predict` returns class probabilities (N, num_classes).

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
        output_size: the number of classes.
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

    kind = "classifier"
    output_name = "probabilities"

    def __init__(self, path, providers=None, class_names=None):
        super().__init__(path, providers)
        if class_names is None:
            stored = self._session.get_modelmeta().custom_metadata_map.get(CLASS_NAMES_KEY)
            class_names = json.loads(stored) if stored is not None else None
        if class_names is not None and len(class_names) != self.output_size:
            raise ValueError(
                f"{len(class_names)} class names given for a model with {self.output_size} classes."
            )
        self.class_names = None if class_names is None else list(class_names)


class OnnxFeatureExtractor(_OnnxModel):
    """A feature extractor (kind `features`, e.g. a
    `kerazoo.models.FeatureExtractor`) exported by `kerazoo.export.export_onnx`,
    in ONNX Runtime.

    `predict` returns feature vectors, float32 (N, D). Providers are chosen
    as for `OnnxClassifier`.

    Args:
        path: the `.onnx` file.
        providers: ONNX Runtime execution providers in order of preference.

    Attributes:
        provider: the execution provider in use.
        input_shape: (None, H, W, C).
        output_size: the feature dimension D.

    Example:

    ```python
    from kerazoo.export import OnnxFeatureExtractor
    encoder = OnnxFeatureExtractor("export/encoder.onnx")
    features = encoder.predict(images)            # float32 (N, D)
    ```
    """

    kind = "features"
    output_name = "features"


# The runtime class of each export kind (kerazoo.export.kinds).
RUNTIMES = {cls.kind: cls for cls in (OnnxClassifier, OnnxFeatureExtractor)}


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
