"""FeatureExtractor: images to feature vectors, the deployable form of representation learners."""

import keras

from kerazoo.models.checked_predict import CheckedPredict
from kerazoo.serialization import deserialized


@keras.saving.register_keras_serializable(package="kerazoo")
class FeatureExtractor(CheckedPredict, keras.Model):
    """A backbone, an optional projection and optional L2 normalisation.

    features = normalize(projection(backbone(images))) with each step
    optional. Its kind is `features`: `kerazoo.export` deploys it with the
    single output `features` (B, D) and no softmax, and the zoo loads its
    ONNX file as an `OnnxFeatureExtractor`. Methods that learn a
    representation rather than a classifier (e.g. AdCo's query encoder)
    return one from `inference_model()`.

    Args:
        backbone: a `keras.Model` from images to feature vectors (B, D).
        projection: a layer (or model) applied to the backbone's features,
            e.g. a trained projection head; default none.
        normalize: divide each feature vector by its L2 norm, as
            contrastive methods compare features by cosine similarity.

    Example:

    ```python
    import numpy as np
    import kerazoo

    images = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    extractor = kerazoo.models.FeatureExtractor(
        kerazoo.backbones.get("convnet", input_shape=(8, 8, 1)), normalize=True
    )
    features = extractor.predict(images, verbose=0)  # (4, 64), unit rows
    print(np.linalg.norm(features, axis=1))
    ```
    """

    kind = "features"

    def __init__(self, backbone, projection=None, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.projection = projection
        self.normalize = bool(normalize)

    def call(self, images, training=False):
        features = self.backbone(images, training=training)
        if self.projection is not None:
            features = self.projection(features, training=training)
        if self.normalize:
            features = keras.ops.normalize(features, axis=-1, order=2)
        return features

    def inference_model(self):
        """What ships: this model itself (see `kerazoo.export`)."""
        return self

    def get_config(self):
        return {
            **super().get_config(),
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "projection": keras.saving.serialize_keras_object(self.projection),
            "normalize": self.normalize,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**deserialized(config, "backbone", "projection"))
