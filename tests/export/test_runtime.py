"""OnnxClassifier and OnnxFeatureExtractor: predictions, input validation,
provider choice, no TensorFlow."""

import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import onnxruntime as ort
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from helpers.export import SHAPE
from helpers.onnx_classifier import NAMES, fixture_classifier, fixture_model, fixture_onnx_path  # noqa: F401
from kerazoo.export import OnnxClassifier, export_onnx

HAS_GPU = os.path.exists("/dev/nvidia0")


def test_predict_matches_keras(model, classifier):
    x = np.random.default_rng(1).uniform(0, 1, (5, *SHAPE))  # float64 is cast
    probabilities = classifier.predict(x)
    assert probabilities.dtype == np.float32 and probabilities.shape == (5, 10)
    expected = tf.nn.softmax(keras.ops.convert_to_numpy(model(x.astype("float32"))))
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)


def test_shape_and_class_names(onnx_path, classifier):
    assert classifier.input_shape == (None, *SHAPE)
    assert list(classifier.class_names) == NAMES  # from the file's metadata
    own = list("abcdefghij")
    assert list(OnnxClassifier(onnx_path, class_names=own).class_names) == own
    with pytest.raises(ValueError, match="3 class names given for a model with 10 classes"):
        OnnxClassifier(onnx_path, class_names=["a", "b", "c"])


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((2, 8, 8, 3), "float32"), r"shape \(2, 8, 8, 3\); expected \(N, 8, 8, 1\)"),
        (np.zeros((8, 8), "float32"), r"expected \(N, 8, 8, 1\)"),
        (np.zeros(SHAPE, "float32"), r"single image without the batch axis; pass images\[None\]"),
        (np.zeros((2, *SHAPE), "uint8"), r"dtype uint8.*float32.*/ 255"),
        (np.zeros((2, *SHAPE), "int64"), r"dtype int64"),
        (np.full((2, *SHAPE), 255.0, "float32"), r"range over \[255, 255\].*divide"),
        (np.linspace(-0.5, 1, 128).reshape(2, *SHAPE), r"range over \[-0.5, 1\]"),
        (np.full((2, *SHAPE), np.nan, "float32"), "NaN"),
        (np.full((2, *SHAPE), np.inf, "float32"), "infinity"),
    ],
)
def test_rejects_bad_input_with_a_fix(classifier, images, message):
    with pytest.raises(ValueError, match=message):
        classifier.predict(images)


@pytest.mark.parametrize("through", ["OnnxClassifier", "zoo.load"])
def test_explicit_cuda_falls_back_to_cpu_with_a_warning_at_the_callers_line(onnx_path, through):
    from kerazoo import zoo

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if through == "zoo.load":
            clf = zoo.load("digits_baseline", "onnx", providers=["CUDAExecutionProvider"])
        else:
            clf = OnnxClassifier(onnx_path, providers=["CUDAExecutionProvider"])
    if clf.provider == "CUDAExecutionProvider":
        pytest.skip("CUDA is usable on this machine")
    assert clf.provider == "CPUExecutionProvider"
    (warning,) = [w for w in caught if issubclass(w.category, UserWarning)]
    message = str(warning.message)
    assert "CUDAExecutionProvider was requested" in message and "fell back to CPUExecutionProvider" in message
    assert warning.filename == __file__  # the caller's line, not kerazoo's


@pytest.mark.parametrize(
    "providers, message",
    [
        ("CPUExecutionProvider", "non-empty list .* got 'CPUExecutionProvider'"),  # not split into letters
        ([], r"non-empty list .* got \[\]"),
        (["CPUExecutionProvder"], r"Unknown ONNX Runtime provider\(s\) \['CPUExecutionProvder'\]"),
    ],
)
def test_bad_providers_are_refused(onnx_path, providers, message):
    with pytest.raises(ValueError, match=message):
        OnnxClassifier(onnx_path, providers=providers)


def test_empty_batch_gives_empty_probabilities(classifier):
    probabilities = classifier.predict(np.zeros((0, *SHAPE), "float32"))
    assert probabilities.shape == (0, 10) and probabilities.dtype == np.float32


def test_default_provider_is_cuda_exactly_when_listed_and_a_gpu_exists(onnx_path):
    # onnxruntime-gpu lists CUDA even without a GPU; the default must then
    # end on the CPU, without a warning (and, below, without ONNX Runtime's log).
    cuda_usable = "CUDAExecutionProvider" in ort.get_available_providers() and HAS_GPU
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = OnnxClassifier(onnx_path)
    assert clf.provider == ("CUDAExecutionProvider" if cuda_usable else "CPUExecutionProvider")


def test_runtime_needs_neither_tensorflow_nor_keras(onnx_path, feature_extractor, tmp_path):
    export_onnx(feature_extractor, tmp_path / "features.onnx")
    code = f"""
import sys
import numpy as np
from kerazoo.export import OnnxClassifier, OnnxFeatureExtractor, Predictor
clf = OnnxClassifier({str(onnx_path)!r})
p = clf.predict(np.full((3, 8, 8, 1), 0.5, np.float32))
assert p.shape == (3, 10), p.shape
f = OnnxFeatureExtractor({str(tmp_path / "features.onnx")!r}).predict(np.zeros((2, 8, 8, 1), np.float32))
assert f.shape == (2, 12), f.shape
leaked = [m for m in ("tensorflow", "keras", "tf2onnx") if m in sys.modules]
assert not leaked, leaked
# Several at once: ONNX Runtime's log severity is process-wide.
from concurrent.futures import ThreadPoolExecutor
with ThreadPoolExecutor(8) as pool:
    assert len(list(pool.map(lambda _: OnnxClassifier({str(onnx_path)!r}), range(16)))) == 16
print(clf.provider)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # ONNX Runtime's error about a CUDA provider it cannot start is silenced
    # for the automatic choice, also when sessions start from several threads.
    assert "onnxruntime" not in result.stderr, result.stderr


@st.composite
def arrays_a_user_might_pass(draw):
    """Half of them the model's image shape, the rest any rank 0-5 and small
    sizes; a float, int or bool dtype; any values (NaN and Inf included), or
    values in [0, 1]."""
    if draw(st.booleans()):
        shape = (draw(st.integers(0, 5)), *SHAPE)
    else:
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=9))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.float16, np.uint8, np.int32, np.bool_]))
    elements = st.floats(0, 1, width=32) if draw(st.booleans()) and dtype == np.float32 else None
    return draw(hnp.arrays(dtype, shape, elements=elements))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(images=arrays_a_user_might_pass())
def test_any_array_gives_probabilities_or_a_value_error(classifier, images):
    """Property: whatever array a user passes, the runtime answers with finite
    probabilities that sum to 1, or refuses with a ValueError; never
    another exception, never NaN."""
    try:
        probabilities = classifier.predict(images)
    except ValueError as error:
        assert str(error)
        return
    assert probabilities.shape == (len(images), 10)
    assert np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
