"""`dataset=imagefolder`: both layouts, channels, sizes, the hold-out, and every bad folder's message."""

import numpy as np
import pytest

from helpers.image_folders import write_image_folders, write_png
from kerazoo.data import UserDataError
from kerazoo.data.image_folders import class_names, read_image_folders


def test_class_layout_is_split_stratified_with_a_fixed_seed(tmp_path):
    root = write_image_folders(
        tmp_path / "pets", domains=(), classes=("cat", "dog", "eel"), per_class=10, size=6, channels=1
    )
    data = read_image_folders(root)
    (train_x, train_y), (test_x, test_y) = data.splits["train"], data.splits["test"]
    assert data.class_names == ["cat", "dog", "eel"] and class_names(root) == data.class_names
    # 20 % of each class's 10 images is the test split.
    np.testing.assert_array_equal(np.bincount(train_y), [8, 8, 8])
    np.testing.assert_array_equal(np.bincount(test_y), [2, 2, 2])
    assert train_x.shape == (24, 6, 6, 1) and train_x.dtype == np.float32  # grey files stay grey
    # Each class's grey level survives reading and the label mapping.
    np.testing.assert_allclose(train_x[:, 0, 0, 0] * 255, 60 * (train_y + 1), atol=1e-3)
    np.testing.assert_allclose(test_x[:, 0, 0, 0] * 255, 60 * (test_y + 1), atol=1e-3)
    again = read_image_folders(root)
    np.testing.assert_array_equal(again.splits["test"][1], test_y)
    assert "hold-out of 20%" in data.description and "grey" in data.description


def test_split_layout_reads_train_and_test_from_the_folder_names(tmp_path):
    root = write_image_folders(tmp_path, domains=("train", "test"), per_class=3)
    data = read_image_folders(root, image_size=8)
    assert data.class_names == ["bike", "cup", "pen"]
    assert data.splits["train"][0].shape == (9, 8, 8, 3) and data.splits["test"][0].shape == (9, 8, 8, 3)
    np.testing.assert_array_equal(np.sort(data.splits["test"][1]), np.repeat([0, 1, 2], 3))
    assert "root/train/<class>/<image>" in data.description and "RGB" in data.description


def test_grey_among_colour_images_become_rgb_and_alpha_is_dropped(tmp_path):
    root = write_image_folders(tmp_path, domains=(), classes=("a", "b"), per_class=2, size=5, channels=1)
    write_png(root / "a" / "colour.png", np.full((5, 5, 3), [10, 20, 30], np.uint8))
    write_png(root / "b" / "alpha.png", np.full((5, 5, 4), [40, 50, 60, 255], np.uint8))
    data = read_image_folders(root)
    images = np.concatenate([data.splits["train"][0], data.splits["test"][0]])
    assert images.shape == (6, 5, 5, 3)
    pixels = {tuple(np.round(image[0, 0] * 255).astype(int)) for image in images}
    assert pixels == {(60, 60, 60), (120, 120, 120), (10, 20, 30), (40, 50, 60)}


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: tmp / "missing", r"'.*missing' does not exist.*root/<class>/<image>"),
        (lambda tmp: _file(tmp / "x.png"), r"is a file, not a folder.*dataset=arrays"),
        (lambda tmp: tmp, r"no class folders; put each class's images in a folder"),
        (
            lambda tmp: _tree(tmp, {"cat": 2}, loose=True),
            r"'dog' has no .png/.jpg/.jpeg images; add images or remove",
        ),
        (lambda tmp: _tree(tmp, {"cat": 3}), r"only one class \('cat'\); a classifier needs at least two"),
        (
            lambda tmp: _tree(tmp, {"cat": 3, "dog": 1}),
            r"class 'dog' has only 1 image; .*root/train/<class>/<image>",
        ),
        (lambda tmp: _tree(tmp, {"train/cat": 2, "train/dog": 2}), r"'train' folder but no 'test' folder"),
        (
            lambda tmp: _tree(tmp, {"train/cat": 2, "train/dog": 2, "test/cat": 2}),
            r"class 'dog' has no images in the test split",
        ),
        (
            lambda tmp: _tree(tmp, {"a/cat": 2, "a/dog": 2}),
            r"'a' has no .* images but folders \(cat, dog\).*'train' and 'test'",
        ),
        (
            lambda tmp: _tree(tmp, {"train/cat/deep": 2, "train/dog/deep": 2, "test/cat": 2, "test/dog": 2}),
            r"the 'train' folder holds no .png/.jpg/.jpeg images in its class folders; images must lie "
            r"directly in train/<class>/",
        ),
        (
            lambda tmp: _tree(tmp, {"cat": 2, "dog": 2, ".ipynb_checkpoints": 2}),
            r"'.ipynb_checkpoints' would be read as a class, but looks like a system folder",
        ),
        (
            lambda tmp: _tree(
                tmp, {"train/cat": 2, "train/dog": 2, "train/__MACOSX": 2, "test/cat": 2, "test/dog": 2}
            ),
            r"'__MACOSX' would be read as a class, but looks like a system folder .*delete it",
        ),
        (
            lambda tmp: _tree(tmp, {"cat": 2, "dog": 2}, sizes=True),
            r"differ in size \(2 sizes, e.g. (cat|dog)/\d.png is (4x4|5x5) and .*set image_size",
        ),
        (
            lambda tmp: _tree(tmp, {"cat": 2, "dog": 2}, broken="dog/1.png"),
            r"dog/1.png cannot be decoded \(Unknown image file format.*\); every .* Remove or re-save it",
        ),
        (
            lambda tmp: _tree(tmp, {"cat": 2, "dog": 2}, broken="dog/._1.png"),
            r"dog/._1.png cannot be decoded .*macOS metadata files .*-name '._\*' -delete",
        ),
    ],
)
def test_bad_folders_name_the_problem_and_the_fix(tmp_path, make, message):
    with pytest.raises(UserDataError, match=message):
        read_image_folders(make(tmp_path))


def _file(path):
    path.write_bytes(b"")
    return path


def _tree(root, counts, sizes=False, broken=None, loose=False):
    """root/<path>/<i>.png for each path: count; `sizes`: image i is (4 + i) pixels a side;
    `broken`: that file is not an image; `loose`: an empty class folder 'dog' holding a text file."""
    if loose:
        (root / "dog").mkdir()
        (root / "dog" / "notes.txt").write_text("not an image")
    for path, count in counts.items():
        folder = root / path
        folder.mkdir(parents=True)
        for i in range(count):
            side = 4 + (i if sizes else 0)
            write_png(folder / f"{i}.png", np.full((side, side, 1), 50 * (i + 1), np.uint8))
    if broken:
        (root / broken).write_bytes(b"not a png")
    return root
