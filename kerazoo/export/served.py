"""Loaded models with input checks and one interface (`kerazoo.export.predictor.Predictor`):
`CheckedSavedModel` (a SavedModel from `export_savedmodel`) and
`CheckedKerasModel` (a trained `keras.Model`, e.g. a zoo `.keras` file)."""

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kerazoo.export.deploy import INPUT_NAME, deploy_model, image_shape, kind_of
from kerazoo.export.kinds import kind_of_outputs
from kerazoo.export.predictor import Predictor
from kerazoo.inputs import check_images

SIGNATURE = "serve"
# Images per call of a Keras model in `CheckedKerasModel.predict`.
BATCH_SIZE = 256


class CheckedSavedModel(Predictor):
    """A SavedModel written by `kerazoo.export.export_savedmodel`, whose
    `predict` and `serve` check their images first.

    `predict(images)` answers as every kerazoo format does
    (`kerazoo.export.predictor.Predictor`): probabilities (N, C) for a
    classifier, features (N, D) for a feature extractor, and
    `predict(images, output="logits")` a classifier's logits. `serve(images)`
    returns the signature's whole dict. The bare signature casts nothing and
    checks little: uint8 pixels are refused only by dtype, 0..255 floats
    give confident wrong answers and an empty batch fails deep inside the
    graph. Both methods apply `kerazoo.inputs.check_images` (the messages of
    every kerazoo runtime) and answer an empty batch with empty outputs.
    Every other attribute (`signatures`, `variables`, ...) is the loaded
    SavedModel's.

    Args:
        path: the SavedModel directory.
        class_names: the class of each output column (the SavedModel does
            not store them; `kerazoo.zoo.load` passes the manifest's), or None.

    Attributes:
        kind: "classifier" or "features", read from the signature's outputs.
        input_shape: (None, H, W, C).
        output_names: the signature's outputs, e.g. ("logits", "probabilities").
        class_names: numpy array of str, or None.
        model: the loaded SavedModel (`tf.saved_model.load`).

    Example:

    ```python
    import kerazoo
    from kerazoo.export import CheckedSavedModel
    from sklearn.datasets import load_digits

    path = kerazoo.zoo.default_root() / "saved_models" / "digits_baseline" / "model"
    model = CheckedSavedModel(path, class_names=[str(d) for d in range(10)])
    images = kerazoo.zoo.preprocess("digits_baseline", load_digits().images[:8])
    print(model.class_names[model.predict(images).argmax(1)])  # the class of each image
    print(model.serve(images)["logits"].shape)  # float32 numpy (N, C)
    ```
    """

    def __init__(self, path, class_names=None):
        path = Path(path)
        if not (path / "saved_model.pb").is_file():
            raise FileNotFoundError(f"No SavedModel at {path} (no saved_model.pb).")
        self._loaded = tf.saved_model.load(str(path))
        if SIGNATURE not in self._loaded.signatures:
            raise ValueError(
                f"{path} has no '{SIGNATURE}' signature (it has {sorted(self._loaded.signatures)}); "
                "export the model with kerazoo.export.export_savedmodel."
            )
        self.model = self._loaded
        self._signature = self._loaded.signatures[SIGNATURE]
        spec = self._signature.structured_input_signature[1][INPUT_NAME]
        self.input_shape = tuple(spec.shape.as_list())
        self._output_specs = self._signature.structured_outputs
        self.kind = kind_of_outputs(self._output_specs)
        self.output_size = next(iter(self._output_specs.values())).shape[-1]
        self.set_class_names(class_names)

    @property
    def output_names(self):
        return tuple(sorted(self._output_specs))

    def serve(self, images):
        """{output name: float32 numpy array (N, ...)} for float32 images
        (N, H, W, C) with values in [0, 1]."""
        images = check_images(images, self.input_shape[1:])
        if not len(images):
            return {
                name: np.zeros((0, *spec.shape[1:]), np.float32) for name, spec in self._output_specs.items()
            }
        outputs = self._signature(**{INPUT_NAME: tf.constant(images)})
        return {name: value.numpy() for name, value in outputs.items()}

    def _run(self, images, output):
        return self._signature(**{INPUT_NAME: tf.constant(images)})[output].numpy()

    def __getattr__(self, name):
        # Only reached for names this wrapper lacks; `_loaded` itself may be
        # missing if __init__ failed.
        if name == "_loaded":
            raise AttributeError(name)
        return getattr(self._loaded, name)


class CheckedKerasModel(Predictor):
    """A trained `keras.Model` answering as every kerazoo format does
    (`kerazoo.export.predictor.Predictor`), for the zoo's `.keras` files.

    `predict(images)` gives probabilities (N, C) for a classifier (the
    softmax the deployed formats apply to its logits), features (N, D) for a
    feature extractor; `predict(images, output="logits")` the logits. It
    runs the model's inference graph (`kerazoo.export.deploy_model`, the
    graph SavedModel and ONNX export), in batches of 256, after
    `kerazoo.inputs.check_images`. The `keras.Model` itself is `.model`:
    fine-tune, save or export that. Its own `predict` returns what its
    `call` returns (a classifier's logits). Other attributes (`fit`,
    `layers`, `summary`, ...) are the model's.

    Args:
        model: a trained `keras.Model` from images to logits or features,
            called at least once (or with an `inference_model()`; see
            `kerazoo.export.deploy_model`).
        class_names: the class of each output column, or None.

    Attributes:
        kind, input_shape, output_size, output_names, class_names: as
            `kerazoo.export.predictor.Predictor`.
        model: the `keras.Model`.

    Example:

    ```python
    import kerazoo
    from sklearn.datasets import load_digits

    digits = load_digits()
    clf = kerazoo.zoo.load("digits_baseline", "keras")  # a CheckedKerasModel
    images = kerazoo.zoo.preprocess("digits_baseline", digits.images[:16])
    print(clf.class_names[clf.predict(images).argmax(1)])  # the class of each image
    clf.model.compile(optimizer="adam")  # the keras.Model, which computes its own loss
    clf.model.fit(images, digits.target[:16], epochs=1, verbose=0)
    ```
    """

    def __init__(self, model, class_names=None):
        if not isinstance(model, keras.Model):
            raise TypeError(f"CheckedKerasModel takes a keras.Model, not a {type(model).__name__}.")
        self.model = model
        self.kind = kind_of(model)
        self.input_shape = (None, *image_shape(model))
        self._deployed = deploy_model(model)
        self.output_size = self._deployed.output[self.output_names[0]].shape[-1]
        self.set_class_names(class_names)

    def _run(self, images, output):
        return np.concatenate(
            [
                keras.ops.convert_to_numpy(self._deployed(images[i : i + BATCH_SIZE], training=False)[output])
                for i in range(0, len(images), BATCH_SIZE)
            ]
        )

    def __call__(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    def __getattr__(self, name):
        # Only reached for names this wrapper lacks.
        return getattr(self.model, name)
