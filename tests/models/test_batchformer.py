"""BatchFormerClassifier mechanics: 2B training rows with repeated labels, BatchFormer's
gradients and 0.1× learning rate, inference without BatchFormer, serialization, export
and two replicas."""

import warnings

import keras
import numpy as np
import onnx
import onnxruntime
import pytest
import tensorflow as tf
from numpy.testing import assert_allclose, assert_array_equal

from helpers.export import export_round_trip, random_images
from helpers.replicas import assert_replicas_agree
from kerazoo import backbones
from kerazoo.layers import BatchFormer
from kerazoo.losses import balanced_softmax_loss
from kerazoo.models import BatchFormerClassifier, Classifier

COUNTS = [40, 20, 10, 5, 3]


def make(batchformer=True, loss="ce", dropout=0.0, scope="replica", synchronized=False, lr=0.1, call=True):
    model = BatchFormerClassifier(
        backbones.get("convnet", input_shape=(8, 8, 1), width=16, synchronized=synchronized),
        len(COUNTS),
        BatchFormer(dropout=dropout, scope=scope) if batchformer else None,
        class_counts=COUNTS,
        loss=loss,
    )
    model.compile(optimizer=keras.optimizers.SGD(lr), metrics=["accuracy"])
    if call:
        model(random_images(1))
    return model


def batch(n=8, seed=0):
    return random_images(n, seed=seed), np.arange(n, dtype="int32") % len(COUNTS)


def test_training_logits_have_two_b_rows_with_labels_repeated():
    model = make()
    x, y = batch()
    losses, (labels, logits) = model.compute_losses((x, y), training=True)
    assert logits.shape == (16, len(COUNTS))
    assert_array_equal(np.asarray(labels), np.concatenate([y, y]))
    # First half: the head on the raw features; second half: after BatchFormer.
    assert_allclose(np.asarray(logits[:8]), np.asarray(model(x, training=True)), atol=1e-5)
    assert not np.allclose(np.asarray(logits[8:]), np.asarray(logits[:8]), atol=1e-3)
    expected = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    assert_allclose(float(losses["ce"]), float(np.mean(expected)), rtol=1e-5)


def test_the_official_loss_weight_sums_the_codes_three_terms_with_batchformer_only():
    # run_networks.py batch_loss with add_bt: L(first B) + L(second B) + L(all 2B).
    x, y = batch()
    for with_batchformer in (True, False):
        model = make(batchformer=with_batchformer, loss="balanced_softmax")
        official = BatchFormerClassifier.from_config({**model.get_config(), "batchformer_loss_weight": 3.0})
        official.set_weights(model.get_weights())
        keras.utils.set_random_seed(1)
        losses, (labels, logits) = official.compute_losses((x, y), training=True)
        keras.utils.set_random_seed(1)
        plain, _ = model.compute_losses((x, y), training=True)
        if not with_batchformer:
            assert_allclose(float(losses["balanced_softmax"]), float(plain["balanced_softmax"]), rtol=1e-6)
            continue
        n = len(y)
        terms = [
            balanced_softmax_loss(labels[:n], logits[:n], COUNTS),
            balanced_softmax_loss(labels[n:], logits[n:], COUNTS),
            balanced_softmax_loss(labels, logits, COUNTS),
        ]
        assert_allclose(float(losses["balanced_softmax"]), float(sum(terms)), rtol=1e-5)
        assert_allclose(float(losses["balanced_softmax"]), 3 * float(plain["balanced_softmax"]), rtol=1e-5)


def test_evaluation_uses_b_rows_and_balanced_softmax_uses_the_prior():
    model = make(loss="balanced_softmax")
    x, y = batch()
    losses, (labels, logits) = model.compute_losses((x, y), training=False)
    assert logits.shape == (8, len(COUNTS))
    assert_allclose(
        float(losses["balanced_softmax"]), float(balanced_softmax_loss(y, logits, COUNTS)), rtol=1e-5
    )


def test_batchformer_gets_gradients_at_a_tenth_of_the_learning_rate():
    model = make(lr=0.1)
    x, y = batch()
    bf = model.batchformer.trainable_variables
    own = {id(v) for v in bf}
    rest = [v for v in model.trainable_variables if id(v) not in own]
    with tf.GradientTape() as tape:
        loss = model.compute_losses((x, y), training=True)[0]["ce"]
    gradients = tape.gradient(loss, bf + rest)
    assert all(g is not None for g in gradients)
    assert max(float(tf.reduce_max(tf.abs(g))) for g in gradients[: len(bf)]) > 1e-6
    before = [np.asarray(v) for v in bf + rest]
    model.train_on_batch(x, y)  # plain SGD, dropout 0: the step is -lr · gradient
    for i, (v, w, g) in enumerate(zip(bf + rest, before, gradients)):
        rate = 0.01 if i < len(bf) else 0.1
        assert_allclose(np.asarray(v) - w, -rate * np.asarray(g), atol=1e-6)
    assert float(model.batchformer_optimizer.learning_rate) == pytest.approx(0.01)


def test_a_schedule_is_scaled_at_every_step():
    model = make()
    schedule = keras.optimizers.schedules.CosineDecay(0.05, 100)
    model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9), batchformer_lr_scale=0.1)
    second = model.batchformer_optimizer
    assert isinstance(second, keras.optimizers.SGD) and second.momentum == 0.9
    model.optimizer.build(model.trainable_variables)
    second.build(model.batchformer.trainable_variables)
    for step in (0, 30, 99):
        model.optimizer.iterations.assign(step)
        second.iterations.assign(step)
        assert float(second.learning_rate) == pytest.approx(0.1 * float(model.optimizer.learning_rate))
        assert float(model.optimizer.learning_rate) == pytest.approx(float(schedule(step)))


def test_a_callback_that_lowers_the_rate_lowers_batchformers_too():
    # Keras' rate callbacks see model.optimizer only.
    model = make(lr=0.1)
    x, y = batch(16)
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=2,
        verbose=0,
        callbacks=[keras.callbacks.LearningRateScheduler(lambda e: 0.1**e)],
    )
    assert float(model.optimizer.learning_rate) == pytest.approx(0.1)
    assert float(model.batchformer_optimizer.learning_rate) == pytest.approx(0.01)


def test_inference_is_identical_with_and_without_batchformer():
    model = make(dropout=0.5)
    x, y = batch()
    model.train_on_batch(x, y)
    expected = np.asarray(model(x, training=False))
    without = BatchFormerClassifier(model.backbone, len(COUNTS), None, head=model.head)
    assert_array_equal(np.asarray(without(x)), expected)
    shipped = model.inference_model()
    assert type(shipped) is Classifier
    assert_array_equal(np.asarray(shipped(x)), expected)
    assert not any(isinstance(layer, BatchFormer) for layer in shipped._flatten_layers())
    # A sample's prediction does not depend on the rest of the batch.
    assert_allclose(np.asarray(model(x[:1], training=False)), expected[:1], atol=1e-6)


# Trained without a call first (the step calls the parts, not the model), it
# was saved unbuilt and lost both optimizers' state on loading.
@pytest.mark.parametrize("called", [True, False])
def test_keras_file_round_trip_keeps_batchformer_and_its_lr_scale(called, tmp_path):
    model = make(loss="balanced_softmax", call=called)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), batchformer_lr_scale=0.5)
    x, y = batch()
    model.train_on_batch(x, y)
    model.save(tmp_path / "m.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "Skipping variable loading for optimizer"
        restored = keras.saving.load_model(tmp_path / "m.keras")
    for saved, loaded in (
        (model.optimizer, restored.optimizer),
        (model.batchformer_optimizer, restored.batchformer_optimizer),
    ):
        assert len(loaded.variables) == len(saved.variables)
        for a, b in zip(saved.variables, loaded.variables):
            assert_allclose(np.asarray(a), np.asarray(b))
    assert isinstance(restored.batchformer, BatchFormer) and restored.loss_name == "balanced_softmax"
    assert restored.class_counts == COUNTS and restored.batchformer_lr_scale == 0.5
    assert_allclose(np.asarray(restored(x)), np.asarray(model(x)), atol=1e-6)


def test_a_model_never_compiled_saves_loads_and_clones(tmp_path):
    model = BatchFormerClassifier(
        backbones.get("convnet", input_shape=(8, 8, 1), width=16), len(COUNTS), BatchFormer()
    )
    x = random_images(4)
    model.save(tmp_path / "m.keras")  # read the scale only compile sets
    for copy in (keras.saving.load_model(tmp_path / "m.keras"), keras.models.clone_model(model)):
        assert isinstance(copy.batchformer, BatchFormer) and not copy.compiled
    assert_allclose(np.asarray(keras.saving.load_model(tmp_path / "m.keras")(x)), np.asarray(model(x)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"loss": "focal"}, "loss must be"),
        ({"loss": "balanced_softmax", "class_counts": None}, "needs class_counts"),
        ({"class_counts": [1, 2]}, "2 entries for 5 classes"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    arguments = {"class_counts": COUNTS, **kwargs}
    with pytest.raises(ValueError, match=message):
        BatchFormerClassifier(backbones.get("convnet", input_shape=(8, 8, 1)), 5, **arguments)


def test_exported_onnx_has_no_attention_and_matches_keras(tmp_path):
    model = make(dropout=0.5)
    x, y = batch(32)
    model.train_on_batch(x, y)
    images = random_images(7, seed=3)
    result = export_round_trip(model, tmp_path, images, atol=1e-5)
    assert max(result["max_abs_diff"].values()) <= 1e-5
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {session.get_inputs()[0].name: images})
    assert_allclose(logits, np.asarray(model(images, training=False)), atol=1e-5)
    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    names = " ".join([f"{n.op_type} {n.name}" for n in graph.node] + [i.name for i in graph.initializer])
    for part in ("attention", "batchformer", "layernorm", "norm1", "ffn1"):
        assert part not in names.lower()


def test_global_scope_on_two_replicas_trains_like_one_device():
    # Attention over the gathered global batch, gradients back through the
    # all-gather: 2 replicas (synchronized BatchNorm, dropout 0) reach the
    # weights one device reaches on the same batch. (The replica scope's
    # per-replica attention is shown in tests/layers/test_batchformer.py.)
    x, y = batch(16)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    keras.utils.set_random_seed(0)
    weights = make(scope="global", synchronized=True).get_weights()

    def build():
        model = make(scope="global", synchronized=True)
        model.set_weights(weights)
        return model

    assert_replicas_agree(build, data, epochs=1, atol=2e-5)
