"""CheckedPredict: a `predict` that refuses images the model was not made for."""

import keras
import numpy as np

from kerazoo.inputs import check_images


class CheckedPredict:
    """Mixin for image models (before `keras.Model` in the bases): `predict`
    on an array checks it with `kerazoo.inputs.check_images` against the
    image shape the model was built with (before that, its `backbone`'s
    declared input shape, if it has one), and an empty batch gives an empty
    result of the right shape (Keras' own `predict` crashes on one).

    Keras would otherwise cast uint8 pixels, accept 0..255 floats or NaN and
    return confident wrong answers. Datasets and generators go to Keras'
    `predict` unchecked.

    Example:

    ```python
    import numpy as np
    import keras
    from kerazoo.models.checked_predict import CheckedPredict

    class Encoder(CheckedPredict, keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.pool = keras.layers.GlobalAveragePooling2D()

        def call(self, images):
            return self.pool(images)

    encoder = Encoder()
    print(encoder.predict(np.zeros((2, 8, 8, 1), "float32"), verbose=0).shape)  # (2, 1)
    try:
        encoder.predict(np.zeros((2, 8, 8, 1), "uint8"))
    except ValueError as error:
        print(error)  # names the fix
    ```
    """

    def predict(self, x, *args, **kwargs):
        if not (hasattr(x, "__array__") or isinstance(x, list)):
            return super().predict(x, *args, **kwargs)
        built = (self.get_build_config() or {}).get("input_shape")
        # Before the first call, a functional backbone still declares its input.
        declared = getattr(getattr(self, "backbone", None), "input_shape", None)
        shape = built or declared
        images = check_images(x, shape[1:] if shape else np.shape(x)[1:])
        if len(images):
            return super().predict(images, *args, **kwargs)
        # The output structure and sizes of one image, without its row.
        one = self.predict_on_batch(np.zeros((1, *images.shape[1:]), np.float32))
        return keras.tree.map_structure(lambda y: np.asarray(y)[:0], one)
