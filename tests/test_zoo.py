"""The model zoo: shipped models, their manifest, tampering, publish and rebuild."""

import json
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf

from kerazoo import zoo
from kerazoo.data import load_arrays
from kerazoo.export import OnnxClassifier, export_onnx, export_savedmodel

SHIPPED = ["digits_baseline", "digits_lucir"]


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


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_the_recipes_first_models_are_shipped_and_intact():
    assert set(SHIPPED) <= set(zoo.available())
    for name in SHIPPED:
        zoo.verify(name)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_format_predicts_alike_and_scores_what_the_manifest_says(name, digits_test):
    images, labels, dataset_names = digits_test
    entry = zoo.info(name)
    assert entry["input"]["shape"] == [None, *images.shape[1:]]

    probabilities = _softmax(np.asarray(zoo.load(name, "keras").predict(images, verbose=0)))
    saved_model = zoo.load(name, "savedmodel")  # kept alive while its function runs
    served = saved_model.serve(tf.constant(images))
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
    images = digits_test[0][:50]
    model = zoo.load(name, "keras")
    expected = _softmax(np.asarray(model(images, training=False)))
    export_savedmodel(model, tmp_path / "model")
    export_onnx(model, tmp_path / "model.onnx", sample_images=images)
    saved_model = tf.saved_model.load(str(tmp_path / "model"))
    serve = saved_model.signatures["serve"]
    for batch in (images[:1], images):  # dynamic batch
        n = len(batch)
        np.testing.assert_allclose(serve(images=tf.constant(batch))["probabilities"], expected[:n], atol=1e-5)
        np.testing.assert_allclose(OnnxClassifier(tmp_path / "model.onnx").predict(batch), expected[:n], atol=1e-4)


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
