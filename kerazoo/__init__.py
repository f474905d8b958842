"""kerazoo: a Keras 3 model zoo for learning when labels are scarce or skewed.

Subpackages: `layers`, `losses`, `models`, `data`, `recipes`, `export`, and
the modules `backbones`, `incremental`, `inputs`, `metrics`, `optimizers`, `schedules`, `zoo`. They are imported
on first use, so `import kerazoo` stays cheap: it imports neither TensorFlow
nor Keras. Once Keras is imported (before or after kerazoo), kerazoo's Keras
classes are registered, so `keras.saving.load_model` reads zoo `.keras`
files after a plain `import kerazoo`.
"""

import importlib

from kerazoo import _cli, _keras_registration

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
    "optimizers",
    "recipes",
    "schedules",
    "zoo",
)

# The subpackages whose import registers every class decorated with
# `@keras.saving.register_keras_serializable` (tests/test_init.py checks that
# none is missing).
_SERIALIZABLE = ("layers", "models", "optimizers", "schedules")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"kerazoo.{name}")
    raise AttributeError(f"module 'kerazoo' has no attribute {name!r}")


def _register_keras_classes():
    for name in _SERIALIZABLE:
        importlib.import_module(f"kerazoo.{name}")


__all__ = ["__version__", *_SUBMODULES]

_cli.setup()
# Last, so that the subpackages it may import find this module complete.
_keras_registration.when_keras_ready(_register_keras_classes)
