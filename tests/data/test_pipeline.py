import functools

import numpy as np
import pytest
import tensorflow as tf

from kerazoo.data import (
    EpochCounter,
    augment,
    paired_dataset,
    train_dataset,
    unlabelled_dataset,
)
from kerazoo.data.pipeline import all_epochs, concatenate_epochs

N = 40
# Image i is filled with i, so every batch shows which examples it holds.
IMAGES = np.broadcast_to(np.arange(N, dtype=np.float32)[:, None, None, None], (N, 4, 4, 1)).copy()
LABELS = (np.arange(N) % 4).astype(np.int32)
UNLABELLED = 100 + IMAGES[:13]


def _epoch(ds):
    """All batches of one epoch as a list of flat numpy arrays."""
    return [np.concatenate([t.numpy().ravel() for t in tf.nest.flatten(b)]) for b in ds]


def _ids(images):
    return images[:, 0, 0, 0].numpy().astype(int)


STREAMS = {
    "instance": lambda c: train_dataset(IMAGES, LABELS, 8, seed=7, epoch_counter=c),
    "class_balanced": lambda c: train_dataset(
        IMAGES, LABELS, 8, seed=7, epoch_counter=c, sampler="class_balanced"
    ),
    "drs": lambda c: train_dataset(IMAGES, LABELS, 8, seed=7, epoch_counter=c, sampler="drs", drs_epoch=2),
    "crop_flip": lambda c: train_dataset(IMAGES, LABELS, 8, seed=7, epoch_counter=c, augment=True),
    "two_views": lambda c: train_dataset(
        IMAGES, LABELS, 8, seed=7, epoch_counter=c, augment="views", views=2
    ),
    "unlabelled": lambda c: unlabelled_dataset(IMAGES, 8, seed=7, epoch_counter=c),
    "paired": lambda c: paired_dataset(
        IMAGES,
        LABELS,
        UNLABELLED,
        8,
        seed=7,
        epoch_counter=c,
        unlabelled_batch_size=5,
        augment="views",
    ),
}


@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_every_stream_is_a_function_of_seed_and_epoch_only(stream):
    counter = EpochCounter()
    ds = STREAMS[stream](counter)
    counter.on_epoch_begin(3)
    third = _epoch(ds)
    counter.on_epoch_begin(0)
    first = _epoch(ds)
    counter.on_epoch_begin(3)
    np.testing.assert_array_equal(_epoch(ds), third)
    # A dataset built afresh with its own counter (as after a resume) replays it.
    fresh_counter = EpochCounter()
    fresh_counter.on_epoch_begin(3)
    np.testing.assert_array_equal(_epoch(STREAMS[stream](fresh_counter)), third)
    assert len(first) == len(third) == N // 8
    assert not np.array_equal(first, third)


def test_instance_order_is_unchanged_from_the_first_pipeline():
    # Shipped models were trained on this order; `rebuild` must reproduce them.
    counter = EpochCounter()
    ds = train_dataset(IMAGES, np.arange(N), 8, seed=7, epoch_counter=counter)
    for epoch in (0, 5):
        counter.on_epoch_begin(epoch)
        order = tf.argsort(tf.random.stateless_uniform([N], seed=tf.constant([7, epoch], tf.int64)))
        np.testing.assert_array_equal(np.concatenate([y for _, y in ds]), order)


def test_labels_travel_with_their_images_and_an_epoch_is_a_permutation():
    counter = EpochCounter()
    ds = train_dataset(IMAGES, LABELS, 8, seed=1, epoch_counter=counter, drop_remainder=False)
    ids, labels = zip(*[(_ids(x), y.numpy()) for x, y in ds])
    ids, labels = np.concatenate(ids), np.concatenate(labels)
    assert sorted(ids) == list(range(N))
    np.testing.assert_array_equal(labels, LABELS[ids])


def test_the_last_partial_batch_is_cut_to_a_multiple_of_the_replicas_and_no_example_is_skipped():
    # N = 40 in batches of 12: 3 full batches and 4 left; on 3 replicas 3 of
    # them (one each), the fourth opens the next epoch.
    counter = EpochCounter()
    ds = train_dataset(
        IMAGES, LABELS, 12, seed=1, epoch_counter=counter, drop_remainder=False, num_replicas=3
    )
    assert int(ds.cardinality()) == 4
    ids = []
    for epoch in range(40):
        counter.on_epoch_begin(epoch)
        batches = [_ids(x) for x, _ in ds]
        assert [len(b) for b in batches] == [12, 12, 12, 3]
        ids += list(np.concatenate(batches))
    assert np.bincount(ids).tolist() == [39] * N  # 40 epochs of 39 are 39 passes of 40
    one = train_dataset(IMAGES, LABELS, 12, seed=1, epoch_counter=counter, drop_remainder=False)
    assert [len(x) for x, _ in one] == [12, 12, 12, 4]
    with pytest.raises(ValueError, match="cannot give each of 3 replicas one"):
        train_dataset(
            IMAGES[:2], LABELS[:2], 4, seed=1, epoch_counter=counter, drop_remainder=False, num_replicas=3
        )


@pytest.mark.parametrize("count", [N - 1, N + 1])
def test_one_label_per_image_is_required(count):
    labels = np.resize(LABELS, count)
    with pytest.raises(ValueError, match=f"{count} labels for {N} images; give one label per image"):
        train_dataset(IMAGES, labels, 8, seed=1, epoch_counter=EpochCounter())


@pytest.mark.parametrize(
    "change, message",
    [
        (
            dict(images=(IMAGES * 255).astype(np.uint8)),
            r"images are uint8; the pipelines take float images in \[0, 1\]",
        ),
        (dict(batch_size=0), r"batch_size must be a whole number >= 1, got 0"),
        (dict(batch_size=2.5), r"batch_size must be a whole number >= 1, got 2.5"),
        (dict(seed=None), r"seed must be a whole number >= 0, got None"),
        (dict(seed=-1), r"seed must be a whole number >= 0, got -1"),
    ],
    ids=["uint8 pixels", "batch 0", "batch 2.5", "seed None", "seed -1"],
)
def test_bad_arguments_are_named_before_tensorflow_sees_them(change, message):
    arguments = dict(images=IMAGES, labels=LABELS, batch_size=8, seed=1)
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        train_dataset(**arguments, epoch_counter=EpochCounter(), augment=True)


def test_two_views_are_of_the_same_image_augmented_independently():
    counter = EpochCounter()
    # Image i is constant at 0.25 + i/32; faint noise keeps it recognisable.
    images = 0.25 + IMAGES[:16] / 32
    noise = augment.chain(functools.partial(augment.gaussian_noise, stddev=0.01))
    (one, two), labels = next(
        iter(train_dataset(images, np.arange(16), 16, seed=0, epoch_counter=counter, augment=noise, views=2))
    )
    assert one.shape == two.shape == (16, 4, 4, 1) and labels.shape == (16,)
    for view in (one, two):
        source = np.round((tf.reduce_mean(view, axis=(1, 2, 3)).numpy() - 0.25) * 32)
        np.testing.assert_array_equal(source, labels)
    assert all(not np.array_equal(a, b) for a, b in zip(one.numpy(), two.numpy()))
    (u1, u2) = next(
        iter(unlabelled_dataset(images, 4, seed=0, epoch_counter=counter, augment="views", views=2))
    )
    assert u1.shape == u2.shape == (4, 4, 4, 1)
    assert all(not np.array_equal(a, b) for a, b in zip(u1.numpy(), u2.numpy()))


def test_paired_batches_have_both_sizes_and_the_labelled_epoch_length():
    counter = EpochCounter()
    ds = paired_dataset(IMAGES, LABELS, UNLABELLED, 8, seed=0, epoch_counter=counter, unlabelled_batch_size=5)
    batches = list(ds)
    assert len(batches) == ds.cardinality() == N // 8
    for (x, y), u in batches:
        assert x.shape == (8, 4, 4, 1) and y.shape == (8,) and u.shape == (5, 4, 4, 1)
    assert sorted(np.concatenate([_ids(x) for (x, _), _ in batches])) == list(range(N))


def test_paired_epoch_length_can_follow_the_unlabelled_array():
    counter = EpochCounter()
    ds = paired_dataset(
        IMAGES,
        LABELS,
        UNLABELLED,
        8,
        seed=0,
        epoch_counter=counter,
        unlabelled_batch_size=4,
        epoch_length="unlabelled",
    )
    batches = list(ds)
    assert len(batches) == ds.cardinality() == 13 // 4
    seen = np.concatenate([_ids(u) for _, u in batches])
    assert len(set(seen)) == 12 and set(seen) <= set(range(100, 113))


def _unlabelled_ids(ds, counter, epochs):
    out = []
    for epoch in epochs:
        counter.on_epoch_begin(epoch)
        out += [_ids(u) for _, u in ds]
    return np.concatenate(out)


def test_a_shorter_cycled_stream_runs_fresh_passes_across_epochs():
    counter = EpochCounter()
    ds = paired_dataset(IMAGES, LABELS, UNLABELLED, 8, seed=0, epoch_counter=counter, unlabelled_batch_size=5)
    stream = _unlabelled_ids(ds, counter, range(3)) - 100  # 3 epochs x 25 images
    passes = stream[: 13 * (len(stream) // 13)].reshape(-1, 13)
    for p in passes:  # each pass shows every image once, across epoch boundaries
        assert sorted(p) == list(range(13))
    assert len({tuple(p) for p in passes}) == len(passes)  # never the same order
    # Epoch 1 alone, from a fresh dataset, is the continuation.
    counter.on_epoch_begin(1)
    fresh = paired_dataset(
        IMAGES, LABELS, UNLABELLED, 8, seed=0, epoch_counter=counter, unlabelled_batch_size=5
    )
    np.testing.assert_array_equal(np.concatenate([_ids(u) for _, u in fresh]) - 100, stream[25:50])


def test_a_longer_cycled_stream_continues_instead_of_repeating_its_start():
    counter = EpochCounter()
    many = np.broadcast_to(np.arange(100, dtype=np.float32)[:, None, None, None], (100, 4, 4, 1))
    ds = paired_dataset(IMAGES, LABELS, many, 8, seed=0, epoch_counter=counter)
    stream = _unlabelled_ids(ds, counter, range(2))  # 2 x 40 of 100 images
    assert len(set(stream)) == len(stream) == 80


def test_bad_stream_arguments_name_the_fix():
    counter = EpochCounter()
    with pytest.raises(ValueError, match="augment='views'"):
        unlabelled_dataset(IMAGES, 8, seed=0, epoch_counter=counter, views=2)
    with pytest.raises(ValueError, match="'labelled' or 'unlabelled'"):
        paired_dataset(IMAGES, LABELS, UNLABELLED, 8, 0, counter, epoch_length="target")
    with pytest.raises(ValueError, match="lower batch_size"):
        train_dataset(IMAGES, LABELS, 64, seed=0, epoch_counter=counter)
    with pytest.raises(ValueError, match="crop_flip"):
        train_dataset(IMAGES, LABELS, 8, seed=0, epoch_counter=counter, augment="cutout")


@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_all_epochs_reads_the_epochs_in_turn_from_one_iterator(stream):
    counter = EpochCounter()
    ds = STREAMS[stream](counter)
    expected = []
    for epoch in (2, 3):
        counter.on_epoch_begin(epoch)
        expected += _epoch(ds)
    counter.on_epoch_begin(2)  # the epoch the stream starts from
    endless = iter(all_epochs(ds))
    got = [np.concatenate([t.numpy().ravel() for t in tf.nest.flatten(next(endless))]) for _ in expected]
    np.testing.assert_array_equal(got, expected)


def test_concatenated_epochs_read_as_the_passes_concatenated():
    counter = EpochCounter()
    passes = [train_dataset(IMAGES, LABELS, 8, seed=s, epoch_counter=counter, augment=True) for s in (3, 4)]
    epoch = concatenate_epochs(passes)
    assert int(epoch.cardinality()) == 2 * (N // 8)
    counter.on_epoch_begin(1)
    expected = _epoch(passes[0].concatenate(passes[1]))
    one_epoch = _epoch(epoch)
    np.testing.assert_array_equal(one_epoch, expected)
    counter.on_epoch_begin(2)
    next_epoch = _epoch(passes[0].concatenate(passes[1]))
    counter.on_epoch_begin(1)
    endless = iter(all_epochs(epoch))
    got = [np.concatenate([t.numpy().ravel() for t in tf.nest.flatten(next(endless))]) for _ in range(20)]
    np.testing.assert_array_equal(got, one_epoch + next_epoch)
    with pytest.raises(ValueError, match="use Dataset.concatenate"):
        concatenate_epochs([passes[0], tf.data.Dataset.range(3)])
    with pytest.raises(ValueError, match="same EpochCounter"):
        concatenate_epochs(
            [passes[0], train_dataset(IMAGES, LABELS, 8, seed=5, epoch_counter=EpochCounter())]
        )
