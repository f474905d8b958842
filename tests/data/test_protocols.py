import dataclasses
import re

import numpy as np
import pytest
import tensorflow_datasets as tfds

from kerazoo.data import (
    load_arrays,
    make_domain_shift,
    make_few_labels,
    make_protocol,
)


def test_digits_rot_lt_is_long_tailed_transformed_and_seeded():
    p = make_protocol("digits-rot-lt", seed=0, image_size=16)
    clean = make_protocol("digits", seed=0, image_size=16)
    counts = p.class_counts()
    assert p.image_shape == (16, 16, 1)
    assert counts.max() >= 100 and counts.min() == 5 and (counts < 20).sum() >= 6
    # Test stays balanced (and transformed).
    np.testing.assert_array_equal(p.class_counts("test"), clean.class_counts("test"))
    assert not np.allclose(p.test_images, clean.test_images)
    again = make_protocol("digits-rot-lt", seed=0, image_size=16)
    np.testing.assert_array_equal(again.train_images, p.train_images)
    other = make_protocol("digits-rot-lt", seed=1, image_size=16)
    assert not np.array_equal(other.class_counts(), counts)


def test_digits_lt100_is_exponential_in_class_order_with_a_balanced_test():
    p = make_protocol("digits-lt100", seed=0)
    clean = make_protocol("digits", seed=0)
    counts = p.class_counts()
    assert counts[0] == clean.class_counts().min() and counts[-1] == max(counts[0] // 100, 1)
    assert (np.diff(counts) <= 0).all()
    np.testing.assert_array_equal(p.class_counts("test"), clean.class_counts("test"))
    # The note states the ratio the sizes have, not only rho (139 / 1 here).
    assert f"largest / smallest here {counts[0]} / {counts[-1]})" in " ".join(p.notes)


def test_protocol_indices_say_which_training_examples_it_holds():
    base_x, base_y, _ = load_arrays("digits", "train")
    p = make_protocol("digits-lt", seed=2)
    np.testing.assert_array_equal(p.train_images, base_x[p.train_indices])
    np.testing.assert_array_equal(p.train_labels, base_y[p.train_indices])
    assert p.unlabelled_images is None


def test_domain_shift_source_and_target_partition_the_training_split():
    source, target = make_domain_shift("digits", "bg", seed=0)
    base_x, base_y, _ = load_arrays("digits", "train")
    src, tgt = source.train_indices, target.unlabelled_indices
    # Disjoint and covering, on indices.
    assert not set(src) & set(tgt)
    np.testing.assert_array_equal(np.sort(np.concatenate([src, tgt])), np.arange(len(base_y)))
    assert abs(len(src) - len(tgt)) <= 1
    # The indices are the images' own: the source is unchanged, the target's
    # strokes are those of its base images (the shift only fills background).
    np.testing.assert_array_equal(source.train_images, base_x[src])
    np.testing.assert_array_equal(source.train_labels, base_y[src])
    stroke = base_x[tgt] > 0
    np.testing.assert_array_equal(target.unlabelled_images[stroke], base_x[tgt][stroke])
    assert (target.unlabelled_images[~stroke] > 0).mean() > 0.9
    np.testing.assert_array_equal(target.evaluation_labels(), base_y[tgt])
    clean = make_protocol("digits")
    np.testing.assert_array_equal(source.test_images, clean.test_images)
    assert (target.test_images > 0).mean() > (clean.test_images > 0).mean()
    np.testing.assert_array_equal(target.test_labels, clean.test_labels)
    # Another seed draws other halves.
    assert not np.array_equal(make_domain_shift("digits", "bg", seed=1)[0].train_indices, src)


def test_unlabelled_protocols_expose_no_training_labels():
    _, target = make_domain_shift("digits", "rot", seed=0, max_degrees=45)
    assert target.train_labels is None and target.train_images is None
    with pytest.raises(ValueError, match="evaluation_labels"):
        target.class_counts()
    # Labels of the unlabelled images appear in no public field.
    hidden = target.evaluation_labels()
    public = [getattr(target, f.name) for f in dataclasses.fields(target) if not f.name.startswith("_")]
    assert not any(isinstance(v, np.ndarray) and np.array_equal(v, hidden) for v in public)
    assert "_unlabelled_labels" not in repr(target)
    with pytest.raises(ValueError, match="no unlabelled images"):
        make_protocol("digits").evaluation_labels()


def test_few_labels_keeps_per_class_labels_and_hides_the_rest():
    p = make_few_labels("digits", per_class=3, seed=0, image_size=16)
    base_x, base_y, _ = load_arrays("digits", "train")
    assert p.class_counts().tolist() == [3] * 10
    assert p.image_shape == (16, 16, 1) and p.unlabelled_images.shape[1:] == (16, 16, 1)
    assert len(p.unlabelled_images) == 1437 - 30
    assert not set(p.train_indices) & set(p.unlabelled_indices)
    assert len(p.train_indices) + len(p.unlabelled_indices) == len(base_y)
    np.testing.assert_array_equal(p.train_labels, base_y[p.train_indices])
    np.testing.assert_array_equal(p.evaluation_labels(), base_y[p.unlabelled_indices])


def test_long_tail_on_a_real_dataset_pipeline(tmp_path):
    with tfds.testing.mock_data(num_examples=400):
        p = make_protocol("cifar10-lt", data_dir=str(tmp_path), lt_min=2)
    assert p.num_classes == 10 and p.image_shape == (32, 32, 3)
    assert p.class_counts().sum() < 400


# Protocols on the user's own data: the same modifiers as on digits.
from helpers.image_folders import write_image_folders  # noqa: E402


@pytest.fixture
def own_folders(tmp_path):
    """root/<class>/<image>: 6 classes of 20 grey 8x8 images (16 train, 4 test each)."""
    return str(
        write_image_folders(
            tmp_path / "own", domains=(), classes=tuple("abcdef"), per_class=20, size=8, channels=1
        )
    )


def test_own_image_folders_take_the_long_tail_and_nuisances(own_folders):
    clean = make_protocol("imagefolder", data_dir=own_folders)
    np.testing.assert_array_equal(clean.class_counts(), [16] * 6)
    p = make_protocol("imagefolder-rot-lt", data_dir=own_folders, seed=0, lt_min=2)
    counts = p.class_counts()
    assert counts.max() == 16 and counts.min() == 2 and sorted(counts) != [16] * 6
    np.testing.assert_array_equal(p.class_counts("test"), [4] * 6)  # the test split stays balanced
    assert not np.allclose(p.test_images, clean.test_images)  # and gets the nuisance
    assert p.class_names == list("abcdef") and p.notes[0].startswith("imagefolder: 96 train / 24 test")


def test_own_arrays_take_few_labels_and_a_domain_shift(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 10)
    path = tmp_path / "mine.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (30, 6, 6, 3), dtype=np.uint8),
        y_train=labels,
        x_test=rng.integers(0, 256, (6, 6, 6, 3), dtype=np.uint8),
        y_test=np.repeat(np.arange(3), 2),
    )
    few = make_few_labels("arrays", per_class=2, data_dir=str(path), image_size=4)
    assert few.train_images.shape == (6, 4, 4, 3) and len(few.unlabelled_images) == 24
    source, target = make_domain_shift("arrays", "rot", data_dir=str(path), max_degrees=45)
    assert len(source.train_labels) + len(target.unlabelled_images) == 30


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image_size": -5}, "image_size must be a whole number of pixels"),
        ({"image_size": 16.5}, "image_size must be a whole number of pixels"),
        ({"seed": "a"}, "seed must be a whole number >= 0, got 'a'"),
        ({"name": "digits "}, "Protocol name 'digits ': give the name as a string without spaces"),
        # NumPy's "Cannot take a larger sample than population" before.
        ({"name": "digits-lt", "lt_exponent": -1}, "The Zipf long tail needs lt_exponent > 0"),
    ],
)
def test_arguments_tensorflow_would_refuse_in_its_own_words_are_refused_in_ours(kwargs, message):
    # image_size=-5 gave TensorFlow's "Dimension -5 must be >= 0" from inside
    # the resize; "digits " tfds' multi-line builder-name error.
    with pytest.raises(ValueError, match=re.escape(message)):
        make_protocol(**{"name": "digits", **kwargs})
    with pytest.raises(ValueError, match="per_class must be a whole number >= 1"):
        make_few_labels("digits", 0)


def test_class_counts_names_its_two_splits():
    with pytest.raises(ValueError, match=r"class_counts\(split='tset'\): use 'train' or 'test'"):
        make_protocol("digits").class_counts("tset")
