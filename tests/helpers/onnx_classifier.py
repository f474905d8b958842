"""Module fixtures of the ONNX runtime tests: a tiny digits-shaped Classifier,
its ONNX file with class names, and an `OnnxClassifier` on the CPU.

A test module takes them by importing the three fixture functions (pytest
finds a fixture in the module by its `name`; the functions are named
`fixture_<name>` so that a test's argument does not shadow an import):

```python
from helpers.onnx_classifier import fixture_classifier, fixture_model, fixture_onnx_path  # noqa: F401
```
"""

import numpy as np
import pytest

from helpers.export import SHAPE
from kerazoo import backbones
from kerazoo.export import OnnxClassifier, export_onnx
from kerazoo.models import Classifier

NAMES = [f"digit {i}" for i in range(10)]


@pytest.fixture(scope="module", name="model")
def fixture_model():
    model = Classifier(backbones.get("convnet", input_shape=SHAPE, width=16), 10)
    model(np.random.default_rng(0).uniform(0, 1, (16, *SHAPE)), training=True)
    return model


@pytest.fixture(scope="module", name="onnx_path")
def fixture_onnx_path(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("runtime") / "model.onnx"
    export_onnx(model, path, class_names=NAMES)
    return path


@pytest.fixture(scope="module", name="classifier")
def fixture_classifier(onnx_path):
    return OnnxClassifier(onnx_path, providers=["CPUExecutionProvider"])
