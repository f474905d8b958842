"""The model zoo: shipped models, their manifest, input checks on every
format, preprocessing from raw data, tampering, publish and rebuild."""

import json
import re
import shutil

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import kerazoo
from helpers.export import export_round_trip, softmax
from kerazoo import backbones, inputs, zoo
from kerazoo.data import load_arrays, make_domain_shift
from kerazoo.data.datasets import Digits
from kerazoo.export import export_onnx, export_savedmodel
from kerazoo.models import FeatureExtractor

SHIPPED = ["digits_baseline", "digits_lucir", "digits_batchformer"]


@pytest.fixture(scope="module")
def digits_test():
    images, labels, info = load_arrays("digits", "test")
    return images, labels, info.features["label"].names


@pytest.fixture
def zoo_copy(tmp_path):
    """A private copy of the shipped zoo, safe to damage."""
    for folder in ("saved_models", "export"):
        shutil.copytree(zoo.default_root() / folder, tmp_path / folder)
    return tmp_path


def _predict(model, format, images):
    """The outputs of a zoo model loaded in `format` (a dict for the SavedModel)."""
    if format == "savedmodel":
        return model.serve(images)
    if format == "keras":
        return model.predict(images, verbose=0)
    return model.predict(images)


def test_the_recipes_first_models_are_shipped_and_intact():
    assert set(SHIPPED) <= set(zoo.available())
    for name in SHIPPED:
        zoo.verify(name)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_format_predicts_alike_and_scores_what_the_manifest_says(name, digits_test):
    images, labels, dataset_names = digits_test
    entry = zoo.info(name)
    assert entry["input"]["shape"] == [None, *images.shape[1:]]

    probabilities = softmax(np.asarray(zoo.load(name, "keras").predict(images, verbose=0)))
    served = zoo.load(name, "savedmodel").serve(images)
    np.testing.assert_allclose(served["probabilities"], probabilities, atol=1e-5)
    onnx = zoo.load(name, "onnx")
    assert onnx.class_names == entry["classes"]
    np.testing.assert_allclose(onnx.predict(images), probabilities, atol=1e-4)
    assert max(entry["onnx"]["parity_max_abs_diff"].values()) <= 1e-4

    # Output column i is class entry["classes"][i] (LUCIR's columns follow its class order).
    predicted = np.asarray(entry["classes"])[probabilities.argmax(axis=1)]
    accuracy = np.mean(predicted == np.asarray(dataset_names)[labels])
    assert accuracy == pytest.approx(entry["metrics"]["test_accuracy"], abs=0.5 / len(labels))


@pytest.mark.parametrize("name", SHIPPED)
def test_the_keras_file_re_exports_to_the_same_predictions(name, digits_test, tmp_path):
    export_round_trip(zoo.load(name, "keras"), tmp_path, digits_test[0][:50])


@pytest.fixture(scope="module", params=zoo.FORMATS)
def loaded(request):
    """(format, digits_baseline loaded in that format)."""
    return request.param, zoo.load("digits_baseline", request.param)


GOOD = np.full((2, 8, 8, 1), 0.5, "float32")


@pytest.mark.parametrize(
    "images, message",
    [
        ((GOOD * 255).astype("uint8"), r"dtype uint8; the model takes float32 in \[0, 1\].*/ 255"),
        ((GOOD * 255).astype("int64"), r"dtype int64; .*/ 255"),
        (GOOD * 255, r"must lie in \[0, 1\] but range over \[127.5, 127.5\].*divide 0..255 pixels by 255"),
        (np.where(np.eye(8)[None, ..., None] > 0, np.nan, GOOD), "images contain NaN or infinity"),
        (np.where(np.eye(8)[None, ..., None] > 0, np.inf, GOOD), "images contain NaN or infinity"),
        (np.zeros((2, 8, 8, 3), "float32"), r"shape \(2, 8, 8, 3\); expected \(N, 8, 8, 1\)"),
        (GOOD[0], r"single image without the batch axis; pass images\[None\]"),
    ],
    ids=["uint8", "int64", "0..255 floats", "NaN", "Inf", "wrong shape", "no batch axis"],
)
def test_every_format_refuses_bad_images_with_the_same_message(loaded, images, message):
    format, model = loaded
    with pytest.raises(ValueError, match=message):
        _predict(model, format, images)


def test_every_format_answers_an_empty_batch_with_an_empty_result(loaded):
    format, model = loaded
    out = _predict(model, format, np.zeros((0, 8, 8, 1), "float32"))
    shapes = {k: v.shape for k, v in out.items()} if format == "savedmodel" else out.shape
    expected = (0, 10)
    assert shapes == ({"logits": expected, "probabilities": expected} if format == "savedmodel" else expected)


def test_every_format_refuses_another_image_size_after_a_good_call(loaded):
    # Keras would build a second graph for 28x28 (the convnet pools globally)
    # and answer; the shape the model was trained on is what counts.
    format, model = loaded
    _predict(model, format, GOOD)
    with pytest.raises(ValueError, match=r"shape \(2, 28, 28, 1\); expected \(N, 8, 8, 1\)"):
        _predict(model, format, np.zeros((2, 28, 28, 1), "float32"))


@pytest.fixture(scope="module")
def raw_digits_test():
    """sklearn's raw digits (0..16) of the tfds builder's test split, and their labels."""
    bunch = load_digits()
    _, test = train_test_split(
        np.arange(len(bunch.target)),
        test_size=Digits.TEST_FRACTION,
        stratify=bunch.target,
        random_state=Digits.SPLIT_SEED,
    )
    return bunch.images[test], bunch.target[test]


@pytest.mark.parametrize("name", SHIPPED)
def test_preprocessing_raw_digits_reproduces_the_training_input_and_accuracy(
    name, raw_digits_test, digits_test
):
    raw, labels = raw_digits_test
    images = zoo.preprocess(name, raw)
    # The very float32 images the model was tested on (tfds orders them its own way).
    assert sorted(map(bytes, images)) == sorted(map(bytes, digits_test[0]))
    entry = zoo.info(name)
    assert entry["input"]["raw_format"] == "sklearn_digits"
    assert "round(raw * 255 / 16)" in entry["input"]["preprocessing"]
    predicted = np.asarray(entry["classes"])[zoo.load(name, "onnx").predict(images).argmax(axis=1)]
    accuracy = np.mean(predicted.astype(int) == labels)
    assert accuracy == pytest.approx(entry["metrics"]["test_accuracy"], abs=1e-9)


def test_raw_over_16_is_not_the_preprocessing(raw_digits_test):
    # Why the manifest spells the rounding out: the naive scaling gives other
    # pixels (by up to 0.5/255) and so other outputs.
    raw, _ = raw_digits_test
    exact = zoo.preprocess("digits_lucir", raw)
    naive = (raw / 16.0).astype("float32")[..., None]
    assert 0 < np.abs(naive - exact).max() <= 0.5 / 255 + 1e-7
    clf = zoo.load("digits_lucir", "onnx")
    assert np.abs(clf.predict(naive) - clf.predict(exact)).max() > 1e-4


def test_a_truncated_manifest_names_the_file_and_the_fix(zoo_copy, cli):
    manifest = zoo_copy / "saved_models" / "manifest.json"
    manifest.write_text(manifest.read_text()[:1000])
    message = re.escape(str(manifest)) + r" is not valid JSON \(.*\), e.g. truncated; restore it .*git checkout -- saved_models/manifest.json"
    with pytest.raises(zoo.ZooError, match=message):
        zoo.load("digits_baseline", root=zoo_copy)
    listed = cli("kerazoo.zoo", "--root", zoo_copy, "list")
    assert listed.returncode == 2 and re.search(message, listed.stderr), listed.stderr
    assert "Traceback" not in listed.stderr


@pytest.fixture(scope="module")
def feature_run(digits_test, tmp_path_factory):
    """A run directory as `Run.export` leaves it, for a FeatureExtractor:
    model.keras, model/, model.onnx, config.json, metrics.json, report.md."""
    images = digits_test[0][:32]
    extractor = FeatureExtractor(
        backbones.get("convnet", input_shape=(8, 8, 1), width=16),
        projection=keras.layers.Dense(6),
        normalize=True,
    )
    extractor(images, training=True)  # moves the BatchNorm statistics
    run = tmp_path_factory.mktemp("features") / "run"
    run.mkdir()
    extractor.save(run / "model.keras")
    export_savedmodel(extractor, run / "model")
    parity = export_onnx(extractor, run / "model.onnx", sample_images=images)
    config = {
        "recipe": "adco",
        "config": {"dataset": "digits", "seed": 0},
        "command": f"python -m kerazoo.recipes.adco --out {run}",
        "kerazoo_version": kerazoo.__version__,
    }
    model = {
        "kind": "features",
        "class_names": None,
        "input_shape": [None, 8, 8, 1],
        **inputs.input_spec("digits"),
        "training_data": ["digits: 32 test images, one training-mode call"],
        "metrics": {"knn_accuracy": 0.5},
        "onnx_parity_max_abs_diff": {str(b): d for b, d in parity.items()},
    }
    (run / "config.json").write_text(json.dumps(config))
    (run / "metrics.json").write_text(json.dumps({"model": model}))
    (run / "report.md").write_text("# features\n")
    return run, extractor, images


def test_a_feature_extractor_publishes_and_loads_in_every_format(feature_run, tmp_path, cli):
    run, extractor, images = feature_run
    root = tmp_path / "zoo"
    entry = zoo.publish(run, "digits_features", root)
    assert entry["kind"] == "features" and entry["outputs"] == ["features"]
    assert entry["classes"] is None and entry["input"]["raw_format"] == "sklearn_digits"
    zoo.verify("digits_features", root)

    expected = zoo.load("digits_features", "keras", root=root).predict(images, verbose=0)
    np.testing.assert_allclose(expected, extractor.predict(images, verbose=0), atol=1e-6)
    onnx = zoo.load("digits_features", "onnx", root=root)
    assert type(onnx).__name__ == "OnnxFeatureExtractor" and onnx.output_size == 6
    served = zoo.load("digits_features", root=root).serve(images)
    assert list(served) == ["features"]
    for got in (onnx.predict(images), served["features"]):
        assert got.shape == (32, 6)
        np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(expected, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="dtype uint8"):
        onnx.predict((images * 255).astype("uint8"))

    listed = cli("kerazoo.zoo", "--root", root, "list")
    assert "digits_features: adco on digits, features; knn_accuracy 0.5000" in listed.stdout, listed.stderr


@pytest.mark.parametrize("format", zoo.FORMATS)
def test_a_corrupt_byte_fails_the_load_and_names_the_file(zoo_copy, format):
    entry = zoo.info("digits_baseline", zoo_copy)
    relative = max(zoo.files_of(entry, format), key=lambda p: (zoo_copy / p).stat().st_size)
    data = bytearray((zoo_copy / relative).read_bytes())
    data[len(data) // 2] ^= 0x01
    (zoo_copy / relative).write_bytes(bytes(data))
    with pytest.raises(zoo.ChecksumError, match=re.escape(relative) + " is corrupt"):
        zoo.load("digits_baseline", format, root=zoo_copy)
    # Loading another format reads other files, and still works.
    other = next(f for f in zoo.FORMATS if f != format)
    assert zoo.load("digits_baseline", other, root=zoo_copy) is not None


def test_a_missing_file_is_named(zoo_copy):
    entry = zoo.info("digits_lucir", zoo_copy)
    relative = zoo.files_of(entry, "keras")[0]
    (zoo_copy / relative).unlink()
    with pytest.raises(zoo.ChecksumError, match=re.escape(relative) + " is missing"):
        zoo.load("digits_lucir", "keras", root=zoo_copy)


def test_unknown_names_formats_and_zoo_dirs_are_clear_errors(zoo_copy, tmp_path_factory):
    with pytest.raises(zoo.ZooError, match="available: .*digits_baseline"):
        zoo.info("nope", zoo_copy)
    with pytest.raises(ValueError, match="Unknown format 'tflite'"):
        zoo.load("digits_baseline", "tflite", root=zoo_copy)
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(zoo.ZooError, match="KERAZOO_ZOO_DIR"):
        zoo.available(empty)


def test_cli_verify_reports_each_model_and_fails_on_tampering(cli, zoo_copy):
    ok = cli("kerazoo.zoo", "--root", zoo_copy, "verify")
    assert ok.returncode == 0, ok.stderr
    assert all(f"{name}: " in ok.stdout and "files OK" in ok.stdout for name in SHIPPED)
    onnx = zoo_copy / "export" / "digits_lucir.onnx"
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    bad = cli("kerazoo.zoo", "--root", zoo_copy, "verify", "digits_lucir")
    assert bad.returncode == 2 and "export/digits_lucir.onnx is corrupt" in bad.stderr


@pytest.mark.slow
def test_a_run_that_wrote_only_model_keras_is_refused_with_the_fix(feature_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(feature_run[0], run)
    metrics = json.loads((run / "metrics.json").read_text())
    del metrics["model"]["onnx_parity_max_abs_diff"]  # what Run.export writes for exports=keras
    (run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(zoo.ZooError, match="--set exports=all"):
        zoo.publish(run, "keras_only", tmp_path / "zoo")
    assert not (tmp_path / "zoo").exists()


def test_publish_then_rebuild_reproduces_the_model(cli, tmp_path):
    """A tiny baseline run is published, refused a second time, then rebuilt
    from its recorded command: a deterministic recipe gives the same metrics."""
    run = cli("kerazoo.recipes.baseline", "--set", "epochs=1", "--out", tmp_path / "run")
    assert run.returncode == 0, run.stderr
    root = tmp_path / "zoo"
    entry = zoo.publish(tmp_path / "run", "tiny", root)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert entry["metrics"] == metrics["model"]["metrics"]
    assert entry["classes"] == [str(i) for i in range(10)]
    assert entry["kind"] == "classifier" and entry["outputs"] == ["logits", "probabilities"]
    assert zoo.load("tiny", "onnx", root=root).class_names == entry["classes"]
    with pytest.raises(zoo.ZooError, match="already has 'tiny'"):
        zoo.publish(tmp_path / "run", "tiny", root)

    rebuilt = cli("kerazoo.zoo", "--root", root, "rebuild", "tiny")
    assert rebuilt.returncode == 0, rebuilt.stderr
    new = zoo.info("tiny", root)
    assert new["metrics"] == entry["metrics"]
    assert "--out" in new["command"] and str(tmp_path / "run") not in new["command"]
    zoo.verify("tiny", root)


def test_verify_covers_the_report_too_but_loading_needs_only_its_own_files(zoo_copy):
    report = zoo_copy / "saved_models" / "digits_baseline" / "report.md"
    report.write_text(report.read_text() + "edited\n")
    with pytest.raises(zoo.ChecksumError, match="report.md is corrupt"):
        zoo.verify("digits_baseline", zoo_copy)
    zoo.verify("digits_baseline", zoo_copy, formats=zoo.FORMATS)


def test_digits_bnm_scores_its_shifted_target_alike_in_every_format():
    # A domain-adaptation model is tested on its target domain: the digits
    # test split with the recipe's background shift, at the recipe's size.
    zoo.verify("digits_bnm")
    entry = zoo.info("digits_bnm")
    config = entry["config"]
    _, target = make_domain_shift(config["dataset"], config["shift"], seed=config["seed"],
                                  image_size=config["image_size"], max_level=config["bg_max_level"])
    images, labels = target.test_images, target.test_labels
    assert entry["input"]["shape"] == [None, *images.shape[1:]]
    probabilities = softmax(np.asarray(zoo.load("digits_bnm", "keras").predict(images, verbose=0)))
    np.testing.assert_allclose(zoo.load("digits_bnm", "savedmodel").serve(images)["probabilities"],
                               probabilities, atol=1e-5)
    np.testing.assert_allclose(zoo.load("digits_bnm", "onnx").predict(images), probabilities, atol=1e-4)
    accuracy = np.mean(probabilities.argmax(axis=1) == labels)
    assert accuracy == pytest.approx(entry["metrics"]["test_accuracy"], abs=0.5 / len(labels))
