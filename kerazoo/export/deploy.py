"""The inference graph of a trained model: what SavedModel and ONNX export.

A deployed model is a functional `keras.Model` with one float32 input
`images` of shape (batch, H, W, C), batch dynamic, and the float32 outputs
of its kind (`kerazoo.export.kinds`): a `classifier` gives `logits` and
`probabilities` (their softmax), a `features` model gives `features`.

Protocol:

- A model may define `inference_model()`, returning the model that ships
  (a `Classifier` or a `FeatureExtractor` sharing the trained layers, e.g.
  LUCIR's backbone and cosine head without the frozen old model). Otherwise
  the model itself ships.
- The shipped model's class attribute `kind` picks the outputs (default
  `classifier`); it is called with `training=False` and returns (B, N).
  It takes float images in [0, 1] (a model whose input is uint8 pixels is
  refused: its rescaling would divide the deployed images again), and a
  classifier returns logits (one that ends in a softmax is refused: its
  probabilities would ship as logits and be softmaxed again).
- A layer that only acts in training (the identity at inference, such as
  BatchFormer or the GIT augmenter) sets the class attribute
  `train_only = True`. `deploy_model` refuses a graph that still reaches
  such a layer: even if it emits no op at inference, its weights would ship
  and readers of the graph would see it. The fix is an `inference_model()`
  that leaves it out.
"""

import keras
import numpy as np
import tensorflow as tf

from kerazoo._keras_internals import sublayers
from kerazoo.export.kinds import DEFAULT_KIND, outputs_of

INPUT_NAME = "images"


def deploy_model(model, input_shape=None):
    """Build the inference graph of `model` (see the module docstring).

    The deployed model shares its layers and weights with `model`, except
    under a mixed precision policy: then it computes in float32, on a copy
    (`in_float32`).

    Args:
        model: a `keras.Model` from images to logits or features (B, N), or
            one whose `inference_model()` returns such a model; called at
            least once (or give `input_shape`).
        input_shape: image shape without the batch axis, e.g. (32, 32, 3);
            default: the shape the model was built with.

    Example:

    ```python
    import numpy as np
    import kerazoo

    images = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    model = kerazoo.models.Classifier(kerazoo.backbones.get("convnet", width=8), num_classes=3)
    model(images)  # built

    from kerazoo.export import deploy_model

    deployed = deploy_model(model)
    print(deployed(images)["probabilities"].shape)  # (4, 3); ["features"] for a FeatureExtractor
    ```
    """
    shipped = in_float32(inference_model(model))
    kind = kind_of(model)
    outputs_of(kind)  # an unknown kind fails before any graph is built
    try:
        shape = image_shape(shipped, input_shape)
    except ValueError:
        # A shipped model made after training may never have been called; the
        # trained model it comes from knows the shape.
        shape = image_shape(model, input_shape)
    _refuse_pixel_inputs(shipped)
    images = keras.Input(shape, dtype="float32", name=INPUT_NAME)
    values = shipped(images, training=False)
    if not isinstance(values, keras.KerasTensor) or len(values.shape) != 2:
        outputs = (
            f"shape {tuple(values.shape)}"
            if isinstance(values, keras.KerasTensor)
            else f"{len(tf.nest.flatten(values))} tensors"
        )
        raise ValueError(
            f"{type(shipped).__name__} {shipped.name!r} outputs {outputs}, not "
            "the (batch, N) logits or features kerazoo deploys: SavedModel and ONNX exports are "
            "of classifiers and feature extractors (a GIT translator is used from Keras, "
            "`MUNITGenerator.translate`). A model of your own that trains with more than it "
            "predicts with: give it an inference_model() method returning the part that ships."
        )
    # Keras' own ONNX export expects float32 outputs; float32 layers keep them so.
    if kind == "features":
        outputs = {"features": keras.layers.Activation("linear", dtype="float32", name="features")(values)}
    else:
        _refuse_a_final_softmax(shipped)
        logits = keras.layers.Activation("linear", dtype="float32", name="logits")(values)
        probabilities = keras.layers.Softmax(dtype="float32", name="probabilities")(logits)
        outputs = {"logits": logits, "probabilities": probabilities}
    deployed = keras.Model(images, outputs, name=f"{shipped.name}_deploy")
    _refuse_train_only_layers(deployed, model)
    if kind != "features":
        _refuse_probabilities_as_logits(deployed, shape, shipped)
    return deployed


def _refuse_pixel_inputs(model):
    # The deployed graph takes float32 images in [0, 1]; a model whose input
    # is uint8 pixels (a Rescaling(1/255) inside) would divide them again,
    # and its parity check would compare that graph with itself.
    for layer in [model, *sublayers(model)]:
        for tensor in getattr(layer, "inputs", None) or ():
            if not keras.backend.is_float_dtype(tensor.dtype):
                raise ValueError(
                    f"{type(model).__name__} {model.name!r} takes {tensor.dtype} images; kerazoo's "
                    "exports take float32 images in [0, 1]. Export a model whose input is float32 "
                    "in [0, 1], without the cast or rescaling of 0..255 pixels."
                )


def _refuse_a_final_softmax(model):
    # A classifier ships its logits and their softmax: a model that ends in a
    # softmax would ship probabilities as logits and softmax them again.
    last = getattr(model, "head", None)
    if last is None and getattr(model, "outputs", None):
        last = model.outputs[0]._keras_history.operation
    activation = getattr(last, "activation", None)
    if isinstance(last, keras.layers.Softmax) or activation in (keras.activations.softmax, "softmax"):
        raise ValueError(
            f"{type(model).__name__} {model.name!r} ends in a softmax; a classifier exports its "
            "logits and adds their softmax as 'probabilities'. Export it without the final "
            "softmax (e.g. Dense(num_classes) with no activation, as it trains with from_logits=True)."
        )


def _refuse_probabilities_as_logits(deployed, shape, shipped):
    # The softmax the layer check cannot see: inside a nested head, or a
    # `keras.ops.softmax` in a model's own call. Rows of logits that are all
    # >= 0 and sum to 1 on two random images are no coincidence.
    if None in shape:
        return
    probe = np.random.default_rng(0).uniform(size=(2, *shape)).astype("float32")
    logits = np.asarray(deployed(probe, training=False)["logits"], "float64")
    if logits.shape[-1] > 1 and (logits >= 0).all() and np.allclose(logits.sum(-1), 1.0, atol=1e-5):
        raise ValueError(
            f"{type(shipped).__name__} {shipped.name!r} outputs rows that are >= 0 and sum to 1: "
            "probabilities, not logits (a softmax at its end). A classifier exports its logits and "
            "adds their softmax as 'probabilities'; export it without the final softmax."
        )


def in_float32(model):
    """`model`, or, if any of its layers computes in another dtype (a mixed
    precision policy such as `mixed_bfloat16`), a float32 copy with the same
    weights: rebuilt from its config with every dtype policy set to
    float32. Deployment formats compute in float32: ONNX Runtime's CPU
    kernels have no bfloat16 convolution, and parity is checked in float32.

    Args:
        model: a built `keras.Model` whose class is serializable.

    Example:

    ```python
    import keras
    import numpy as np
    import kerazoo

    keras.config.set_dtype_policy("mixed_bfloat16")
    model = kerazoo.models.Classifier(kerazoo.backbones.get("convnet", width=8), num_classes=3)
    model(np.zeros((1, 8, 8, 1), "float32"))
    keras.config.set_dtype_policy("float32")

    from kerazoo.export.deploy import in_float32

    print(in_float32(model).compute_dtype)  # float32
    ```
    """
    if all(layer.compute_dtype == "float32" for layer in [model, *sublayers(model)]):
        return model
    config = _float32_policies(keras.saving.serialize_keras_object(model))
    copy = keras.saving.deserialize_keras_object(config, safe_mode=True)
    copy.set_weights(model.get_weights())
    return copy


def _float32_policies(config):
    """`config` (nested dicts and lists) with every dtype policy made float32."""
    if isinstance(config, list):
        return [_float32_policies(c) for c in config]
    if not isinstance(config, dict):
        return config
    if config.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"):
        return {**config, "config": {**config["config"], "name": "float32"}}
    return {k: _float32_policies(v) for k, v in config.items()}


def inference_model(model):
    """The model that ships: `model.inference_model()` if it has one, else `model`.

    Args:
        model: a kerazoo model (or any `keras.Model`).

    Example:

    ```python
    import numpy as np
    import kerazoo

    images = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    model = kerazoo.models.Classifier(kerazoo.backbones.get("convnet", width=8), num_classes=3)
    model(images)  # built

    from kerazoo.export.deploy import inference_model

    assert inference_model(model) is model.inference_model()
    ```
    """
    method = getattr(model, "inference_model", None)
    return method() if method is not None else model


def kind_of(model):
    """The export kind of `model` (`"classifier"` or `"features"`): that of
    the model it ships.

    Args:
        model: a kerazoo model.

    Example:

    ```python
    import numpy as np
    import kerazoo

    images = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    model = kerazoo.models.Classifier(kerazoo.backbones.get("convnet", width=8), num_classes=3)
    model(images)  # built

    from kerazoo.export import kind_of

    print(kind_of(model))  # classifier
    ```
    """
    return getattr(inference_model(model), "kind", DEFAULT_KIND)


def serving_spec(deployed):
    """The `tf.TensorSpec` of a deployed model's input, batch dimension None.

    Args:
        deployed: the result of `deploy_model`.

    Example:

    ```python
    import numpy as np
    import kerazoo

    images = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    model = kerazoo.models.Classifier(kerazoo.backbones.get("convnet", width=8), num_classes=3)
    model(images)  # built

    from kerazoo.export import deploy_model
    from kerazoo.export.deploy import serving_spec

    print(serving_spec(deploy_model(model)))  # TensorSpec(shape=(None, 8, 8, 1), dtype=tf.float32, ...)
    ```
    """
    return tf.TensorSpec((None, *deployed.input_shape[1:]), tf.float32, name=INPUT_NAME)


def image_shape(model, input_shape=None):
    """The image shape (H, W, C) `model` takes: `input_shape` if given, else
    the shape it was built with.

    Args:
        model: a built `keras.Model`.
        input_shape: None, or the (H, W, C) to use.

    Example:

    ```python
    import numpy as np
    import kerazoo

    images = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    model = kerazoo.models.Classifier(kerazoo.backbones.get("convnet", width=8), num_classes=3)
    model(images)  # built

    from kerazoo.export.deploy import image_shape

    print(image_shape(model))  # (8, 8, 1)
    ```
    """
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
            "it once on a batch of images (model(images)) before exporting it "
            "(deploy_model also takes input_shape=(H, W, C))."
        )
    if any(isinstance(s, (tuple, list)) for s in shape):  # one shape per input
        raise ValueError(
            f"{model.name} takes {len(shape)} inputs {[tuple(s) for s in shape]}; kerazoo exports "
            "models of one input, a batch of images (classifiers and feature extractors)."
        )
    return tuple(shape[1:])


def _refuse_train_only_layers(deployed, model):
    found = [layer.name for layer in sublayers(deployed) if getattr(layer, "train_only", False)]
    if found:
        raise ValueError(
            f"The inference graph of {model.name} still contains train-only layer(s) "
            f"{found}. Export a model without them: a subclass gives it from an inference_model() "
            "method (as kerazoo's models do); a functional model can be rebuilt from the same layers "
            "without them, e.g. keras.Model(inputs, head(backbone(inputs))) (they are the identity at "
            "inference, so nothing changes)."
        )
