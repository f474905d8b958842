"""Predictor: the interface every loaded model shares (outputs by name, class names as a read-only array)."""

import keras
import numpy as np
import pytest

from helpers.export import SHAPE
from helpers.onnx_classifier import NAMES, fixture_classifier, fixture_model, fixture_onnx_path  # noqa: F401


def test_logits_and_probabilities_by_the_shared_interface(model, classifier):
    from kerazoo.export import Predictor

    x = np.random.default_rng(2).uniform(0, 1, (4, *SHAPE)).astype("float32")
    assert isinstance(classifier, Predictor)
    assert classifier.kind == "classifier" and classifier.output_names == ("logits", "probabilities")
    logits = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(classifier.predict(x, output="logits"), logits, atol=1e-5)
    np.testing.assert_allclose(classifier.predict(x), classifier.predict(x, output="probabilities"))
    # class_names is an array: it names a whole batch of predictions at once.
    predicted = classifier.class_names[classifier.predict(x).argmax(1)]
    assert list(predicted) == [NAMES[i] for i in logits.argmax(1)]
    with pytest.raises(
        ValueError,
        match=r"A classifier model has no output 'features'; choose one of \['logits', 'probabilities'\]",
    ):
        classifier.predict(x, output="features")
    with pytest.raises(ValueError, match="read-only"):
        classifier.class_names[0] = "x"
