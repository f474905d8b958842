"""The inference graph of a trained model: what SavedModel and ONNX export.

A deployed model is a functional `keras.Model` with one float32 input
`images` of shape (batch, H, W, C), batch dynamic, and two outputs:
`logits` and `probabilities` (their softmax), both float32.

Protocol for leaving out what only acts in training:

- A model may define `deploy_logits(images)`, returning the logits at
  inference, computed with `training=False` through only the layers
  inference needs (e.g. `head(backbone(images))`, skipping BatchFormer).
  A model without it is deployed as `model(images, training=False)`.
- A layer that only acts in training (the identity at inference, such as
  BatchFormer or the GIT augmenter) sets the class attribute
  `train_only = True`. `deploy_model` refuses a graph that still reaches
  such a layer: even if it emits no op at inference, its weights would ship
  and readers of the graph would see it. The fix is a `deploy_logits`.
"""

import keras
import tensorflow as tf

INPUT_NAME = "images"


def deploy_model(model, input_shape=None):
    """Build the inference graph of `model` (see the module docstring).

    The deployed model shares its layers and weights with `model`.

    Args:
        model: a `keras.Model` from images to logits (B, C), called at least
            once (or give `input_shape`).
        input_shape: image shape without the batch axis, e.g. (32, 32, 3);
            default: the shape `model` was built with.

    Example:

    ```python
    deployed = kerazoo.export.deploy_model(model)
    deployed(images)["probabilities"]  # (N, num_classes)
    ```
    """
    images = keras.Input(image_shape(model, input_shape), dtype="float32", name=INPUT_NAME)
    deploy_logits = getattr(model, "deploy_logits", None)
    logits = deploy_logits(images) if deploy_logits else model(images, training=False)
    if not isinstance(logits, keras.KerasTensor) or len(logits.shape) != 2:
        raise ValueError(
            f"deploy_model needs logits of shape (batch, classes) from {model.name}; "
            f"got {logits!r}. Give {type(model).__name__} a deploy_logits(images) method "
            "that returns them."
        )
    # A mixed-precision model computes in float16; deployment formats (and
    # Keras' own ONNX export) expect float32 outputs.
    logits = keras.layers.Activation("linear", dtype="float32", name="logits")(logits)
    probabilities = keras.layers.Softmax(dtype="float32", name="probabilities")(logits)
    deployed = keras.Model(
        images,
        {"logits": logits, "probabilities": probabilities},
        name=f"{model.name}_deploy",
    )
    _refuse_train_only_layers(deployed, model)
    return deployed


def serving_spec(deployed):
    """The `tf.TensorSpec` of a deployed model's input, batch dimension None."""
    return tf.TensorSpec((None, *deployed.input_shape[1:]), tf.float32, name=INPUT_NAME)


def image_shape(model, input_shape=None):
    """The image shape (H, W, C) `model` takes: `input_shape` if given, else
    the shape it was built with."""
    if input_shape is not None:
        return tuple(input_shape)
    try:
        shape = model.input_shape  # functional models
    except AttributeError:
        # Subclassed models remember the shape of their first call.
        shape = (model.get_build_config() or {}).get("input_shape")
    if shape is None:
        raise ValueError(
            f"{model.name} has never been called, so its input shape is unknown: call "
            "it once on a batch of images, or pass input_shape=(H, W, C)."
        )
    return tuple(shape[1:])


def _refuse_train_only_layers(deployed, model):
    # `_flatten_layers` is the one Keras API that also walks the sublayers of
    # plain (non-Model) layers.
    found = [
        layer.name
        for layer in deployed._flatten_layers(include_self=False, recursive=True)
        if getattr(layer, "train_only", False)
    ]
    if found:
        raise ValueError(
            f"The inference graph of {model.name} still contains train-only layer(s) "
            f"{found}. Give {type(model).__name__} a deploy_logits(images) method that "
            "computes the logits without them."
        )
