"""kerazoo: a Keras 3 model zoo for learning when labels are scarce or skewed.

Subpackages: `layers`, `losses`, `models`, `data`, `recipes`, `export`, and
the modules `backbones`, `incremental`, `metrics`, `zoo`. They are imported
on first use, so `import kerazoo` stays cheap.
"""

import importlib

from kerazoo import _cli

__version__ = "0.1.0"

_SUBMODULES = (
    "backbones",
    "data",
    "export",
    "incremental",
    "layers",
    "losses",
    "metrics",
    "models",
    "recipes",
    "zoo",
)

if _cli.launched_as_cli():
    _cli.quiet_tensorflow()


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"kerazoo.{name}")
    raise AttributeError(f"module 'kerazoo' has no attribute {name!r}")


__all__ = ["__version__", *_SUBMODULES]
