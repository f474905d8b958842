import dataclasses

import keras
import numpy as np
import pytest

from kerazoo.incremental import (
    copy_cosine_head,
    grow_head,
    herding,
    labels_in_phase_order,
    nme_predict,
)
from kerazoo.layers import CosineLinear


@pytest.mark.parametrize("m", [0, -1, 2.5])
def test_herding_refuses_a_count_that_is_not_a_whole_number_above_zero(m):
    # -1 and 2.5 returned every index.
    with pytest.raises(ValueError, match="m must be a whole number >= 1"):
        herding(np.eye(4), m)


def test_herding_tracks_the_class_mean_better_than_random():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 16)) + rng.normal(size=16)
    chosen = herding(features, 6)
    assert len(set(chosen)) == 6
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)

    def error(idx):
        return np.linalg.norm(unit[idx].mean(0) - unit.mean(0))

    random_errors = [error(rng.choice(200, 6, replace=False)) for _ in range(200)]
    assert error(chosen) < np.percentile(random_errors, 5)
    # A prefix of the ranking is the herding choice for a smaller memory.
    np.testing.assert_array_equal(herding(features, 3), chosen[:3])


def test_nme_is_nearest_normalised_mean():
    means = np.array([[1.0, 0.0], [0.0, 5.0]])
    assert nme_predict(np.array([[3.0, 1.0], [0.1, 0.2]]), means).tolist() == [0, 1]


def test_grow_dense_head_keeps_old_columns():
    head = keras.layers.Dense(3)
    head.build((None, 4))
    grown = grow_head(head, 2)
    kernel, bias = head.get_weights()
    new_kernel, new_bias = grown.get_weights()
    assert new_kernel.shape == (4, 5)
    np.testing.assert_array_equal(new_kernel[:, :3], kernel)
    np.testing.assert_array_equal(new_bias[:3], bias)


@pytest.mark.parametrize("freeze_old", [True, False])
def test_a_cosine_head_copy_computes_the_same_logits_whatever_is_frozen(freeze_old):
    # Old and new blocks of equal shape: a copy by position would swap them unnoticed.
    head = CosineLinear(2, freeze_old=not freeze_old)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    head(x)
    head.add_classes(2)
    head.sigma.assign(2.5)
    copy = copy_cosine_head(head, freeze_old)
    assert copy.freeze_old == freeze_old
    assert len(copy.trainable_weights) == (2 if freeze_old else 3)
    np.testing.assert_allclose(copy(x), head(x), atol=1e-6)
    grown = grow_head(head, 1, freeze_old=freeze_old)
    np.testing.assert_allclose(np.asarray(grown(x))[:, :4], head(x), atol=1e-6)


def test_labels_follow_the_class_order():
    order = np.array([3, 0, 2, 1])
    assert labels_in_phase_order([3, 0, 2, 1, 3], order).tolist() == [0, 1, 2, 3, 0]
    with pytest.raises(ValueError, match="order must be a permutation"):
        labels_in_phase_order([0, 1], [0, 0, 1])
    with pytest.raises(ValueError, match=r"labels must lie in 0 \.\. 3"):
        labels_in_phase_order([4], order)


@pytest.mark.parametrize(
    "labels, phase_sizes, message",
    [
        (np.repeat(np.arange(1, 5), 2), [2, 1, 1], r"train labels \[4\] lie outside the 4 classes"),
        (np.repeat(np.arange(4), 2), [2, 1], r"train labels \[3\] lie outside the 3 classes"),
        (
            np.repeat(np.arange(4), 2),
            [2, 2, 2],
            r"classes \[4, 5\] of phase_sizes \[2, 2, 2\] have no training",
        ),
        (np.repeat(np.arange(4), 2).astype(float), [2, 2], r"must be integer class ids"),
        (np.repeat(np.arange(4), 2), [2, 0, 2], r"phase_sizes must be whole numbers of classes \(>= 1\)"),
    ],
    ids=["labels 1..4", "a class left out", "a phase without images", "float labels", "an empty phase"],
)
def test_labels_that_do_not_fit_the_phases_are_refused(labels, phase_sizes, message):
    # Before: 0 % in every phase, a class silently dropped, or an error deep inside.
    from kerazoo.incremental import METHODS, ClassIncremental, Settings

    x = np.zeros((len(labels), 8, 8, 1), "float32")
    with pytest.raises(ValueError, match=message):
        ClassIncremental(
            METHODS["lucir"],
            (x, labels, x, labels),
            phase_sizes,
            Settings(),
            seed=0,
            build_backbone=None,
            make_optimizer=None,
            fit=None,
            strategy=None,
            epoch_counter=None,
        )


def test_balanced_finetuning_trains_the_head_alone_on_an_equal_share_per_class_and_freezes_sigma_for_itself():
    import tensorflow as tf

    from kerazoo import backbones
    from kerazoo.data import EpochCounter
    from kerazoo.incremental import METHODS, ClassIncremental, Settings

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(160, 8, 8, 1)).astype("float32")
    y = np.repeat(np.arange(4), 40).astype("int32")
    seen_by_stage, decay_by_stage = {}, {}

    def fit(model, dataset, stage, epochs):
        seen_by_stage[stage] = np.concatenate([labels for _, labels in dataset.as_numpy_iterator()])
        # Each stage's optimizer carries the code's coupled weight decay.
        decay_by_stage[stage] = getattr(model.optimizer, "weight_decay", None)
        before = [np.array(w) for w in model.backbone.weights]
        head_before = np.array(model.head.kernel)
        sigma_before = float(model.head.sigma)
        model.fit(dataset, epochs=epochs, verbose=0, shuffle=False)
        if stage.endswith("cbf"):
            for a, w in zip(before, model.backbone.weights):  # BN statistics included
                np.testing.assert_array_equal(a, np.array(w))
            assert np.abs(np.array(model.head.kernel) - head_before)[:, :2].max() > 0  # old classes too
            assert float(model.head.sigma) == sigma_before  # σ frozen (the code's ft_flag 2)
        else:  # ... in the finetuning only: the next phase trains it again
            assert float(model.head.sigma) != sigma_before

    counter = EpochCounter()
    learner = ClassIncremental(
        METHODS["lucir+cbf"],
        (x, y, x, y),
        [2, 1, 1],
        Settings(
            exemplars_per_class=5,
            epochs=1,
            batch_size=8,
            cbf_epochs=2,
            cbf_learning_rate=0.5,
            weight_decay=5e-4,
            cbf_weight_decay=1e-4,
        ),
        seed=0,
        build_backbone=lambda: backbones.get("convnet", input_shape=(8, 8, 1), last_relu=False),
        make_optimizer=lambda steps: keras.optimizers.SGD(0.05, momentum=0.9),
        fit=fit,
        strategy=tf.distribute.get_strategy(),
        epoch_counter=counter,
    )
    learner.run("t")
    assert set(seen_by_stage) == {"t-phase0", "t-phase1", "t-phase1-cbf", "t-phase2", "t-phase2-cbf"}
    # A main phase: the new class's 40 images and at most the 5 exemplars of each old class.
    for phase, new in ((1, 2), (2, 3)):
        counts = np.bincount(seen_by_stage[f"t-phase{phase}"], minlength=4)
        assert counts[:new].max() <= 5 and counts[new] >= 32 and counts[new + 1 :].sum() == 0
    assert np.bincount(seen_by_stage["t-phase1-cbf"]).tolist() == [5, 5, 5]
    assert np.bincount(seen_by_stage["t-phase2-cbf"]).tolist() == [5, 5, 5, 5]
    assert decay_by_stage == {
        "t-phase0": 5e-4,
        "t-phase1": 5e-4,
        "t-phase1-cbf": 1e-4,
        "t-phase2": 5e-4,
        "t-phase2-cbf": 1e-4,
    }
    assert learner.model.backbone.trainable
    assert not learner.model.head.freeze_old

    # NME: the nearest (by cosine) mean of each class's normalised exemplar
    # features, written out in NumPy; with flip_means, the means of the
    # width-flipped exemplars averaged in.
    def numpy_nme(flip):
        def normalized(images):
            f = np.asarray(learner.model.backbone(images, training=False), np.float64)
            return f / np.linalg.norm(f, axis=1, keepdims=True)

        means = []
        for c in range(4):
            exemplars = x[learner.memory[c]]
            mean = normalized(exemplars).mean(axis=0)
            if flip:
                mean = (mean + normalized(exemplars[:, :, ::-1]).mean(axis=0)) / 2
            means.append(mean / np.linalg.norm(mean))
        predictions = np.argmax(normalized(x) @ np.stack(means).T, axis=1)
        return np.mean(predictions == y)

    assert learner._evaluate(2).nme_accuracy == pytest.approx(numpy_nme(flip=False), abs=1e-9)
    learner.settings = dataclasses.replace(learner.settings, flip_means=True)
    assert learner._evaluate(2).nme_accuracy == pytest.approx(numpy_nme(flip=True), abs=1e-9)
    assert numpy_nme(flip=True) != numpy_nme(flip=False)  # (on these images), so the flip is tested


def test_balanced_finetuning_on_two_replicas_splits_its_last_batch_evenly():
    # 9 exemplars in batches of 8: the last batch of 1 left one replica
    # nothing, and the frozen convnet failed in FusedBatchNorm on it.
    from helpers.replicas import two_cpu_strategy
    from kerazoo import backbones
    from kerazoo.data import EpochCounter
    from kerazoo.incremental import METHODS, ClassIncremental, Settings

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(48, 8, 8, 1)).astype("float32")
    y = np.repeat(np.arange(3), 16).astype("int32")
    batch_sizes = {}

    def fit(model, dataset, stage, epochs):
        batch_sizes[stage] = [len(labels) for _, labels in dataset.as_numpy_iterator()]
        history = model.fit(dataset, epochs=epochs, verbose=0)
        assert np.isfinite(history.history["loss"]).all(), history.history

    strategy = two_cpu_strategy()
    ClassIncremental(
        METHODS["lucir+cbf"],
        (x, y, x, y),
        [2, 1],
        Settings(exemplars_per_class=3, epochs=1, batch_size=8, cbf_epochs=2),
        seed=0,
        build_backbone=lambda: backbones.get("convnet", input_shape=(8, 8, 1), width=8, last_relu=False),
        make_optimizer=lambda steps: keras.optimizers.SGD(0.05, momentum=0.9),
        fit=fit,
        strategy=strategy,
        epoch_counter=EpochCounter(),
    ).run("t")
    assert batch_sizes["t-phase1-cbf"] == [8]  # 9 exemplars, one left for the next epoch
