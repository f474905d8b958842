"""AdCo: the bank ascends on its own loss (closed form = autodiff), EMA keys, MoCo queue,
1 vs 2 replicas, save/load with both optimizers."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.replicas import assert_replicas_agree, two_cpu_strategy
from kerazoo.models import AdCo, FeatureExtractor
from kerazoo.optimizers import GradientAscent, with_weight_decay

SHAPE = (6,)
RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(0, 1, (16, *SHAPE)).astype("float32")
NOISY = IMAGES + RNG.normal(0, 0.1, IMAGES.shape).astype("float32")
TAU_M, LR, WD = 0.02, 3.0, 1e-4


def tiny_backbone():
    # No BatchNorm: replica equality then holds exactly (BN statistics are per replica).
    inputs = keras.Input(SHAPE)
    return keras.Model(inputs, keras.layers.Dense(8, activation="relu")(inputs))


def build(mode="adco", symmetric=False):
    keras.utils.set_random_seed(0)
    model = AdCo(
        tiny_backbone(), bank_size=32, dim=4, hidden_dim=8, key_momentum=0.9, mode=mode, symmetric=symmetric
    )
    model.compile(
        with_weight_decay(keras.optimizers.SGD(0.1, momentum=0.9), 5e-4),
        GradientAscent(keras.optimizers.SGD(LR, momentum=0.9), weight_decay=WD) if mode == "adco" else None,
    )
    model(IMAGES[:1])
    return model


def views(batch=8):
    return tf.data.Dataset.from_tensor_slices((IMAGES, NOISY)).batch(batch, drop_remainder=True)


def closed_form_bank_gradient(q, k, w):
    """∂L_mem/∂W from research/adco.md §2.2 (the official code's g, negated)."""
    d_norm = w / np.linalg.norm(w, axis=0)
    l_neg = q @ d_norm
    logits = np.concatenate([q @ k.T, l_neg], axis=1) / TAU_M
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = (p / p.sum(axis=1, keepdims=True))[:, len(k) :]
    n = len(q)
    return ((q.T @ p) / n - np.mean(p * l_neg, axis=0) * d_norm) / np.linalg.norm(w, axis=0) / TAU_M


def test_the_bank_ascends_on_its_loss_with_the_closed_form_gradient():
    model = build()
    x_q, x_k = IMAGES[:8], NOISY[:8]
    # Hard negatives: columns near the queries (unnormalised, norms 0.5..2) get
    # softmax weight at τ_m, so the gradient is far from zero.
    near = np.asarray(model(IMAGES))[RNG.integers(0, 16, 32)].T + 0.05 * RNG.normal(size=(4, 32))
    model.bank.bank.assign((near * RNG.uniform(0.5, 2.0, 32)).astype("float32"))
    w0 = np.asarray(model.bank.bank).copy()
    with tf.GradientTape() as tape:
        losses, _ = model.compute_losses((x_q, x_k), training=False)
    autodiff = np.asarray(tape.gradient(losses["bank"], model.bank.bank))
    q = np.asarray(model(x_q)).astype(np.float64)
    k = np.asarray(model._keys(x_k, training=False)).astype(np.float64)
    np.testing.assert_allclose(autodiff, closed_form_bank_gradient(q, k, w0.astype(np.float64)), atol=1e-5)
    assert np.abs(autodiff).max() > 1e-3

    # One step on that batch: W ← W − 3·(−∂L/∂W + 1e-4·W) (first momentum step; the key
    # encoder equals the query encoder at the start, so its EMA step does not move the keys).
    model.fit(tf.data.Dataset.from_tensors((x_q, x_k)), epochs=1, verbose=0)
    np.testing.assert_allclose(np.asarray(model.bank.bank), w0 - LR * (-autodiff + WD * w0), atol=1e-4)
    after, _ = model.compute_losses((x_q, x_k), training=False)
    assert float(after["bank"]) > float(losses["bank"])  # ascent: the bank loss went up
    assert int(model.bank_optimizer.iterations) == 1


def test_keys_come_from_the_ema_encoder_updated_before_them():
    model = build()
    query_before = [np.asarray(w).copy() for w in model.backbone.trainable_weights]
    key_before = [np.asarray(w).copy() for w in model.key_backbone.weights]
    for k, q in zip(key_before, query_before):
        np.testing.assert_array_equal(k, q)  # starts as a copy
    # Move the query encoder so that the EMA has something to average.
    model.fit(views(), epochs=1, verbose=0)
    query_mid = [np.asarray(w).copy() for w in model.backbone.trainable_weights]
    key_mid = [np.asarray(w).copy() for w in model.key_backbone.weights]
    model.fit(views().take(1), epochs=1, verbose=0)
    for k, k0, q0 in zip(model.key_backbone.weights, key_mid, query_mid):
        np.testing.assert_allclose(np.asarray(k), 0.9 * k0 + 0.1 * q0, atol=1e-6)
    optimized = {id(v) for g in model.optimizer_groups() for v in g.variables}
    assert not optimized & {id(v) for v in model.key_backbone.weights + model.key_head.weights}


def test_queue_mode_is_moco_writing_the_keys_first_in_first_out():
    model = build("queue")
    assert model.loss_terms == ("contrastive",)
    assert [g.name for g in model.optimizer_groups()] == ["encoder"]
    history = model.fit(views(), epochs=1, verbose=0)  # 2 steps of 8 keys
    assert int(model.bank.position) == 16
    written = np.asarray(model.bank.bank)[:, :16]
    np.testing.assert_allclose(np.linalg.norm(written, axis=0), 1.0, atol=1e-5)
    assert {"contrastive", "contrastive_accuracy", "bank_rank"} <= set(history.history)


@pytest.mark.parametrize("mode, symmetric", [("adco", True), ("queue", False)])
def test_two_replicas_keep_identical_banks_and_match_one_device(mode, symmetric):
    def state(model):
        return [
            np.asarray(v)
            for v in (
                model.bank.bank,
                *model.backbone.weights,
                *model.key_backbone.weights,
                *(model.bank_optimizer.variables if model.bank_optimizer else ()),
            )
        ]

    one, two = assert_replicas_agree(
        lambda: build(mode, symmetric), views(), epochs=1, atol=2e-5, state=state
    )
    copies = [np.asarray(v) for v in two.bank.bank.value.values]
    assert len(copies) == 2
    np.testing.assert_array_equal(copies[0], copies[1])


def test_a_replica_scoped_queue_stays_one_queue_of_the_global_batchs_keys():
    # scope="replica" contrasts each query with its replica's keys only, but
    # the queue takes every replica's keys, as MoCo's: each replica wrote its
    # own 4 keys to its own copy, and the copies drifted apart.
    keras.utils.set_random_seed(0)
    with two_cpu_strategy().scope():
        model = AdCo(tiny_backbone(), bank_size=32, dim=4, hidden_dim=8, mode="queue", scope="replica")
        model.compile(keras.optimizers.SGD(0.1))
    model.fit(views(), epochs=1, verbose=0)  # 2 steps of 8 keys
    copies = [np.asarray(v) for v in model.bank.bank.value.values]
    np.testing.assert_array_equal(copies[0], copies[1])
    assert [int(np.asarray(v)) for v in model.bank.position.value.values] == [16, 16]
    np.testing.assert_allclose(np.linalg.norm(copies[0][:, :16], axis=0), 1.0, atol=1e-5)


def test_uneven_replica_batches_keep_each_querys_own_key_as_its_positive():
    # Two identical views and frozen, identical encoders: each query's own
    # key is its nearest, so every positive is found. The last batch of 3
    # splits 2 + 1; the second replica's positive is row 2 of the gathered
    # keys, not replica id x 1 (which found 3 of 4 before).
    keras.utils.set_random_seed(0)
    with two_cpu_strategy().scope():
        model = AdCo(tiny_backbone(), bank_size=32, dim=4, hidden_dim=8, key_momentum=0.9)
        model.compile(keras.optimizers.SGD(0.0), GradientAscent(keras.optimizers.SGD(0.0)))
    same = tf.data.Dataset.from_tensor_slices((IMAGES[:15], IMAGES[:15])).batch(6)
    history = model.fit(same, epochs=1, verbose=0)
    assert history.history["contrastive_accuracy"] == [1.0]


def test_shuffled_key_groups_put_every_key_back_in_its_querys_row():
    # shuffle_groups (shuffle-BN) computes the keys on a permuted batch in
    # groups; without BatchNorm the keys must be those of the plain pass,
    # row for row, and with identical views every positive is found.
    keras.utils.set_random_seed(0)
    model = AdCo(tiny_backbone(), bank_size=32, dim=4, hidden_dim=8, shuffle_groups=2)
    model.compile(keras.optimizers.SGD(0.0), GradientAscent(keras.optimizers.SGD(0.0)))
    model(IMAGES[:1])
    np.testing.assert_allclose(model._keys(IMAGES, True), model._keys(IMAGES, False), atol=1e-6)
    same = tf.data.Dataset.from_tensor_slices((IMAGES, IMAGES)).batch(8)
    assert model.fit(same, epochs=1, verbose=0).history["contrastive_accuracy"] == [1.0]


def test_key_groups_that_do_not_divide_a_replicas_batch_are_named():
    # Both failed inside the step in TensorFlow's split op.
    model = AdCo(tiny_backbone(), bank_size=32, dim=4, hidden_dim=8, shuffle_groups=2)
    model.compile(keras.optimizers.SGD(0.0), GradientAscent(keras.optimizers.SGD(0.0)))
    fixed = tf.data.Dataset.from_tensor_slices((IMAGES[:12], IMAGES[:12])).batch(6, drop_remainder=True)
    with pytest.raises(ValueError, match=r"shuffle_groups=2 must divide the batch each replica gets.* Got 3"):
        with two_cpu_strategy().scope():
            other = AdCo(tiny_backbone(), bank_size=32, dim=4, hidden_dim=8, shuffle_groups=2)
            other.compile(keras.optimizers.SGD(0.0), GradientAscent(keras.optimizers.SGD(0.0)))
        other.fit(fixed, epochs=1, verbose=0)
    ragged = tf.data.Dataset.from_tensor_slices((IMAGES[:10], IMAGES[:10])).batch(4)  # 4, 4, 2: fine
    model.fit(ragged, epochs=1, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="shuffle_groups=2 must divide"):
        model.fit(tf.data.Dataset.from_tensor_slices((IMAGES[:9], IMAGES[:9])).batch(4), epochs=1, verbose=0)


def test_a_model_never_compiled_saves_loads_and_clones(tmp_path):
    model = AdCo(tiny_backbone(), bank_size=32, dim=4, hidden_dim=8)
    model(IMAGES[:1])
    model.save(tmp_path / "m.keras")  # read the bank optimizer only compile sets
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(np.asarray(loaded.bank.bank), np.asarray(model.bank.bank))
    assert not keras.models.clone_model(model).compiled


def test_evaluate_reports_the_contrastive_accuracy_and_the_banks_rank():
    # Both were 0.0 in evaluation: only training updated them.
    model = build()
    scores = model.evaluate(views(), verbose=0, return_dict=True)
    assert scores["contrastive_accuracy"] > 0.5 and scores["bank_rank"] > 1.0


def test_a_saved_model_loads_with_both_optimizers_and_ships_its_backbone(tmp_path):
    model = build()
    model.fit(views(), epochs=1, verbose=0)
    model.save(tmp_path / "adco.keras")
    loaded = keras.saving.load_model(tmp_path / "adco.keras")
    assert type(loaded.bank_optimizer) is GradientAscent
    np.testing.assert_allclose(np.asarray(loaded.bank.bank), np.asarray(model.bank.bank))
    for a, b in zip(loaded.bank_optimizer.variables, model.bank_optimizer.variables):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b))
    shipped = model.inference_model()
    assert isinstance(shipped, FeatureExtractor) and shipped.kind == "features"
    np.testing.assert_allclose(np.asarray(shipped(IMAGES)), np.asarray(model.backbone(IMAGES)), atol=1e-6)


def test_ad_init_takes_the_warm_encoder_and_its_key_filled_bank():
    warm = build("queue")
    warm.fit(views(), epochs=2, verbose=0)  # 4 steps x 8 keys = the 32 columns
    model = build()
    model.start_from(warm)
    np.testing.assert_array_equal(np.asarray(model.bank.bank), np.asarray(warm.bank.bank))
    for a, b, c in zip(model.key_backbone.weights, model.backbone.weights, warm.backbone.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(c))
        np.testing.assert_array_equal(np.asarray(b), np.asarray(c))


def test_a_bank_optimizer_is_required_and_modes_are_checked():
    with pytest.raises(ValueError, match="bank_optimizer"):
        AdCo(tiny_backbone(), bank_size=8, dim=4).compile(keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match="mode"):
        AdCo(tiny_backbone(), bank_size=8, dim=4, mode="swav")
    for bad, rule in (
        ({"temperature": 0.0}, "temperature=0.0: it must be > 0"),
        ({"key_momentum": 1.5}, r"key_momentum=1.5: it must be in \[0, 1\]"),
        ({"shuffle_groups": 0}, "shuffle_groups=0: it must be a whole number >= 1"),
    ):
        with pytest.raises(ValueError, match=rule):
            AdCo(tiny_backbone(), bank_size=8, dim=4, **bad)


def test_the_ema_coefficient_is_key_momentum_and_files_that_say_momentum_still_load():
    with pytest.raises(TypeError, match="rename momentum= to key_momentum="):
        AdCo(tiny_backbone(), bank_size=8, dim=4, momentum=0.9)
    config = AdCo(tiny_backbone(), bank_size=8, dim=4, key_momentum=0.9).get_config()
    config["momentum"] = config.pop("key_momentum")  # as saved before the rename
    assert AdCo.from_config(config).key_momentum == 0.9


def test_one_view_is_refused_with_how_to_give_two():
    model = build()
    with pytest.raises(ValueError, match=r"two augmented views of each image: batches \(view_1, view_2\)"):
        model.fit(IMAGES, epochs=1, batch_size=8, verbose=0)
