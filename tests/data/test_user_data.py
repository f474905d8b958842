"""The common form of a user's dataset: its tfds-like info, read-only arrays, one channel rule."""

import numpy as np
import pytest

from kerazoo.data import UserDataError
from kerazoo.data.user_data import common_channels, user_data


def splits(train_labels=(0, 1, 1), test_labels=(0, 1), shape=(4, 4, 1)):
    return {
        "train": (np.zeros((len(train_labels), *shape), np.float32), np.array(train_labels)),
        "test": (np.zeros((len(test_labels), *shape), np.float32), np.array(test_labels)),
    }


def test_info_reads_like_a_tfds_info_and_arrays_cannot_be_changed_in_place():
    data = user_data(splits(), ["cat", "dog"], "from somewhere", "my data")
    label = data.info.features[data.info.supervised_keys[1]]
    assert label.num_classes == 2 and list(label.names) == ["cat", "dog"]
    assert data.info.features["image"].shape == (4, 4, 1) and data.info.description == "from somewhere"
    images, labels = data.splits["train"]
    assert labels.dtype == np.int32
    with pytest.raises(ValueError, match="read-only"):
        images[0] = 1.0  # the readers cache this object


def test_each_problem_has_its_message():
    with pytest.raises(UserDataError, match=r"my data: only one class \('cat'\)"):
        user_data(splits((0, 0), (0,)), ["cat"], "", "my data")
    with pytest.raises(UserDataError, match=r"train labels must lie in 0..1 .*found 2"):
        user_data(splits((0, 1, 2)), ["cat", "dog"], "", "my data")
    # One name for two labels: the label without a name is the mistake, not the class count.
    with pytest.raises(
        UserDataError, match=r"labels must lie in 0..0 \(one per class, 1 class: 'cat'\), found 1"
    ):
        user_data(splits((0, 1)), ["cat"], "", "my data")
    with pytest.raises(UserDataError, match=r"class 'dog' has no images in the train split"):
        user_data(splits((0, 0)), ["cat", "dog"], "", "my data")
    mixed = splits()
    mixed["test"] = (np.zeros((2, 5, 5, 1), np.float32), np.array([0, 1]))
    with pytest.raises(UserDataError, match=r"train images are 4x4 with 1 channel but test images are 5x5"):
        user_data(mixed, ["cat", "dog"], "", "my data")


def test_grey_images_become_rgb_only_beside_colour_ones():
    grey, colour = np.ones((2, 2, 1)), np.zeros((2, 2, 3))
    assert [x.shape[-1] for x in common_channels([grey, grey])] == [1, 1]
    made, kept = common_channels([grey, colour])
    assert made.shape == (2, 2, 3) and (made == 1).all() and kept is colour
