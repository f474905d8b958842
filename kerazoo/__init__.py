"""kerazoo: a Keras 3 model zoo for learning when labels are scarce or skewed.

Subpackages: `layers`, `losses`, `models`, `data`, `recipes`, `export`, and
the modules `backbones`, `incremental`, `inputs`, `metrics`, `ops`, `optimizers`,
`schedules`, `zoo`. They are imported on first use, so `import kerazoo`
stays cheap: it imports neither TensorFlow nor Keras, and the ONNX runtimes
(`kerazoo.export.OnnxClassifier`) never do.

Each Keras class is registered for `keras.saving.load_model` by its
`@keras.saving.register_keras_serializable` decorator when its module is
imported. `import kerazoo.models` imports them all (models, layers,
optimizers, schedules), so it is the one import a `.keras` file of kerazoo
needs:

```python
import keras
import kerazoo.models  # registers every kerazoo Keras class

model = keras.saving.load_model("runs/lucir/model.keras")
```
"""

import importlib
import os

from kerazoo import _cli

__version__ = "0.1.0"

_SUBMODULES = (
    "backbones",
    "data",
    "export",
    "incremental",
    "inputs",
    "layers",
    "losses",
    "metrics",
    "models",
    "ops",
    "optimizers",
    "recipes",
    "schedules",
    "zoo",
)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"kerazoo.{name}")
    raise AttributeError(f"module 'kerazoo' has no attribute {name!r}")


__all__ = ["__version__", *_SUBMODULES]

# TensorFlow turns its oneDNN graph rewrites (oneDNN convolutions, fused
# BatchNorm) on by default only on CPUs with AVX-512 VNNI or BF16, or AMX;
# on an AVX2-only CPU it leaves Eigen's convolutions, and the ResNet-32
# training step ran at half the speed (docs/performance.md). TensorFlow reads the
# variable once, when it is imported, so this only acts if kerazoo comes
# first; a value the user set wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

_cli.setup()
