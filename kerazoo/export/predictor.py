"""`Predictor`: the one interface of a loaded model, whatever its format.

`kerazoo.zoo.load(name, format)` returns a `Predictor` in every format:
`CheckedSavedModel` (SavedModel), `CheckedKerasModel` (`.keras`) and
`OnnxClassifier` / `OnnxFeatureExtractor` (ONNX Runtime). They answer the
same question the same way:

- `predict(images)`: class probabilities (N, C) for a classifier, feature
  vectors (N, D) for a feature extractor (kind `features`);
  `predict(images, output="logits")` gives a classifier's logits;
- `class_names`: the class of each output column, a numpy array of str, so
  `model.class_names[model.predict(images).argmax(1)]` names every
  prediction (a column is not a class index: LUCIR's columns follow its
  class order); None for a feature extractor;
- `kind`, `output_names`, `input_shape`, `output_size`;
- `model`: the object underneath, for what the interface does not cover
  (the `keras.Model` to fine-tune, the loaded SavedModel, the ONNX Runtime
  session).

Images are checked first (`kerazoo.inputs.check_images`, the same messages
in every format) and an empty batch gives an empty result.

numpy only: the ONNX runtime subclasses this without TensorFlow.

Example:

```python
import kerazoo
from sklearn.datasets import load_digits

images = kerazoo.zoo.preprocess("digits_lucir", load_digits().images[:16])
for format in ("savedmodel", "keras", "onnx"):
    model = kerazoo.zoo.load("digits_lucir", format)
    digits = model.class_names[model.predict(images).argmax(1)]  # the same in every format
```
"""

import abc

import numpy as np

from kerazoo.export.kinds import PREDICTED, outputs_of
from kerazoo.inputs import check_images


class Predictor(abc.ABC):
    """Base of every loaded-model class (see the module docstring).

    A subclass sets `kind`, `input_shape`, `output_size` and `model`, calls
    `set_class_names` (or leaves them None), and implements
    `_run(images, output)` for checked, non-empty float32 images.

    Attributes:
        kind: "classifier" or "features".
        output_names: the outputs `predict` can return, e.g.
            ("logits", "probabilities") or ("features",).
        class_names: numpy array of str (read-only), the class of each
            output column; None for a feature extractor or a classifier
            whose names are unknown.
        input_shape: (None, H, W, C).
        output_size: the number of classes C, or the feature dimension D.
        model: the object underneath.

    Example:

    ```python
    import kerazoo
    from kerazoo.export import Predictor
    from sklearn.datasets import load_digits

    model = kerazoo.zoo.load("digits_baseline", "onnx")
    assert isinstance(model, Predictor)
    images = kerazoo.zoo.preprocess("digits_baseline", load_digits().images[:4])
    print(model.kind, model.output_names, model.predict(images, output="logits").shape)
    ```
    """

    kind = None
    input_shape = None
    output_size = None
    model = None
    _class_names = None

    @property
    def output_names(self):
        return outputs_of(self.kind)

    @property
    def class_names(self):
        return self._class_names

    def predict(self, images, output=None):
        """One output of the model for a batch of images.

        Args:
            images: float32 array (N, H, W, C) with values in [0, 1]
                (`kerazoo.zoo.preprocess` makes it from raw data); N may be 0.
            output: which output: default "probabilities" for a
                classifier, "features" for a feature extractor;
                "logits" for a classifier's logits.

        Returns:
            float32 numpy array (N, output_size).

        Raises:
            ValueError: the images are not what the model takes (the
                message says how to fix it), or `output` is not one of
                `output_names`.

        Example:

        ```python
        probabilities = model.predict(images)
        model.class_names[probabilities.argmax(1)]   # the class of each image
        logits = model.predict(images, output="logits")
        ```
        """
        if output is None:
            output = PREDICTED[self.kind]
        if output not in self.output_names:
            raise ValueError(
                f"A {self.kind} model has no output {output!r}; choose one of {list(self.output_names)}."
            )
        images = check_images(images, self.input_shape[1:])
        if not len(images):
            return np.zeros((0, self.output_size), np.float32)
        return np.asarray(self._run(images, output), dtype=np.float32)

    @abc.abstractmethod
    def _run(self, images, output):
        """The raw outputs named `output` for checked, non-empty float32 images."""

    def set_class_names(self, class_names):
        """Record `class_names` (None, or one name per output column): the
        zoo sets the manifest's, checked against the model.

        Raises:
            ValueError: names for a feature extractor, or not one per column.

        Example: `model.set_class_names(["cat", "dog"])`.
        """
        if class_names is None:
            self._class_names = None
            return
        if self.kind != "classifier":
            raise ValueError(
                f"class_names were given for a {self.kind!r} model; only classifiers have "
                "classes: drop class_names."
            )
        names = np.array([str(n) for n in class_names], dtype=str)
        if names.shape != (self.output_size,):
            raise ValueError(f"{len(names)} class names given for a model with {self.output_size} classes.")
        names.flags.writeable = False
        self._class_names = names

    def __repr__(self):
        classes = "" if self._class_names is None else f", {len(self._class_names)} classes"
        return (
            f"<{type(self).__name__} kind={self.kind!r}, input {self.input_shape}"
            f"{classes}, outputs {list(self.output_names)}>"
        )
