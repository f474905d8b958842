"""Run a callback as soon as Keras is imported and usable, without importing it.

`keras.saving.load_model` finds a non-Keras class of a `.keras` file only in
the registry that `@keras.saving.register_keras_serializable` fills; it never
imports the module the file records (`serialization_lib._retrieve_class_or_fn`
imports modules of Keras' own packages only). So kerazoo's Keras classes must
be registered before a user loads a zoo model, yet `import kerazoo` must not
import Keras: `from kerazoo.export import OnnxClassifier` loads neither
TensorFlow nor Keras.

`when_keras_ready(callback)` therefore calls `callback` at once if Keras is
already imported, else from a `sys.meta_path` hook the moment the import of
Keras completes. TensorFlow and Keras import each other part-way through
their own imports (`import tensorflow` loads `keras.src.optimizers`; Keras'
TensorFlow backend imports TensorFlow), so the hook waits until neither is
still being imported; the callback may then import code that uses both.
"""

import importlib.abc
import sys
import warnings

# Top-level modules whose imports the hook watches.
_WATCHED = ("keras", "tensorflow")


def when_keras_ready(callback):
    """Call `callback()` now if Keras is imported, else once it is."""
    if "keras" in sys.modules:
        callback()
    else:
        sys.meta_path.insert(0, _KerasHook(callback))


class _KerasHook(importlib.abc.MetaPathFinder):
    """Wraps the loaders of `_WATCHED` modules to notice when their imports
    finish; calls the callback once, then removes itself."""

    def __init__(self, callback):
        self._callback = callback
        self._importing = set()

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _WATCHED:
            return None
        # The spec the finders after us would return, with its loader wrapped.
        for finder in sys.meta_path[sys.meta_path.index(self) + 1:]:
            spec = getattr(finder, "find_spec", lambda *a: None)(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _NotifyingLoader(spec.loader, self)
                return spec
        return None

    def started(self, name):
        self._importing.add(name)

    def finished(self, name, succeeded):
        self._importing.discard(name)
        ready = succeeded and not self._importing and "keras" in sys.modules
        if ready and self in sys.meta_path:
            sys.meta_path.remove(self)
            # We run inside the user's `import keras` (or tensorflow): a
            # failing callback must not make that import fail.
            try:
                self._callback()
            except Exception as e:
                warnings.warn(f"{self._callback.__qualname__} failed: {e!r}", RuntimeWarning)


class _NotifyingLoader(importlib.abc.Loader):
    """Delegates to `loader`, telling `hook` when executing a module starts
    and ends; afterwards the module and its spec get `loader` back."""

    def __init__(self, loader, hook):
        self._loader = loader
        self._hook = hook

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        name = module.__name__
        self._hook.started(name)
        succeeded = False
        try:
            self._loader.exec_module(module)
            succeeded = True
        finally:
            module.__loader__ = module.__spec__.loader = self._loader
            self._hook.finished(name, succeeded)

    def __getattr__(self, name):
        return getattr(self._loader, name)
