import numpy as np
import pytest
from scipy import ndimage

from kerazoo.data.transforms import apply_nuisance, background, dilate_erode, rotate


@pytest.fixture
def digits_like():
    rng = np.random.default_rng(0)
    images = np.zeros((20, 16, 16, 1), np.float32)
    images[:, 4:12, 6:10] = rng.uniform(0.3, 1.0, (20, 8, 4, 1))
    return images


@pytest.mark.parametrize("kind", ["rot", "bg", "dil"])
def test_nuisances_are_deterministic_by_seed_and_stay_in_range(digits_like, kind):
    a = apply_nuisance(digits_like, kind, seed=5)
    b = apply_nuisance(digits_like, kind, seed=5)
    c = apply_nuisance(digits_like, kind, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == digits_like.shape and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    # One draw per image: not every image gets the same parameters.
    assert len({np.round(x, 4).tobytes() for x in a - digits_like}) > 1


def test_background_changes_only_zero_pixels(digits_like):
    out = background(digits_like[0], np.random.default_rng(1))
    stroke = digits_like[0] > 0
    np.testing.assert_array_equal(out[stroke], digits_like[0][stroke])
    assert len(np.unique(out[~stroke])) == 1 and out[~stroke][0] <= 99 / 255


def test_rotation_by_zero_degrees_is_identity(digits_like):
    out = rotate(digits_like[0], np.random.default_rng(0), max_degrees=0.0)
    np.testing.assert_allclose(out, digits_like[0], atol=1e-6)


def test_dilation_grows_and_erosion_shrinks_the_stroke(digits_like):
    image = digits_like[0]
    outs = [dilate_erode(image, np.random.default_rng(s)) for s in range(20)]
    areas = {int((o > 0).sum()) for o in outs}
    assert max(areas) > (image > 0).sum() and min(areas) <= (image > 0).sum()


def test_unknown_nuisance_names_the_choices(digits_like):
    with pytest.raises(ValueError, match="bg"):
        apply_nuisance(digits_like, "blur", seed=0)


def test_bg_is_refused_on_images_without_a_black_background():
    # Photos: bg would replace no pixel, and a report would say it was applied.
    from kerazoo.data import UserDataError

    photos = np.random.default_rng(0).uniform(0.01, 1.0, (4, 8, 8, 3)).astype(np.float32)
    with pytest.raises(UserDataError, match=r"0.0% of these images' pixels are 0.*Use rot or dil"):
        apply_nuisance(photos, "bg", seed=0)


def test_rotation_angles_are_drawn_uniformly_up_to_max_degrees():
    # An asymmetric image: each angle gives another image. Each draw must be
    # the rotation by the angle the generator draws from [-max, max].
    image = np.zeros((12, 12, 1), "float32")
    image[2:5, 3:9] = 1.0
    image[5:10, 3:5] = 1.0
    angles = np.random.default_rng(7).uniform(-90.0, 90.0, size=20)
    rng = np.random.default_rng(7)
    for angle in angles:
        expected = ndimage.rotate(
            image, angle, axes=(0, 1), reshape=False, order=3, mode="constant", cval=0.0
        )
        np.testing.assert_allclose(rotate(image, rng, max_degrees=90.0), np.clip(expected, 0, 1), atol=1e-6)
    assert np.abs(angles).max() > 60  # the draws reach far beyond a few degrees
