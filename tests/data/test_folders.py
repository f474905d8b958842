"""Domain-shift protocols from image folders, on a tiny generated tree."""

import numpy as np
import pytest

from helpers.image_folders import write_image_folders
from kerazoo.data import DatasetNotFoundError
from kerazoo.data.folders import folder_domain_shift


def test_domains_become_source_and_target_protocols(tmp_path):
    root = write_image_folders(tmp_path)
    source, target = folder_domain_shift(root, "amazon", "webcam", image_size=8)
    assert source.train_images.shape == (9, 8, 8, 3) and source.train_images.dtype == np.float32
    assert source.class_names == ["bike", "cup", "pen"] and source.num_classes == 3
    assert target.train_labels is None and target.unlabelled_images.shape == (9, 8, 8, 3)
    np.testing.assert_array_equal(np.sort(target.evaluation_labels()), np.repeat([0, 1, 2], 3))
    # Each class's grey level survives loading, resizing and the label mapping.
    levels = source.train_images[:, 0, 0, 0] * 255
    np.testing.assert_allclose(levels, 60 * (source.train_labels + 1), atol=1)


def test_missing_domain_names_what_exists(tmp_path):
    root = write_image_folders(tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"No domain 'dslr'.*\['amazon', 'webcam'\]"):
        folder_domain_shift(root, "amazon", "dslr", image_size=8)


def test_grey_domain_folders_stay_grey(tmp_path):
    root = write_image_folders(tmp_path, channels=1)
    source, target = folder_domain_shift(root, "amazon", "webcam", image_size=8)
    assert source.image_shape == (8, 8, 1) and target.unlabelled_images.shape == (9, 8, 8, 1)


def test_missing_root_says_what_domain_adaptation_reads(tmp_path):
    with pytest.raises(
        DatasetNotFoundError, match=r"'.*office' is not a folder; .*root/<domain>/<class>/<image>"
    ):
        folder_domain_shift(tmp_path / "office", "amazon", "webcam", image_size=8)


def _domains(root, layout):
    from PIL import Image

    for path, count in layout.items():
        (root / path).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(np.full((6, 6), 60 * (i + 1), np.uint8)).save(root / path / f"{i}.png")
    return root


def test_a_domain_nested_one_level_deeper_is_named_not_a_tensorflow_error(tmp_path):
    # Office-31 as distributed: amazon/images/<class>/ (was "ReadFile ... type float32").
    root = _domains(
        tmp_path, {"amazon/images/mug": 2, "amazon/images/pen": 2, "webcam/mug": 2, "webcam/pen": 2}
    )
    with pytest.raises(
        DatasetNotFoundError, match=r"the 'amazon' folder holds no .* images in its class folders"
    ):
        folder_domain_shift(root, "amazon", "webcam", image_size=8)


def test_a_class_the_source_lacks_is_refused(tmp_path):
    root = _domains(
        tmp_path, {"amazon/mug": 2, "amazon/pen": 2, "webcam/mug": 2, "webcam/pen": 2, "webcam/cup": 2}
    )
    with pytest.raises(
        DatasetNotFoundError, match=r"the source domain 'amazon' has no images of class\(es\) \['cup'\]"
    ):
        folder_domain_shift(root, "amazon", "webcam", image_size=8)
