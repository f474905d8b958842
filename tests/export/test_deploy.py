"""deploy_model: the inference graph of each kind, without train-only layers."""

from collections import Counter

import keras
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tensorflow as tf
import tf2onnx

from helpers.every_model import every_model
from helpers.export import SHAPE
from helpers.export import random_images as images
from kerazoo import backbones
from kerazoo.export import deploy_model, export_onnx, export_savedmodel, kind_of
from kerazoo.export.deploy import inference_model
from kerazoo.models import Classifier
from kerazoo.models.base import dtype_policy_scope


class TinyBatchFormer(keras.layers.Layer):
    """BatchFormer's shape in miniature: attention whose sequence is the
    batch in training, the identity at inference."""

    train_only = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)

    def call(self, features, training=False):
        if not training:
            return features
        sequence = features[None]  # (1, B, D): every sample attends to the batch
        return features + self.attention(sequence, sequence)[0]


class TinyBatchFormerModel(keras.Model):
    """Shared head before and after the BatchFormer in training (logits for
    2B samples); ships head(backbone(x)) as a Classifier."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbones.get("convnet", input_shape=SHAPE, width=16)
        self.batchformer = TinyBatchFormer()
        self.head = keras.layers.Dense(5)

    def call(self, images, training=False):
        features = self.backbone(images, training=training)
        if not training:
            return self.head(self.batchformer(features, training=False))
        mixed = self.batchformer(features, training=True)
        return keras.ops.concatenate([self.head(features), self.head(mixed)])

    def inference_model(self):
        # A fresh, never-called Classifier: deploy_model takes the image
        # shape from the trained model.
        return Classifier(self.backbone, 5, head=self.head)


class WithoutInferenceModel(TinyBatchFormerModel):
    inference_model = None  # ships itself: model(images, training=False)


@pytest.fixture(scope="module")
def batchformer_model():
    model = TinyBatchFormerModel()
    model(images(16), training=True)  # builds the attention and moves BN statistics
    return model


def test_classifier_graph_matches_call():
    model = Classifier(backbones.get("convnet", input_shape=SHAPE, width=16), 10)
    model(images(16), training=True)
    deployed = deploy_model(model)

    assert deployed.input_shape == (None, *SHAPE)
    assert deployed.inputs[0].name == "images"
    x = images(7)
    out = deployed(x)
    assert set(out) == {"logits", "probabilities"}
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(out["logits"], expected, atol=1e-6)
    np.testing.assert_allclose(out["probabilities"], tf.nn.softmax(expected), atol=1e-6)
    assert out["logits"].dtype == out["probabilities"].dtype == "float32"


def test_batchformer_and_its_weights_are_left_out(batchformer_model, tmp_path):
    deployed = deploy_model(batchformer_model)

    layers = deployed._flatten_layers(include_self=False, recursive=True)
    assert not any(isinstance(layer, TinyBatchFormer) for layer in layers)
    attention_weights = {id(w) for w in batchformer_model.batchformer.weights}
    assert attention_weights  # built, so their absence below means something
    assert not attention_weights & {id(w) for w in deployed.weights}

    export_savedmodel(batchformer_model, tmp_path / "saved")
    shipped = tf.saved_model.load(str(tmp_path / "saved")).variables
    assert len(shipped) == len(deployed.weights)


def test_onnx_graph_has_no_attention_and_equals_shared_head(batchformer_model, tmp_path):
    export_onnx(batchformer_model, tmp_path / "m.onnx")
    ops = Counter(node.op_type for node in onnx.load(tmp_path / "m.onnx").graph.node)

    # tf2onnx lowers attention's einsums to Gemm/MatMul/Transpose and its
    # weighting to Softmax. The deployed graph keeps one MatMul (the head)
    # and one Softmax (the probabilities output).
    assert ops["Einsum"] == ops["Gemm"] == 0, ops
    assert ops["MatMul"] == 1 and ops["Softmax"] == 1, ops

    # The same counts do see the attention when the training path is converted.
    spec = tf.TensorSpec((None, *SHAPE), tf.float32)
    training_path = tf.function(lambda x: batchformer_model(x, training=True), input_signature=[spec])
    proto, _ = tf2onnx.convert.from_function(training_path, input_signature=[spec], opset=17)
    control = Counter(node.op_type for node in proto.graph.node)
    assert control["Softmax"] >= 1 and control["MatMul"] + control["Gemm"] + control["Einsum"] > 2

    x = images(7, seed=1)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    logits, probabilities = session.run(["logits", "probabilities"], {"images": x})
    model = batchformer_model
    shared_head = keras.ops.convert_to_numpy(model.head(model.backbone(x, training=False)))
    np.testing.assert_allclose(logits, shared_head, atol=1e-5)
    np.testing.assert_allclose(probabilities, tf.nn.softmax(shared_head), atol=1e-6)


def test_train_only_layer_without_inference_model_is_refused():
    model = WithoutInferenceModel()
    model(images(4), training=True)
    with pytest.raises(ValueError, match=r"train-only layer.*inference_model\(\)"):
        deploy_model(model)


def test_a_model_of_two_inputs_is_refused_with_what_deploys():
    first, second = keras.Input((6,)), keras.Input((4,))
    model = keras.Model([first, second], keras.layers.Dense(3)(keras.layers.Concatenate()([first, second])))
    with pytest.raises(
        ValueError, match=r"takes 2 inputs \[\(None, 6\), \(None, 4\)\]; kerazoo exports models of one"
    ):
        deploy_model(model)


def test_a_model_of_uint8_pixels_is_refused():
    # Its Rescaling would divide the deployed graph's [0, 1] images by 255
    # again, and parity compared that graph with itself.
    pixels = keras.Input((4, 4, 1), dtype="uint8")
    scaled = keras.layers.Rescaling(1 / 255)(keras.layers.Identity(dtype="float32")(pixels))
    model = keras.Model(pixels, keras.layers.Dense(3)(keras.layers.Flatten()(scaled)))
    with pytest.raises(
        ValueError, match=r"takes uint8 images; kerazoo's exports take float32 images in \[0, 1\]"
    ):
        deploy_model(model)


@pytest.mark.parametrize("last", [keras.layers.Dense(3, activation="softmax"), keras.layers.Softmax()])
def test_a_classifier_that_ends_in_a_softmax_is_refused(last):
    # Its probabilities shipped as logits, softmaxed a second time.
    inputs = keras.Input((4, 4, 1))
    features = keras.layers.Flatten()(inputs)
    outputs = last(features if isinstance(last, keras.layers.Dense) else keras.layers.Dense(3)(features))
    with pytest.raises(ValueError, match="ends in a softmax; a classifier exports its logits"):
        deploy_model(keras.Model(inputs, outputs))
    classifier = Classifier(
        backbones.get("convnet", width=8), 3, head=keras.layers.Dense(3, activation="softmax")
    )
    classifier(np.zeros((1, 8, 8, 1), "float32"))
    with pytest.raises(ValueError, match="ends in a softmax"):
        deploy_model(classifier)


class _SoftmaxInCall(keras.Model):
    def __init__(self):
        super().__init__()
        self.flatten, self.dense = keras.layers.Flatten(), keras.layers.Dense(3)

    def call(self, images, training=False):
        return keras.ops.softmax(self.dense(self.flatten(images)))


@pytest.mark.parametrize("where", ["a nested head", "the model's call"])
def test_a_softmax_no_layer_check_sees_is_refused_by_the_outputs(where):
    if where == "a nested head":
        head = keras.Sequential([keras.layers.Dense(3), keras.layers.Softmax()])
        model = Classifier(backbones.get("convnet", width=8), 3, head=head)
    else:
        model = _SoftmaxInCall()
    model(np.zeros((1, 8, 8, 1), "float32"))
    with pytest.raises(
        ValueError, match="outputs rows that are >= 0 and sum to 1: probabilities, not logits"
    ):
        deploy_model(model)


def test_a_model_that_outputs_images_is_refused_with_what_deploys():
    # The zoo's GIT translator, what a user may pass to `python -m kerazoo.export`.
    from kerazoo import zoo

    translator = keras.saving.load_model(
        zoo.default_root() / "saved_models" / "digits_git" / "translator.keras"
    )
    with pytest.raises(ValueError, match=r"outputs shape \(None, 16, 16, 1\), not the \(batch, N\)"):
        deploy_model(translator)


def test_feature_extractor_graph_has_one_features_output_and_no_softmax(feature_extractor):
    deployed = deploy_model(feature_extractor)

    assert kind_of(feature_extractor) == "features"
    assert deployed.output_names == ["features"]
    assert not any(isinstance(layer, keras.layers.Softmax) for layer in deployed.layers)
    x = images(7, seed=2)
    features = keras.ops.convert_to_numpy(deployed(x)["features"])
    assert features.shape == (7, 12) and features.dtype == "float32"
    np.testing.assert_allclose(features, feature_extractor(x, training=False), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)


def test_unknown_kind_is_refused():
    class Embedder(Classifier):
        kind = "embedding"

    model = Embedder(backbones.get("convnet", input_shape=SHAPE, width=16), 4)
    model(images(2))
    with pytest.raises(ValueError, match=r"Unknown export kind 'embedding'.*'classifier', 'features'"):
        deploy_model(model)


def test_never_called_model_needs_an_input_shape():
    model = Classifier(backbones.get("convnet", input_shape=SHAPE, width=16), 10)
    with pytest.raises(ValueError, match=r"never been called.*call it once on a batch of images"):
        deploy_model(model)
    assert deploy_model(model, input_shape=SHAPE).input_shape == (None, *SHAPE)


@pytest.mark.slow
def test_every_model_trains_in_mixed_bfloat16_and_exports_float32_files_that_pass_parity(tmp_path):
    with dtype_policy_scope("mixed_bfloat16"):
        models = every_model()
    for name, (model, batch) in models.items():
        assert model.compute_dtype == "bfloat16", name
        logs = model.fit(tf.data.Dataset.from_tensors(batch).repeat(2), shuffle=False, verbose=0).history
        assert all(np.isfinite(v[-1]) for v in logs.values()), (name, logs)
        if name == "munit":  # trains a translator; ships nothing itself
            continue
        deployed = deploy_model(model, input_shape=SHAPE)
        assert {layer.compute_dtype for layer in deployed._flatten_layers()} == {"float32"}, name
        x = images(7, seed=2)
        output = "features" if kind_of(model) == "features" else "logits"
        # The float32 copy holds the trained weights: it answers as the
        # bfloat16 model does, to bfloat16's precision.
        mixed = keras.ops.convert_to_numpy(inference_model(model)(x, training=False))
        np.testing.assert_allclose(deployed(x)[output], mixed.astype("float32"), atol=0.1, err_msg=name)
        export_onnx(model, tmp_path / f"{name}.onnx", sample_images=x)  # parity-checked at 1e-4
        served = tf.saved_model.load(str(export_savedmodel(model, tmp_path / name)))
        np.testing.assert_allclose(served.serve(x)[output], deployed(x)[output], atol=1e-4, err_msg=name)


def test_a_model_with_two_outputs_is_refused_with_the_reason():
    inputs = keras.Input(SHAPE)
    features = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(3)(features), keras.layers.Dense(2)(features)])
    with pytest.raises(ValueError, match=r"outputs 2 tensors, not the \(batch, N\) logits or features"):
        deploy_model(model)
