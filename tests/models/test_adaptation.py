"""DomainAdapter and SemiSupervised: the loss terms, one shared forward pass,
the warm-up, both scopes on two replicas, serialization and what ships."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.replicas import assert_replicas_agree, two_cpu_strategy
from kerazoo import backbones
from kerazoo.losses import bnm_loss, entropy_loss, fbnm_loss
from kerazoo.models import Classifier, DomainAdapter, SemiSupervised

RNG = np.random.default_rng(0)
XS = RNG.uniform(size=(32, 8, 8, 1)).astype("float32")
YS = RNG.integers(0, 4, 32).astype("int32")
XT = RNG.uniform(size=(32, 8, 8, 1)).astype("float32") + 0.5


def _bn_free_backbone():
    # Per-replica BatchNorm statistics would differ from one device's; a
    # BN-free backbone isolates the scaling of the batch-level term.
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def _paired(batch=16):
    return tf.data.Dataset.from_tensor_slices(((XS, YS), XT)).batch(batch, drop_remainder=True)


def _compiled(method="bnm", backbone=None, **kwargs):
    model = DomainAdapter(backbone or _bn_free_backbone(), 4, method=method, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.1), metrics=["accuracy"])
    model(XS[:1])
    return model


@pytest.mark.parametrize(
    "method, term",
    [
        ("bnm", lambda p: bnm_loss(p, "min_dim")),
        ("fbnm", fbnm_loss),
        ("entmin", lambda p: entropy_loss(p, "log_classes")),
    ],
)
def test_terms_are_source_ce_and_weighted_term_on_target(method, term):
    model = _compiled(method, weight=0.5)
    losses, outputs = model.compute_losses(((XS, YS), XT), training=False)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(YS, model(XS))
    np.testing.assert_allclose(losses["ce"], ce, rtol=1e-5)
    probs = keras.ops.softmax(model(XT))
    np.testing.assert_allclose(losses["transfer"], 0.5 * term(probs), rtol=1e-5)
    np.testing.assert_allclose(outputs, model(XS), atol=1e-6)


def test_source_and_target_go_through_separate_forward_passes():
    # As the official DA and SSL code: with BatchNorm in training mode the
    # source logits would depend on the target images if both went through
    # one batch; here each domain is normalised with its own statistics.
    model = _compiled(backbone=backbones.get("convnet", input_shape=(8, 8, 1)))
    losses, source_logits = model.compute_losses(((XS, YS), XT), training=True)
    _, other = model.compute_losses(((XS, YS), XT * 0), training=True)
    np.testing.assert_allclose(np.asarray(source_logits), np.asarray(other), atol=1e-6)
    np.testing.assert_allclose(source_logits, model(XS, training=True), atol=1e-6)
    target_probs = keras.ops.softmax(model(XT, training=True))
    np.testing.assert_allclose(losses["transfer"], bnm_loss(target_probs, "min_dim"), rtol=1e-5)


@pytest.mark.parametrize("model_class, moves", [(DomainAdapter, True), (SemiSupervised, False)])
def test_the_unlabelled_pass_moves_batchnorm_statistics_in_domain_adaptation_only(model_class, moves):
    # The DA code updates BatchNorm's running statistics in both passes; the
    # SSL code in the labelled pass only.
    def statistics_after_a_step(unlabelled):
        keras.utils.set_random_seed(0)
        model = model_class(backbones.get("convnet", input_shape=(8, 8, 1)), 4)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        model(XS[:1])
        batch = tf.data.Dataset.from_tensors(((XS[:16], YS[:16]), unlabelled))
        model.fit(batch, verbose=0)
        return np.concatenate([np.ravel(v) for v in model.non_trainable_weights])

    one, other = statistics_after_a_step(XT[:16]), statistics_after_a_step(XT[16:] * 3)
    assert (not np.allclose(one, other)) == moves


def test_entmin_divides_by_log_classes_in_domain_adaptation_only():
    probs = keras.ops.softmax(np.random.default_rng(1).normal(size=(6, 4)).astype("float32"))
    assert float(DomainAdapter(_bn_free_backbone(), 4, method="entmin").transfer_term(probs)) == (
        pytest.approx(float(entropy_loss(probs)) / np.log(4), rel=1e-5)
    )
    assert float(SemiSupervised(_bn_free_backbone(), 4, method="entmin").transfer_term(probs)) == (
        pytest.approx(float(entropy_loss(probs)), rel=1e-5)
    )


def test_source_only_has_no_transfer_term_and_labelled_batches_give_ce():
    model = _compiled("none")
    losses, _ = model.compute_losses(((XS, YS), XT), training=True)
    assert set(losses) == {"ce"}
    logs = model.evaluate(XS, YS, batch_size=32, verbose=0, return_dict=True)
    assert {"ce", "accuracy"} <= set(logs)


@pytest.mark.parametrize("model_class", [DomainAdapter, SemiSupervised])
def test_the_baseline_trains_as_a_zero_weight_term_with_batchnorm_seeing_the_unlabelled_batches(model_class):
    # The official DA code passes the target batch through the network
    # whatever its method: its baseline is λ = 0, and its BatchNorm running
    # statistics adapt to the target too (SSL's never move on unlabelled data).
    def after_a_step(method, weight):
        keras.utils.set_random_seed(0)
        model = model_class(backbones.get("convnet", input_shape=(8, 8, 1)), 4, method=method, weight=weight)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        model(XS[:1])
        model.fit(tf.data.Dataset.from_tensors(((XS[:16], YS[:16]), XT[:16] * 3)), verbose=0)
        return [np.asarray(v) for v in model.weights]

    for baseline, zero_term in zip(after_a_step("none", 1.0), after_a_step("bnm", 0.0), strict=True):
        np.testing.assert_allclose(baseline, zero_term, atol=1e-6)


def test_warmup_trains_with_ce_only_until_the_step_count():
    model = _compiled(warmup_steps=2)
    for steps, active in ((0, 0.0), (1, 0.0), (2, 1.0), (5, 1.0)):
        model.optimizer.iterations.assign(steps)
        losses, _ = model.compute_losses(((XS, YS), XT), training=False)
        expected = active * bnm_loss(keras.ops.softmax(model(XT)), "min_dim")
        np.testing.assert_allclose(losses["transfer"], expected, rtol=1e-5)


def test_metrics_score_the_source_predictions():
    model = _compiled()
    logs = model.evaluate(_paired(), verbose=0, return_dict=True)
    predicted = np.argmax(model.predict(XS, verbose=0), axis=1)
    np.testing.assert_allclose(logs["accuracy"], np.mean(predicted == YS), atol=1e-6)


def _replica_build(scope, weights=None):
    def build():
        keras.utils.set_random_seed(0)
        model = _compiled(scope=scope, weight=5.0)
        if weights is not None:
            model.set_weights(weights)
        return model

    return build


def test_global_scope_on_two_replicas_trains_like_one_device():
    weights = _replica_build("global")().get_weights()
    assert_replicas_agree(_replica_build("global", weights), _paired(16), epochs=2, atol=2e-5)


def test_replica_scope_computes_the_term_per_replica():
    # On 2 replicas each computes the term on its half of the global batch;
    # the tracked value is their mean, not the term of the whole batch.
    model = _replica_build("replica")()
    weights = model.get_weights()
    with two_cpu_strategy().scope():
        strategy_model = _replica_build("replica", weights)()
    batch = next(iter(_paired(16)))
    logs = strategy_model.evaluate(tf.data.Dataset.from_tensors(batch), verbose=0, return_dict=True)
    probs = keras.ops.softmax(model(batch[1]))
    halves = [bnm_loss(probs[:8], "min_dim"), bnm_loss(probs[8:], "min_dim")]
    np.testing.assert_allclose(logs["transfer"], 5.0 * np.mean(halves), rtol=1e-4)
    assert abs(logs["transfer"] - 5.0 * float(bnm_loss(probs, "min_dim"))) > 1e-4


def test_keras_round_trip_and_inference_model(tmp_path):
    model = _compiled("fbnm", weight=0.3, warmup_steps=7, scope="replica", normalization="batch")
    model.fit(_paired(), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(restored, DomainAdapter)
    for key in ("method", "weight", "warmup_steps", "scope", "normalization"):
        assert getattr(restored, key) == getattr(model, key)
    np.testing.assert_allclose(restored(XS), model(XS), atol=1e-6)
    shipped = model.inference_model()
    assert type(shipped) is Classifier and shipped.head is model.head
    np.testing.assert_allclose(shipped(XS), model(XS), atol=1e-6)


def test_semi_supervised_defaults_to_the_papers_normalization():
    model = SemiSupervised(_bn_free_backbone(), 4)
    assert (model.method, model.normalization, model.warmup_steps) == ("bnm", "batch", 0)
    restored = SemiSupervised.from_config(model.get_config())
    assert isinstance(restored, SemiSupervised) and restored.normalization == "batch"


@pytest.mark.parametrize(
    "kwargs", [{"method": "mcc"}, {"scope": "all"}, {"normalization": "sum"}, {"weight": -1.0}]
)
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        DomainAdapter(_bn_free_backbone(), 4, **kwargs)
