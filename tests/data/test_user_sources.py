"""User sources by name: where data_dir must point, and reading once while the files stay the same."""

import numpy as np
import pytest

from helpers.image_folders import write_image_folders, write_png
from kerazoo.data import UserDataError, user_sources


def test_data_dir_must_name_the_right_kind_of_path(tmp_path):
    with pytest.raises(
        UserDataError,
        match=r"dataset=imagefolder reads your data from data_dir, which is "
        r"not set; .*--set data_dir=path/to/images",
    ):
        user_sources.check_location("imagefolder", "")
    with pytest.raises(UserDataError, match=r"--set data_dir=path/to/file.npz"):
        user_sources.check_location("arrays", None)
    with pytest.raises(UserDataError, match=r"'.*nowhere' does not exist; dataset=arrays needs an .npz file"):
        user_sources.check_location("arrays", tmp_path / "nowhere")
    with pytest.raises(UserDataError, match=r"is a folder; dataset=arrays needs .*use dataset=imagefolder"):
        user_sources.check_location("arrays", tmp_path)
    (tmp_path / "mine.npz").write_bytes(b"")
    with pytest.raises(UserDataError, match=r"is a file; dataset=imagefolder needs .*use dataset=arrays"):
        user_sources.check_location("imagefolder", tmp_path / "mine.npz")


def test_reading_is_cached_until_the_files_change(tmp_path):
    root = write_image_folders(tmp_path, domains=(), classes=("a", "b"), per_class=5, size=4, channels=1)
    first = user_sources.read("imagefolder", str(root))
    assert user_sources.read("imagefolder", str(root)) is first
    assert user_sources.read("imagefolder", str(root), image_size=2) is not first
    write_png(root / "b" / "new.png", np.zeros((4, 4, 1), np.uint8))
    changed = user_sources.read("imagefolder", str(root))
    assert changed is not first and len(changed.splits["train"][1]) == len(first.splits["train"][1]) + 1
    assert user_sources.num_classes("imagefolder", str(root)) == 2
