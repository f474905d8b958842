import functools

import numpy as np
import pytest
import tensorflow as tf

from kerazoo.data import EpochCounter, augment, train_dataset

KEY = tf.constant([3, 4], tf.int64)
OTHER_KEY = tf.constant([3, 5], tf.int64)


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    out = np.zeros((12, 12, 1), np.float32)
    out[3:9, 4:8] = rng.uniform(0.3, 0.9, (6, 4, 1))
    return tf.constant(out)


OPS = {
    "shift": functools.partial(augment.random_shift, pad=2),
    "flip": augment.random_flip,
    "rotation": functools.partial(augment.random_rotation, max_degrees=15.0),
    "intensity": functools.partial(augment.random_intensity, low=0.7, high=1.3),
    "noise": functools.partial(augment.gaussian_noise, stddev=0.05),
    "crop_flip": augment.POLICIES["crop_flip"],
    "views": augment.POLICIES["views"],
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_same_key_same_output_other_keys_differ(image, name):
    op = OPS[name]
    out = op(image, KEY)
    assert out.shape == image.shape and out.dtype == tf.float32
    np.testing.assert_array_equal(op(image, KEY), out)
    outputs = {op(image, tf.constant([3, k], tf.int64)).numpy().tobytes() for k in range(8)}
    assert len(outputs) > 1


def test_shift_is_a_translation_within_the_padding(image):
    padded = np.pad(image.numpy(), ((2, 2), (2, 2), (0, 0)))
    offsets = set()
    for k in range(20):
        out = augment.random_shift(image, tf.constant([0, k], tf.int64), pad=2).numpy()
        matches = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if np.array_equal(out, padded[dy : dy + 12, dx : dx + 12])
        ]
        assert matches, "not a translation by at most 2 pixels"
        offsets.update(matches)
    assert len(offsets) > 5


def test_rotate_is_a_rotation_about_the_centre(image):
    np.testing.assert_allclose(augment.rotate(image, 0.0), image, atol=1e-6)
    np.testing.assert_allclose(augment.rotate(image, 90.0), np.rot90(image.numpy()), atol=1e-5)
    np.testing.assert_allclose(augment.random_rotation(image, KEY, max_degrees=0.0), image, atol=1e-6)


def test_random_rotation_stays_within_its_range(image):
    # A rotation by at most 15 degrees keeps the image closer to itself than
    # one by 40 degrees does.
    far = float(tf.reduce_sum((augment.rotate(image, 40.0) - image) ** 2))
    for k in range(10):
        out = augment.random_rotation(image, tf.constant([1, k], tf.int64), max_degrees=15.0)
        assert float(tf.reduce_sum((out - image) ** 2)) < far


def test_intensity_scales_every_pixel_by_one_factor_in_range(image):
    stroke = image.numpy() > 0
    for k in range(10):
        out = augment.random_intensity(image, tf.constant([2, k], tf.int64), 0.7, 1.3).numpy()
        ratios = out[stroke] / image.numpy()[stroke]
        assert np.ptp(ratios) < 1e-5 and 0.7 <= ratios[0] < 1.3


def test_noise_has_the_requested_standard_deviation(image):
    big = tf.zeros((64, 64, 1))
    noise = augment.gaussian_noise(big, KEY, stddev=0.05).numpy()
    assert abs(noise.std() - 0.05) < 0.003 and abs(noise.mean()) < 0.003


def test_policies_clip_to_the_unit_interval(image):
    bright = tf.ones_like(image)
    outs = np.stack([augment.POLICIES["views"](bright, tf.constant([0, k], tf.int64)) for k in range(10)])
    assert outs.min() == 0.0 and outs.max() == 1.0  # noise and intensity > 1 were clipped


def test_policy_names_true_and_functions():
    assert augment.policy(True) is augment.POLICIES["crop_flip"]
    assert augment.policy(False) is None and augment.policy(None) is None
    assert augment.policy("views") is augment.POLICIES["views"]
    assert augment.policy(augment.random_flip) is augment.random_flip
    with pytest.raises(ValueError, match="crop_flip.*views"):
        augment.policy("cutout")


def _flat_epoch(ds):
    return np.concatenate([x.numpy() for x, _ in ds])


def test_pipeline_keys_augmentation_by_seed_epoch_and_position_not_batch():
    # Identical images: whatever the order, the output at position j depends
    # only on (seed, epoch, j), so batch size and rebuilding change nothing.
    images = np.full((24, 8, 8, 1), 0.5, np.float32)
    labels = np.zeros(24, np.int32)
    counter = EpochCounter()

    def epoch(batch_size, seed, number):
        counter.on_epoch_begin(number)
        ds = train_dataset(images, labels, batch_size, seed=seed, epoch_counter=counter, augment="views")
        return _flat_epoch(ds)

    reference = epoch(4, seed=0, number=2)
    np.testing.assert_array_equal(epoch(8, seed=0, number=2), reference)
    np.testing.assert_array_equal(epoch(4, seed=0, number=2), reference)
    assert not np.array_equal(epoch(4, seed=0, number=3), reference)
    assert not np.array_equal(epoch(4, seed=1, number=2), reference)
    # Every position gets its own draw.
    assert len({x.tobytes() for x in reference}) == len(reference)


def test_oracle_nuisances_match_the_dataset_transforms_draws():
    from kerazoo.data.augment import POLICIES

    image = np.zeros((9, 9, 1), np.float32)
    image[4, 4] = 0.7  # one pixel: a k x k dilation makes k² of them, an erosion k=2 none
    areas = [int((np.asarray(POLICIES["dil"](image, tf.constant([1, i]))) > 0).sum()) for i in range(300)]
    assert set(areas) == {0, 1, 4, 9, 16}
    assert 0.5 < np.mean([a > 1 for a in areas]) < 0.7  # dilation with probability 0.6
    levels = set()
    for i in range(50):
        out = np.asarray(POLICIES["bg"](image, tf.constant([2, i])))
        assert out[4, 4, 0] == np.float32(0.7)  # only exact zeros change
        levels.add(round(float(out[0, 0, 0]) * 255))
        assert np.all(out[image == 0] == out[0, 0, 0])
    assert min(levels) >= 0 and max(levels) <= 99 and len(levels) > 20
