"""Deployment: SavedModel and ONNX export, and the runtimes that load them with input checks.

`python -m kerazoo.export RUN_DIR --out DIR` exports a trained run.

Names are imported on first use, so `from kerazoo.export import
OnnxClassifier` (or `OnnxFeatureExtractor`, `Predictor`) loads only numpy
and onnxruntime, never TensorFlow or Keras.

Every loaded model (`CheckedSavedModel`, `CheckedKerasModel`,
`OnnxClassifier`, `OnnxFeatureExtractor`) is a `Predictor`: the same
`predict(images)` (probabilities, or features for kind `features`;
`output="logits"` for logits) and `class_names`.

Example:

```python
import tempfile
from pathlib import Path
import numpy as np
import kerazoo

images = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
model = kerazoo.models.Classifier(kerazoo.backbones.get("convnet", width=8), num_classes=3)
model(images)  # built

from kerazoo.export import OnnxClassifier, export_onnx

path = Path(tempfile.mkdtemp()) / "digits.onnx"
export_onnx(model, path, class_names=["a", "b", "c"])
clf = OnnxClassifier(path)
print(clf.class_names[clf.predict(images).argmax(1)])
```
"""

import importlib

_HOMES = {
    "deploy_model": "kerazoo.export.deploy",
    "kind_of": "kerazoo.export.deploy",
    "CheckedSavedModel": "kerazoo.export.served",
    "CheckedKerasModel": "kerazoo.export.served",
    "Predictor": "kerazoo.export.predictor",
    "export_savedmodel": "kerazoo.export.savedmodel",
    "export_onnx": "kerazoo.export.onnx",
    "ParityError": "kerazoo.export.onnx",
    "OnnxClassifier": "kerazoo.export.runtime",
    "OnnxFeatureExtractor": "kerazoo.export.runtime",
}


def __getattr__(name):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'kerazoo.export' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_HOMES])


__all__ = list(_HOMES)
