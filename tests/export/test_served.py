"""CheckedSavedModel: a loaded SavedModel that keeps its attributes and whose `serve` checks its images."""

import numpy as np
import pytest

from helpers.export import SHAPE, random_images
from helpers.zoo import GOOD, fixture_loaded  # noqa: F401
from kerazoo.export import CheckedSavedModel


def test_checked_savedmodel_keeps_the_loaded_objects_attributes(saved_path):
    model = CheckedSavedModel(saved_path)
    assert model.input_shape == (None, *SHAPE)
    assert model.output_names == ("logits", "probabilities")
    assert "serve" in model.signatures and model.variables  # the SavedModel's own
    out = model.serve(random_images(0))
    assert {k: v.shape for k, v in out.items()} == {"logits": (0, 10), "probabilities": (0, 10)}
    with pytest.raises(FileNotFoundError, match="No SavedModel"):
        CheckedSavedModel(saved_path.parent / "missing")


def test_the_savedmodel_serve_checks_too(loaded):
    format, model = loaded
    if format != "savedmodel":
        pytest.skip("serve is the SavedModel's")
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        model.serve(GOOD * 255)
    out = model.serve(np.zeros((0, 8, 8, 1), "float32"))
    assert {k: v.shape for k, v in out.items()} == {"logits": (0, 10), "probabilities": (0, 10)}
