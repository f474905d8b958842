"""kerazoo.data's errors: a user's unusable data is a missing dataset, too-small data a ValueError."""

import pytest

import kerazoo.data
from kerazoo.data.errors import DatasetNotFoundError, DataSizeError, UserDataError


def test_unusable_user_data_is_caught_where_a_missing_dataset_is():
    # The recipes answer `except DatasetNotFoundError` with exit status 2:
    # a user's unusable folder or .npz file must take the same path.
    with pytest.raises(DatasetNotFoundError, match="empty class 'cat'"):
        raise UserDataError("empty class 'cat'")
    with pytest.raises(FileNotFoundError):
        raise DatasetNotFoundError("cifar100 is not prepared")


def test_too_small_data_is_a_value_error_not_a_missing_dataset():
    error = DataSizeError("batch_size=32 is larger than the training set (10 examples)")
    assert isinstance(error, ValueError)
    assert not isinstance(error, DatasetNotFoundError | FileNotFoundError)


def test_kerazoo_data_exports_the_same_classes():
    assert kerazoo.data.DatasetNotFoundError is DatasetNotFoundError
    assert kerazoo.data.UserDataError is UserDataError
    assert kerazoo.data.DataSizeError is DataSizeError
