"""ONNX Runtime alone runs an exported model: `OnnxClassifier`, `OnnxFeatureExtractor`.

Both are `kerazoo.export.predictor.Predictor`s: the same `predict`,
`class_names` and attributes as the zoo's SavedModel and Keras loaders.
This module imports neither TensorFlow nor Keras, so a serving process
needs only numpy and onnxruntime.
"""

import json
import sys
import threading
import warnings
from pathlib import Path

import onnxruntime as ort

from kerazoo.export.predictor import Predictor

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
CLASS_NAMES_KEY = "class_names"  # metadata key written by export_onnx

# ONNX Runtime's logger severities: 2 = warning (its default), 4 = fatal only.
_ORT_DEFAULT_SEVERITY = 2
_ORT_FATAL_ONLY = 4
# The severity is process-wide: sessions created from several threads at
# once would see one another's switch (CUDA's errors printed, or hidden from
# a session that asked for CUDA).
_SEVERITY_LOCK = threading.Lock()


class _OnnxModel(Predictor):
    """An ONNX Runtime session on a file from `export_onnx`, with the provider
    choice every runtime class shares; a subclass names its `kind` and the
    output `predict` returns by default (`output_name`)."""

    kind = None
    output_name = None

    def __init__(self, path, providers=None, session_options=None):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No ONNX file at {path}.")
        options = session_options
        if options is None:
            options = ort.SessionOptions()
            # Session-level warnings (e.g. nodes left on the CPU) are noise here.
            options.log_severity_level = 3
        if providers is None and CUDA in ort.get_available_providers():
            self._session = _quiet_session(path, options, [CUDA, CPU])
        elif providers is None:
            self._session = ort.InferenceSession(str(path), options, providers=[CPU])
        else:
            requested = _checked_providers(providers)
            with _SEVERITY_LOCK:  # CUDA's errors, if any, are logged for this choice
                self._session = ort.InferenceSession(str(path), options, providers=requested)
        self.provider = self._session.get_providers()[0]
        if providers is not None and _provider_name(requested[0]) != self.provider:
            warnings.warn(
                f"{_provider_name(requested[0])} was requested but ONNX Runtime fell back to "
                f"{self.provider} (its log above says why; onnxruntime {ort.__version__} lists "
                f"{ort.get_available_providers()} on this machine, which it may be unable to start).",
                stacklevel=_stacklevel_outside_kerazoo(),
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
        self._outputs = set(outputs)
        self.model = self._session

    @property
    def output_names(self):
        # The outputs of the kind that the file holds.
        return tuple(n for n in super().output_names if n in self._outputs)

    def _run(self, images, output):
        (values,) = self._session.run([output], {self._input_name: images})
        return values

    @property
    def stored_class_names(self):
        """The class names stored in the file (`export_onnx(..., class_names=...)`), or None."""
        stored = self._session.get_modelmeta().custom_metadata_map.get(CLASS_NAMES_KEY)
        return json.loads(stored) if stored is not None else None


class OnnxClassifier(_OnnxModel):
    """A classifier exported by `kerazoo.export.export_onnx`, in ONNX Runtime.

    `predict(images)` returns class probabilities (N, num_classes),
    `predict(images, output="logits")` the logits; `class_names[i]` is the
    class of column i (`kerazoo.export.predictor.Predictor`).

    Provider choice: by default CUDA when ONNX Runtime lists it, else CPU.
    ONNX Runtime falls back to CPU without raising when CUDA cannot start
    (no GPU, or CUDA/cuDNN versions it was not built for), so `.provider`
    reports the provider actually in use, read back from the session. When
    `providers` is given and the first one is not the one in use, a
    `UserWarning` names the fallback. Where CUDA is listed, the default
    choice quiets ONNX Runtime's log of a CUDA provider that cannot start
    and then sets its default logger severity to 2 (its default; ONNX
    Runtime has no getter), undoing an earlier
    `onnxruntime.set_default_logger_severity`.

    Args:
        path: the `.onnx` file.
        providers: ONNX Runtime execution providers in order of preference;
            default `["CUDAExecutionProvider", "CPUExecutionProvider"]` when
            CUDA is listed, else `["CPUExecutionProvider"]`.
        class_names: names of the output classes; default the names stored
            in the file by `export_onnx(..., class_names=...)`, else None.
        session_options: an `onnxruntime.SessionOptions` for the session
            (e.g. `intra_op_num_threads` on a shared machine); default one
            that logs errors only.

    Attributes:
        provider: the execution provider in use.
        input_shape: (None, H, W, C).
        output_size: the number of classes.
        class_names: numpy array of str (one per column), or None.
        model: the `onnxruntime.InferenceSession`.

    Example:

    ```python
    import kerazoo
    from kerazoo.export import OnnxClassifier
    from sklearn.datasets import load_digits

    clf = OnnxClassifier(kerazoo.zoo.default_root() / "export" / "digits_baseline.onnx")
    print(clf.provider)  # CPUExecutionProvider
    images = kerazoo.zoo.preprocess("digits_baseline", load_digits().images[:8])
    probabilities = clf.predict(images)  # float32 (N, H, W, C) in [0, 1]
    print(clf.class_names[probabilities.argmax(1)])  # the class of each image
    ```
    """

    kind = "classifier"
    output_name = "probabilities"

    def __init__(self, path, providers=None, class_names=None, session_options=None):
        super().__init__(path, providers, session_options)
        self.set_class_names(self.stored_class_names if class_names is None else class_names)


class OnnxFeatureExtractor(_OnnxModel):
    """A feature extractor (kind `features`, e.g. a
    `kerazoo.models.FeatureExtractor`) exported by `kerazoo.export.export_onnx`,
    in ONNX Runtime.

    `predict` returns feature vectors, float32 (N, D); `class_names` is
    None. Providers are chosen as for `OnnxClassifier`.

    Args:
        path: the `.onnx` file.
        providers: ONNX Runtime execution providers in order of preference.
        session_options: an `onnxruntime.SessionOptions`, as for `OnnxClassifier`.

    Attributes:
        provider: the execution provider in use.
        input_shape: (None, H, W, C).
        output_size: the feature dimension D.
        model: the `onnxruntime.InferenceSession`.

    Example:

    ```python
    import kerazoo
    from kerazoo.export import OnnxFeatureExtractor
    from sklearn.datasets import load_digits

    encoder = OnnxFeatureExtractor(kerazoo.zoo.default_root() / "export" / "digits_adco.onnx")
    images = kerazoo.zoo.preprocess("digits_adco", load_digits().images[:8])
    print(encoder.predict(images).shape)  # float32 (N, D)
    ```
    """

    kind = "features"
    output_name = "features"


# The runtime class of each export kind (kerazoo.export.kinds).
RUNTIMES = {cls.kind: cls for cls in (OnnxClassifier, OnnxFeatureExtractor)}


def _checked_providers(providers):
    # ONNX Runtime would take a string as a list of one-letter providers.
    if isinstance(providers, str) or not providers:
        raise ValueError(
            f"providers must be a non-empty list of ONNX Runtime execution providers in order of "
            f"preference, e.g. ['{CUDA}', '{CPU}']; got {providers!r}."
        )
    providers = list(providers)
    unknown = [_provider_name(p) for p in providers if _provider_name(p) not in ort.get_all_providers()]
    if unknown:
        raise ValueError(
            f"Unknown ONNX Runtime provider(s) {unknown}; this onnxruntime {ort.__version__} "
            f"has {ort.get_available_providers()}."
        )
    return providers


def _provider_name(provider):
    # ONNX Runtime also accepts (name, options) pairs.
    return provider[0] if isinstance(provider, tuple) else provider


def _stacklevel_outside_kerazoo():
    """The `stacklevel` that points a warning at the first caller outside
    kerazoo (a user's `zoo.load` or `OnnxClassifier(...)`), however many
    kerazoo frames lie between."""
    package = str(Path(__file__).resolve().parents[1])
    frame, level = sys._getframe(1), 1
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _quiet_session(path, options, providers):
    # A CUDA provider that cannot start is logged through ONNX Runtime's
    # default logger, which `SessionOptions.log_severity_level` does not
    # govern (onnxruntime-gpu 1.31.1). An automatic choice reports the
    # outcome in `.provider`, so that error is silenced here, only where
    # CUDA is tried; ONNX Runtime has no getter for the severity, so it is
    # reset to ONNX Runtime's own default.
    with _SEVERITY_LOCK:
        ort.set_default_logger_severity(_ORT_FATAL_ONLY)
        try:
            return ort.InferenceSession(str(path), options, providers=providers)
        finally:
            ort.set_default_logger_severity(_ORT_DEFAULT_SEVERITY)
