"""kerazoo.recipes.exports: what `exports=keras` ships (model.keras alone) and the record it returns."""

import keras
import numpy as np

import kerazoo.models  # noqa: F401  (registers the classes model.keras names)
from kerazoo import backbones
from kerazoo.models import Classifier, FeatureExtractor
from kerazoo.recipes.exports import export_model
from kerazoo.recipes.recipe import RunConfig
from kerazoo.recipes.results import MethodResult

IMAGES = np.random.default_rng(0).uniform(0, 1, (4, 8, 8, 1)).astype("float32")


def _result(model, class_names=("a", "b", "c")):
    model(IMAGES)  # built
    return MethodResult(
        rows={},
        model=model,
        input_shape=(8, 8, 1),
        sample_images=IMAGES,
        class_names=list(class_names),
        model_metrics={"test_accuracy": 0.5},
    )


def _log_into(logged):
    """A run's `log(message, console=True)` that keeps (message, console)."""
    return lambda message, console=True: logged.append((message, console))


def test_exports_keras_writes_model_keras_alone_and_describes_it(tmp_path):
    result = _result(Classifier(backbones.get("convnet", input_shape=(8, 8, 1), width=8), 3))
    logged = []
    described = export_model(
        tmp_path, result, RunConfig(exports="keras"), ["digits: train split"], _log_into(logged)
    )

    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]  # no SavedModel, no ONNX
    assert logged == [("export: model.keras written", False)]  # the run log only
    assert "round(raw * 255 / 16)" in described.pop("preprocessing")  # sklearn's 0..16 digits
    assert described == {
        "kind": "classifier",
        "class_names": ["a", "b", "c"],
        "input_shape": [None, 8, 8, 1],
        "raw_format": "sklearn_digits",
        "training_data": ["digits: train split"],
        "metrics": {"test_accuracy": 0.5},
        "evaluated_on": "the digits test split",
    }
    shipped = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(shipped.predict(IMAGES, verbose=0), result.model.predict(IMAGES, verbose=0))


def test_a_feature_extractor_ships_without_class_names_and_with_the_metrics_given(tmp_path):
    extractor = FeatureExtractor(backbones.get("convnet", input_shape=(8, 8, 1), width=8))
    described = export_model(
        tmp_path,
        _result(extractor),
        RunConfig(exports="keras"),
        [],
        _log_into([]),
        metrics={"knn_accuracy": 0.25},
    )
    assert described["kind"] == "features" and described["class_names"] is None
    assert described["metrics"] == {"knn_accuracy": 0.25}
