"""Both export kinds, `classifier` and `features`, through SavedModel and ONNX and back."""

import onnx
import pytest

from helpers.export import export_round_trip, random_images
from kerazoo.export import OnnxClassifier, OnnxFeatureExtractor, export_onnx


@pytest.mark.parametrize("fixture", ["model", "feature_extractor"])
def test_every_output_of_the_kind_survives_the_round_trip(fixture, request, tmp_path):
    model = request.getfixturevalue(fixture)
    result = export_round_trip(model, tmp_path, random_images(7, seed=3), atol=1e-5)

    outputs = {"model": ("logits", "probabilities"), "feature_extractor": ("features",)}[fixture]
    assert result["savedmodel"].output_names == outputs
    graph = onnx.load(tmp_path / "model.onnx").graph
    assert [o.name for o in graph.output] == list(outputs)
    assert all(o.type.tensor_type.shape.dim[0].dim_param == "batch" for o in graph.output)
    runtime = {"model": OnnxClassifier, "feature_extractor": OnnxFeatureExtractor}[fixture]
    assert type(result["onnx"]) is runtime


def test_feature_files_have_no_softmax_and_no_class_names(feature_extractor, tmp_path):
    with pytest.raises(ValueError, match="class_names were given for a 'features' model"):
        export_onnx(feature_extractor, tmp_path / "named.onnx", class_names=list("abcdefghijkl"))
    assert not (tmp_path / "named.onnx").exists()

    export_onnx(feature_extractor, tmp_path / "features.onnx")
    ops = {node.op_type for node in onnx.load(tmp_path / "features.onnx").graph.node}
    assert "Softmax" not in ops, ops
    assert OnnxFeatureExtractor(tmp_path / "features.onnx").output_size == 12


def test_each_runtime_refuses_the_other_kind(model, feature_extractor, tmp_path):
    export_onnx(model, tmp_path / "classifier.onnx")
    export_onnx(feature_extractor, tmp_path / "features.onnx")
    with pytest.raises(
        ValueError, match=r"no output 'probabilities'.*not a classifier export.*OnnxFeatureExtractor"
    ):
        OnnxClassifier(tmp_path / "features.onnx")
    with pytest.raises(ValueError, match=r"no output 'features'.*not a features export"):
        OnnxFeatureExtractor(tmp_path / "classifier.onnx")
