"""MUNIT: code shapes and range, the official initialisation and update order, a training step
that lowers reconstruction, no discriminator gradient into the generator, the diagnostics, and
the translator's save/load round trip."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerazoo import metrics
from kerazoo.models import MUNIT, MUNITGenerator


def _tiny(seed=0, domains=1):
    keras.utils.set_random_seed(seed)
    generator = MUNITGenerator((8, 8, 1), dim=8, n_res=1, mlp_dim=16, seed=seed)
    return MUNIT(generator, disc_dim=8, disc_layers=2, domains=domains, seed=seed)


def _images(n=4):
    return np.random.default_rng(0).random((n, 8, 8, 1)).astype("float32")


def test_codes_and_translations_have_munits_shapes_and_range():
    generator = MUNITGenerator((16, 16, 1), dim=8, n_res=1, mlp_dim=16)
    content, style = generator.encode(_images(3).repeat(2, 1).repeat(2, 2))
    assert content.shape == (3, 4, 4, 32) and style.shape == (3, 8)  # 4·dim × H/4 × W/4; 8-d style
    out = np.asarray(generator(np.ones((3, 16, 16, 1), "float32")))
    assert out.shape == (3, 16, 16, 1) and out.min() >= 0.0 and out.max() <= 1.0
    narrow = MUNITGenerator((16, 16, 1), dim=8, n_res=1, mlp_dim=16, content_channels=2)
    assert narrow.encode(np.ones((1, 16, 16, 1), "float32"))[0].shape == (1, 4, 4, 2)


def test_training_lowers_the_reconstruction_loss_on_a_tiny_set():
    munit = _tiny()
    munit.compile(optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5, beta_2=0.999))
    images = _images()
    before = munit.evaluate(images, batch_size=4, verbose=0, return_dict=True)["image_recon"]
    munit.fit(np.tile(images, (40, 1, 1, 1)), batch_size=4, epochs=2, verbose=0)  # 80 steps
    after = munit.evaluate(images, batch_size=4, verbose=0, return_dict=True)["image_recon"]
    assert after < 0.6 * before, (before, after)


def test_two_replicas_translate_with_the_styles_one_device_draws_for_the_global_batch():
    # Keras keeps one seed-generator state per replica, all alike: the two
    # replicas translated with the same styles.
    from helpers.replicas import two_cpu_strategy

    images = _images()
    keras.utils.set_random_seed(0)
    one = np.asarray(
        MUNITGenerator((8, 8, 1), dim=8, n_res=1, mlp_dim=16, seed=0)(np.concatenate([images] * 2))
    )
    strategy = two_cpu_strategy()
    with strategy.scope():
        keras.utils.set_random_seed(0)
        generator = MUNITGenerator((8, 8, 1), dim=8, n_res=1, mlp_dim=16, seed=0)
    two = strategy.experimental_local_results(tf.function(lambda: strategy.run(generator, args=(images,)))())
    assert np.abs(one[:4] - one[4:]).max() > 1e-2  # the styles matter
    np.testing.assert_allclose(np.concatenate([np.asarray(t) for t in two]), one, atol=1e-5)


@pytest.mark.parametrize(
    "shape, sizes",
    [
        ((28, 28, 1), dict(dim=64, n_res=4, mlp_dim=256)),  # MUNIT / GIT's K49 translator
        ((16, 16, 1), dict(dim=16, n_res=2, mlp_dim=128)),  # the digits recipe's default
    ],
)
def test_adain_parameters_start_at_the_scale_of_munits_kaiming_initialisation(shape, sizes):
    # MUNIT's weights_init('kaiming') covers linear layers too: the style MLP
    # then gives AdaIN parameters of std ~1.5 for N(0, I) styles. Keras'
    # default Glorot gave 0.04-0.11, and the decoder learned to ignore the style.
    keras.utils.set_random_seed(0)
    generator = MUNITGenerator(shape, **sizes)
    decoder = generator.decoder
    mlp = keras.Model(decoder.get_layer("style").output, decoder.get_layer("adain_params").output)
    params = np.asarray(mlp(generator.random_styles(256, 0)))
    assert params.std() >= 0.5, params.std()


def test_initialisation_is_seeded_and_same_shaped_layers_differ():
    # Unseeded Keras initializers fix their seed when made: made at import
    # they escape set_random_seed, shared they repeat weights across layers.
    def weights():
        keras.utils.set_random_seed(3)
        generator = MUNITGenerator((8, 8, 1), dim=8, n_res=2, mlp_dim=16)
        return generator, [np.asarray(w) for w in generator.weights]

    generator, first = weights()
    _, second = weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    conv = lambda name: np.asarray(generator.content_encoder.get_layer(name).kernel)  # noqa: E731
    assert not np.allclose(conv("res0_conv1"), conv("res0_conv2"))
    assert not np.allclose(conv("res0_conv1"), conv("res1_conv1"))


def test_a_step_updates_the_discriminator_then_the_generator_each_with_fresh_styles():
    # train_munit.py: dis_update, then gen_update, each its own forward pass
    # and its own N(0, I) styles; the generator then plays the updated critic.
    munit = _tiny()
    munit.compile(optimizer=keras.optimizers.Adam(1e-4), run_eagerly=True)
    applied = []
    for name, optimizer in (("generator", munit.optimizer), ("discriminator", munit.discriminator_optimizer)):
        original = optimizer.apply

        def spy(grads, variables=None, original=original, name=name):
            applied.append(name)
            return original(grads, variables)

        optimizer.apply = spy
    draws = []
    original_styles = munit._styles
    munit._styles = lambda images: draws.append(1) or original_styles(images)
    munit.fit(_images(), batch_size=4, epochs=1, verbose=0)
    assert applied == ["discriminator", "generator"]
    assert len(draws) == 2


def test_each_optimizer_follows_its_own_terms_and_the_discriminator_term_never_reaches_the_generator():
    munit = _tiny()
    munit.compile(optimizer=keras.optimizers.Adam(1e-4))
    generator_group, discriminator_group = munit.optimizer_groups()
    assert generator_group.terms == ("image_recon", "style_recon", "content_recon", "gen_adv")
    assert discriminator_group.terms == ("disc_adv",)
    assert discriminator_group.optimizer is not generator_group.optimizer
    ids = lambda vs: {id(v) for v in vs}  # noqa: E731
    assert ids(generator_group.variables).isdisjoint(ids(discriminator_group.variables))
    assert len(generator_group.variables) + len(discriminator_group.variables) == len(
        munit.trainable_variables
    )
    with tf.GradientTape() as tape:
        losses, _ = munit.compute_losses(_images(), training=True)
    gradients = tape.gradient(losses["disc_adv"], munit.generator.trainable_variables)
    assert all(g is None for g in gradients)


def test_diagnostics_tell_a_style_blind_translator_from_one_that_varies():
    generator = MUNITGenerator((8, 8, 1), dim=8, n_res=1, mlp_dim=16, n_downsample=1)
    images = _images(6)
    translate = lambda x, k: np.asarray(generator.translate(x, generator.random_styles(len(x), k)))  # noqa: E731
    assert metrics.draw_variance(translate, images, 4) > 1e-6
    # Zero the MLP's last layer: AdaIN then gets the same parameters whatever the style.
    dense = generator.decoder.get_layer("adain_params")
    dense.set_weights([np.zeros_like(w) for w in dense.get_weights()])
    assert metrics.draw_variance(translate, images, 4) == pytest.approx(0.0, abs=1e-12)
    # Nothing of the style survives, so it cannot be recovered: about E|N(0, 1)| = 0.80.
    assert generator.style_reconstruction_error(images) > 0.6


def test_translator_and_munit_survive_a_keras_file_round_trip(tmp_path):
    munit = _tiny()
    # Eager: two steps cost less than tracing one.
    munit.compile(optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5, beta_2=0.999), run_eagerly=True)
    images = _images()
    munit.fit(images, batch_size=4, epochs=2, verbose=0)
    generator = munit.inference_model()
    styles = generator.random_styles(len(images), 0)
    generator.save(tmp_path / "translator.keras")
    loaded = keras.saving.load_model(tmp_path / "translator.keras")
    assert type(loaded) is MUNITGenerator
    np.testing.assert_allclose(
        np.asarray(loaded.translate(images, styles)),
        np.asarray(generator.translate(images, styles)),
        atol=1e-6,
    )
    munit.save(tmp_path / "munit.keras")
    restored = keras.saving.load_model(tmp_path / "munit.keras")
    np.testing.assert_allclose(
        np.asarray(restored.generator.reconstruct(images)),
        np.asarray(generator.reconstruct(images)),
        atol=1e-6,
    )
    for name in ("optimizer", "discriminator_optimizer"):
        saved = getattr(munit, name).variables
        np.testing.assert_allclose(getattr(restored, name).variables[-1], saved[-1])
        assert int(getattr(restored, name).iterations) == 2


def test_two_domains_are_the_official_trainer_each_generator_decoding_the_others_content():
    # MUNIT_Trainer.gen_update with x_a, x_b from two loaders over the same data:
    # x_ba = gen_a.decode(c_b, s_a), c_b_recon, s_a_recon = gen_a.encode(x_ba), ...
    munit = _tiny(domains=2)
    gen_a, gen_b, dis_a, dis_b = (
        munit.generator,
        munit.generator_b,
        munit.discriminator,
        munit.discriminator_b,
    )
    assert gen_a is not gen_b and dis_a is not dis_b
    assert not np.allclose(gen_a.weights[0], gen_b.weights[0])  # drawn apart, as torch's init
    x_a, x_b = _images(2), _images(4)[2:]
    s_a, s_b = (tf.constant(gen_a.random_styles(2, k)) for k in (1, 2))
    draws = iter([s_a, s_b])
    munit._styles = lambda images: next(draws)
    losses = munit.generator_losses(((x_a, np.zeros(2)), (x_b, np.zeros(2))), training=True)
    l1 = lambda a, b: float(np.mean(np.abs(np.asarray(a) - np.asarray(b))))  # noqa: E731
    critic = lambda d, x: np.asarray(d(np.asarray(x) * 2.0 - 1.0))  # noqa: E731
    (c_a, style_a), (c_b, style_b) = gen_a.encode(x_a, training=True), gen_b.encode(x_b, training=True)
    x_ba, x_ab = gen_a.decode(c_b, s_a, training=True), gen_b.decode(c_a, s_b, training=True)
    (c_b_recon, s_a_recon), (c_a_recon, s_b_recon) = gen_a.encode(x_ba, True), gen_b.encode(x_ab, True)
    x_a_recon, x_b_recon = gen_a.decode(c_a, style_a, True), gen_b.decode(c_b, style_b, True)
    official = {
        # MUNIT's [-1, 1] images: the L1 of [0, 1] images doubled, weight 10
        "image_recon": 10 * 2 * (l1(x_a_recon, x_a) + l1(x_b_recon, x_b)),
        "style_recon": l1(s_a_recon, s_a) + l1(s_b_recon, s_b),
        "content_recon": l1(c_b_recon, c_b) + l1(c_a_recon, c_a),
        "gen_adv": float(np.mean((critic(dis_a, x_ba) - 1) ** 2) + np.mean((critic(dis_b, x_ab) - 1) ** 2)),
    }
    for name, value in official.items():
        assert float(losses[name]) == pytest.approx(value, rel=1e-5), name
    munit.compile(optimizer=keras.optimizers.Adam(1e-4))
    generator_group, discriminator_group = munit.optimizer_groups()
    ids = lambda vs: {id(v) for v in vs}  # noqa: E731
    assert ids(generator_group.variables) == ids(gen_a.trainable_variables + gen_b.trainable_variables)
    assert ids(discriminator_group.variables) == ids(dis_a.trainable_variables + dis_b.trainable_variables)


def test_two_domains_train_on_pairs_of_batches_and_refuse_one_batch(tmp_path):
    munit = _tiny(domains=2)
    munit.compile(optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5, beta_2=0.999), run_eagerly=True)
    with pytest.raises(ValueError, match=r"pairs \(batch_a, batch_b\) from two loaders"):
        munit.fit(_images(), batch_size=4, epochs=1, verbose=0)
    loader = lambda seed: tf.data.Dataset.from_tensor_slices(_images(8)).shuffle(8, seed=seed).batch(4)  # noqa: E731
    before = [np.asarray(v) for v in munit.generator_b.trainable_variables]
    munit.fit(tf.data.Dataset.zip(loader(1), loader(2)), epochs=1, verbose=0)
    assert not np.allclose(before[0], munit.generator_b.trainable_variables[0])
    munit.save(tmp_path / "munit.keras")
    restored = keras.saving.load_model(tmp_path / "munit.keras")
    assert restored.domains == 2
    images = _images()
    for name in ("generator", "generator_b"):
        np.testing.assert_allclose(
            np.asarray(getattr(restored, name).reconstruct(images)),
            np.asarray(getattr(munit, name).reconstruct(images)),
            atol=1e-6,
        )
