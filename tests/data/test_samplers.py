import numpy as np
import pytest

from kerazoo.data import EpochCounter, paired_dataset, train_dataset
from kerazoo.data.samplers import make_sampler

# A long tail: 200, 50, 20, 10 and 5 examples.
SIZES = [200, 50, 20, 10, 5]
LABELS = np.repeat(np.arange(5), SIZES).astype(np.int32)
IMAGES = np.zeros((len(LABELS), 2, 2, 1), np.float32)


def _labels_per_epoch(ds, counter, epochs):
    out = []
    for epoch in epochs:
        counter.on_epoch_begin(epoch)
        out.append(np.concatenate([y.numpy() for _, y in ds]))
    return out


def _assert_near_uniform(labels):
    counts = np.bincount(labels, minlength=len(SIZES))
    expected = len(labels) / len(SIZES)
    # 10 epochs of 285 draws: 570 expected per class, binomial std ~21.
    np.testing.assert_allclose(counts, expected, rtol=0.15)


def test_class_balanced_draws_every_class_equally_often_for_an_epoch_of_n():
    counter = EpochCounter()
    ds = train_dataset(IMAGES, LABELS, 15, seed=0, epoch_counter=counter, sampler="class_balanced")
    epochs = _labels_per_epoch(ds, counter, range(10))
    assert all(len(e) == len(LABELS) for e in epochs)
    _assert_near_uniform(np.concatenate(epochs))
    # Draws are with replacement and change from epoch to epoch.
    assert not np.array_equal(epochs[0], epochs[1])


def test_drs_is_instance_balanced_before_its_epoch_and_class_balanced_from_it():
    counter = EpochCounter()
    ds = train_dataset(IMAGES, LABELS, 15, seed=0, epoch_counter=counter, sampler="drs", drs_epoch=3)
    before = _labels_per_epoch(ds, counter, range(3))
    for labels in before:  # every example exactly once
        assert np.bincount(labels).tolist() == SIZES
    _assert_near_uniform(np.concatenate(_labels_per_epoch(ds, counter, range(3, 13))))


def test_drs_on_the_labelled_side_of_a_paired_stream():
    counter = EpochCounter()
    ds = paired_dataset(
        IMAGES, LABELS, IMAGES[:40], 15, seed=0, epoch_counter=counter, sampler="drs", drs_epoch=1
    )
    counter.on_epoch_begin(0)
    assert np.bincount(np.concatenate([y for (_, y), _ in ds])).tolist() == SIZES
    drawn = []
    for epoch in range(1, 11):
        counter.on_epoch_begin(epoch)
        drawn += [y.numpy() for (_, y), _ in ds]
    _assert_near_uniform(np.concatenate(drawn))


def test_bad_sampler_arguments_name_the_fix():
    with pytest.raises(ValueError, match="instance, class_balanced, drs"):
        make_sampler("balanced", 10, LABELS[:10])
    with pytest.raises(ValueError, match="needs drs_epoch"):
        make_sampler("drs", 10, LABELS[:10])
    with pytest.raises(ValueError, match="drs_epoch"):
        make_sampler("instance", 10, drs_epoch=3)
    with pytest.raises(ValueError, match="only use sampler='instance'"):
        make_sampler("class_balanced", 10)
