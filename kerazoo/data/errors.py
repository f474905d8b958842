"""The errors of `kerazoo.data`: a dataset that is missing, unusable or too
small for what was asked of it.

They live apart from the loaders so that every reader (tfds, the user's
image folders, the user's .npz files) raises the same kinds without
importing the others.
"""


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is not prepared in the data directory.

    Example:

    ```python
    import tempfile
    import kerazoo.data
    from kerazoo.data.errors import DatasetNotFoundError

    try:
        kerazoo.data.load("cifar100", "test", data_dir=tempfile.mkdtemp())  # not prepared, no download
    except DatasetNotFoundError as error:
        print(error)
    ```
    """


class UserDataError(DatasetNotFoundError):
    """The user's own data (`dataset=imagefolder` or `dataset=arrays`) is
    missing or cannot be used as a dataset.

    The message names the problem (a missing folder, an empty class, mixed
    image sizes, wrong .npz keys, labels out of range, ...) and the fix. It
    is a `DatasetNotFoundError`, so every caller that reports a missing
    dataset as a user error (the recipes exit with status 2) reports these
    the same way.

    Example:

    ```python
    import tempfile
    import kerazoo.data
    from kerazoo.data.errors import UserDataError

    try:
        kerazoo.data.load_arrays("imagefolder", "train", tempfile.mkdtemp())  # an empty folder
    except UserDataError as error:
        print(error)  # the problem and the fix
    ```
    """


class DataSizeError(ValueError):
    """The data are too small for what was asked of them: a batch larger
    than the training set, more labels per class than a class has.

    The message names the sizes and the setting to lower. The recipes report
    it as a config error (exit status 2, before any training).

    Example:

    ```python
    import numpy as np
    from kerazoo.data import DataSizeError, EpochCounter, train_dataset

    x = np.zeros((10, 4), "float32")
    try:
        train_dataset(x, np.zeros(10, int), 32, seed=0, epoch_counter=EpochCounter())
    except DataSizeError as error:
        print(error)  # batch_size=32 is larger than the training set (10 examples); lower batch_size.
    ```
    """
