import numpy as np
import pytest
import tensorflow_datasets as tfds

from kerazoo.data import make_protocol, parse_protocol_name
from kerazoo.data.protocols import make_domain_shift, make_few_labels


def test_parse_names():
    assert parse_protocol_name("digits-rot-lt") == ("digits", "rot", True)
    assert parse_protocol_name("cifar100") == ("cifar100", None, False)
    with pytest.raises(ValueError, match="digits-rot-lt"):
        parse_protocol_name("digits-rot-bg")


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


def test_domain_shift_keeps_source_and_target_disjoint():
    source, target = make_domain_shift("digits", "bg", seed=0)
    src = {x.tobytes() for x in source.train_images}
    clean = make_protocol("digits")
    assert len(source.train_labels) + len(target.train_labels) == len(clean.train_labels)
    # Target images are shifted copies of the *other* half: their strokes match
    # no source image.
    assert all(x.tobytes() not in src for x in target.train_images)
    np.testing.assert_array_equal(source.test_images, clean.test_images)
    assert (target.test_images > 0).mean() > (clean.test_images > 0).mean()


def test_few_labels():
    labelled, unlabelled = make_few_labels("digits", per_class=3, seed=0)
    assert labelled.class_counts().tolist() == [3] * 10
    assert len(unlabelled) == 1437 - 30


def test_long_tail_on_a_real_dataset_pipeline(tmp_path):
    with tfds.testing.mock_data(num_examples=400):
        p = make_protocol("cifar10-lt", data_dir=str(tmp_path), lt_min=2)
    assert p.num_classes == 10 and p.image_shape == (32, 32, 3)
    assert p.class_counts().sum() < 400
