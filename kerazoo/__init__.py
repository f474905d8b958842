"""kerazoo: a Keras 3 model zoo for learning when labels are scarce or skewed.

Subpackages: `layers`, `losses`, `models`, `data`, `recipes`, `export`, and
the modules `backbones`, `incremental`, `initializers`, `inputs`, `metrics`,
`ops`, `optimizers`, `schedules`, `zoo`. They are imported on first use, so `import kerazoo`
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
import sys
import warnings

from kerazoo import _cli

__version__ = "0.1.0"

_SUBMODULES = (
    "backbones",
    "data",
    "export",
    "incremental",
    "initializers",
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


def _warn_if_onednn_is_off():
    try:  # private, and the one place TensorFlow tells whether the rewrites are on
        from tensorflow.python.util._pywrap_util_port import IsMklEnabled
    except ImportError:  # a TensorFlow without it: nothing to tell
        return
    if not IsMklEnabled():
        warnings.warn(
            "TensorFlow was imported before kerazoo and left its oneDNN graph rewrites off on "
            "this CPU: kerazoo's recipes then compute other numbers than its docs (and its ResNet "
            "step ran at half the speed on an AVX2-only CPU, docs/performance.md). Import kerazoo "
            "before TensorFlow, or set TF_ENABLE_ONEDNN_OPTS=1 before importing TensorFlow "
            "(TF_ENABLE_ONEDNN_OPTS=0 keeps them off without this warning).",
            stacklevel=3,
        )


# TensorFlow turns its oneDNN graph rewrites (oneDNN convolutions, fused
# BatchNorm) on by default only on CPUs with AVX-512 VNNI or BF16, or AMX;
# on an AVX2-only CPU it leaves Eigen's convolutions, and the ResNet-32
# training step ran at half the speed (docs/performance.md). TensorFlow reads the
# variable once, when it is imported, so this only acts if kerazoo comes
# first; a value the user set wins. Set after TensorFlow's import it changes
# nothing, so a program that imported TensorFlow first is told why its
# numbers differ.
if "TF_ENABLE_ONEDNN_OPTS" not in os.environ and "tensorflow" in sys.modules:
    _warn_if_onednn_is_off()
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

_cli.setup()
