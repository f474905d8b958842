"""The model zoo: shipped models, their manifest, input checks on every
format, preprocessing from raw data, tampering, publish and rebuild."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import kerazoo
from helpers.export import export_round_trip, softmax
from helpers.zoo import GOOD, fixture_loaded  # noqa: F401
from kerazoo import backbones, inputs, zoo
from kerazoo.data import load_arrays, make_domain_shift
from kerazoo.data.datasets import Digits
from kerazoo.export import export_onnx, export_savedmodel
from kerazoo.models import FeatureExtractor

SHIPPED = ["digits_baseline", "digits_lucir", "digits_batchformer"]
# Models whose published test_accuracy is on the digits test split as it is
# (not a shifted or transformed one), so raw sklearn digits reproduce it.
ON_THE_RAW_TEST_SPLIT = ["digits_baseline", "digits_lucir", "digits_batchformer", "digits_adco_probe"]


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
    """The probabilities of a zoo model loaded in `format`, by the API every format shares."""
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

    keras_model = zoo.load(name, "keras")
    probabilities = softmax(np.asarray(keras_model.model.predict(images, verbose=0)))
    np.testing.assert_allclose(keras_model.predict(images), probabilities, atol=1e-6)
    served = zoo.load(name, "savedmodel").serve(images)
    np.testing.assert_allclose(served["probabilities"], probabilities, atol=1e-5)
    onnx = zoo.load(name, "onnx")
    assert list(onnx.class_names) == entry["classes"]
    np.testing.assert_allclose(onnx.predict(images), probabilities, atol=1e-4)
    assert max(entry["onnx"]["parity_max_abs_diff"].values()) <= 1e-4

    # Output column i is class entry["classes"][i] (LUCIR's columns follow its class order).
    predicted = np.asarray(entry["classes"])[probabilities.argmax(axis=1)]
    accuracy = np.mean(predicted == np.asarray(dataset_names)[labels])
    assert accuracy == pytest.approx(entry["metrics"]["test_accuracy"], abs=0.5 / len(labels))


@pytest.mark.parametrize("name", SHIPPED)
def test_the_keras_file_re_exports_to_the_same_predictions(name, digits_test, tmp_path):
    export_round_trip(zoo.load(name, "keras").model, tmp_path, digits_test[0][:50])


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
    empty = np.zeros((0, 8, 8, 1), "float32")
    for output in (None, "logits", "probabilities"):
        out = model.predict(empty, output=output)
        assert out.shape == (0, 10) and out.dtype == np.float32


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
    for format in zoo.FORMATS:
        model = zoo.load(name, format)
        predicted = model.class_names[model.predict(images).argmax(1)]
        accuracy = np.mean(predicted.astype(int) == labels)
        assert accuracy == pytest.approx(entry["metrics"]["test_accuracy"], abs=1e-9), format


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
    message = (
        re.escape(str(manifest))
        + r" is not valid JSON \(.*\), e.g. truncated; restore it .*git checkout -- saved_models/manifest.json"
    )
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
        "evaluated_on": "the digits test split",
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

    keras_model = zoo.load("digits_features", "keras", root=root)
    assert keras_model.kind == "features" and keras_model.class_names is None
    expected = keras_model.predict(images)
    np.testing.assert_allclose(expected, extractor.predict(images, verbose=0), atol=1e-6)
    with pytest.raises(
        ValueError, match=r"A features model has no output 'logits'; choose one of \['features'\]"
    ):
        keras_model.predict(images, output="logits")
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
    assert (
        "digits_features: adco on digits, features; knn_accuracy 0.5000 on the digits test split"
        in listed.stdout
    ), listed.stderr


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
    images = np.full((3, *entry["input"]["shape"][1:]), 0.5, np.float32)
    np.testing.assert_allclose(
        zoo.load("digits_baseline", other, root=zoo_copy).predict(images),
        zoo.load("digits_baseline", other).predict(images),
        atol=1e-6,
    )


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


@pytest.mark.slow
def test_publish_then_rebuild_reproduces_the_model(cli, tmp_path):
    """A tiny baseline run is published, refused a second time, then rebuilt
    from its recorded command: a deterministic recipe gives the same metrics.
    The command names its config by a relative path with spaces: it is
    recorded as a shell reads it and rebuilt in the directory it ran in."""
    work = tmp_path / "work"
    (work / "my configs").mkdir(parents=True)
    (work / "my configs" / "one epoch.toml").write_text("epochs = 1\n")
    run = cli("kerazoo.recipes.baseline", "--config", "my configs/one epoch.toml", "--out", "run", cwd=work)
    assert run.returncode == 0, run.stderr
    root = tmp_path / "zoo"
    entry = zoo.publish(work / "run", "tiny", root)
    metrics = json.loads((work / "run" / "metrics.json").read_text())
    assert entry["metrics"] == metrics["model"]["metrics"]
    assert entry["classes"] == [str(i) for i in range(10)]
    assert entry["kind"] == "classifier" and entry["outputs"] == ["logits", "probabilities"]
    assert shlex.split(entry["command"])[3:5] == ["--config", "my configs/one epoch.toml"]
    assert entry["working_directory"] == work.resolve().as_posix()
    assert list(zoo.load("tiny", "onnx", root=root).class_names) == entry["classes"]
    with pytest.raises(zoo.ZooError, match="already has 'tiny'"):
        zoo.publish(work / "run", "tiny", root)

    rebuilt = cli("kerazoo.zoo", "--root", root, "rebuild", "tiny")
    assert rebuilt.returncode == 0, rebuilt.stderr
    new = zoo.info("tiny", root)
    assert new["metrics"] == entry["metrics"]
    assert "--out" in new["command"] and "run" not in shlex.split(new["command"])
    assert new["working_directory"] == entry["working_directory"]
    zoo.verify("tiny", root)


def test_publish_replaces_nothing_unlisted_and_checks_the_run_before_writing(feature_run, tmp_path):
    root = tmp_path / "zoo"
    notes = root / "saved_models" / "mine" / "NOTES.txt"
    notes.parent.mkdir(parents=True)
    notes.write_text("my notes")
    with pytest.raises(zoo.ZooError, match=r"mine already exists, though the zoo lists no model 'mine'"):
        zoo.publish(feature_run[0], "mine", root)
    assert notes.read_text() == "my notes"

    zoo.publish(feature_run[0], "features", root)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    broken = tmp_path / "broken"
    shutil.copytree(feature_run[0], broken)
    (broken / "model.onnx").unlink()
    with pytest.raises(zoo.ZooError, match=r"lacks model.onnx, which a run with exports=all writes"):
        zoo.publish(broken, "features", root, overwrite=True)
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    zoo.verify("features", root)


def test_a_run_made_inside_the_zoo_records_where_relative_to_it_and_a_missing_one_is_named(
    feature_run, tmp_path
):
    run = tmp_path / "run"
    shutil.copytree(feature_run[0], run)
    root = tmp_path / "zoo"
    config = json.loads((run / "config.json").read_text())
    config["working_directory"] = str(root / "experiments")
    (run / "config.json").write_text(json.dumps(config))
    assert zoo.publish(run, "inside", root)["working_directory"] == "experiments"
    # The check comes before anything runs: no recipe starts.
    with pytest.raises(zoo.ZooError, match=r"made in .*experiments, which does not exist here"):
        zoo.rebuild("inside", root)


def test_a_failed_rebuild_keeps_its_run_directory_and_says_how_to_finish(feature_run, tmp_path):
    root = tmp_path / "zoo"
    zoo.publish(feature_run[0], "features", root)
    manifest_path = root / "saved_models" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["models"]["features"]["command"] = "python -m kerazoo.recipes.adco --set nonsense=1"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(zoo.ZooError, match="failed; its run directory") as error:
        zoo.rebuild("features", root)
    kept = re.search(r"run directory (\S+) is kept", str(error.value)).group(1)
    assert Path(kept).is_dir()
    assert f"python -m kerazoo.zoo publish {kept} features --overwrite --root {root}" in str(error.value)
    shutil.rmtree(kept)


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
    _, target = make_domain_shift(
        config["dataset"],
        config["shift"],
        seed=config["seed"],
        image_size=config["image_size"],
        max_level=config["bg_max_level"],
    )
    images, labels = target.test_images, target.test_labels
    assert entry["input"]["shape"] == [None, *images.shape[1:]]
    probabilities = zoo.load("digits_bnm", "keras").predict(images)
    np.testing.assert_allclose(zoo.load("digits_bnm", "savedmodel").predict(images), probabilities, atol=1e-5)
    onnx = zoo.load("digits_bnm", "onnx")
    np.testing.assert_allclose(onnx.predict(images), probabilities, atol=1e-4)
    accuracy = np.mean(onnx.class_names[probabilities.argmax(axis=1)].astype(int) == labels)
    assert accuracy == pytest.approx(entry["metrics"]["test_accuracy"], abs=0.5 / len(labels))


# --- One answer in every format -------------------------------------------


@pytest.fixture(scope="module")
def raw_digits():
    """All of sklearn's raw digits (0..16), as a user has them."""
    bunch = load_digits()
    return bunch.images, bunch.target


def _raw_input(name, raw_digits):
    """What a user feeds `zoo.preprocess(name, ...)`: the digits' raw images,
    or uint8 pixels of the model's input size (the glyphs models)."""
    spec = zoo.info(name)["input"]
    if spec["raw_format"] == "sklearn_digits":
        return raw_digits[0]
    shape = spec["shape"][1:]
    return np.random.default_rng(0).integers(0, 256, (64, *shape), dtype=np.uint8)


@pytest.mark.parametrize("name", zoo.available())
def test_every_format_names_the_same_class_by_the_documented_code(name, raw_digits):
    # The README's code, in every format: class_names[predict(x).argmax(1)].
    raw = _raw_input(name, raw_digits)
    entry = zoo.info(name)
    images = zoo.preprocess(name, raw)
    models = {format: zoo.load(name, format) for format in zoo.FORMATS}
    outputs = {format: model.predict(images) for format, model in models.items()}
    for format, model in models.items():
        assert model.kind == entry["kind"], format
        assert model.input_shape == tuple(entry["input"]["shape"]), format
        assert outputs[format].shape == (len(raw), model.output_size), format
        np.testing.assert_allclose(outputs[format], outputs["onnx"], atol=1e-4, err_msg=format)
    if entry["kind"] == "features":
        assert all(model.class_names is None for model in models.values())
        return
    named = {}
    for format, model in models.items():
        assert list(model.class_names) == entry["classes"], format
        named[format] = model.class_names[model.predict(images).argmax(1)]
        # Logits, the documented way, name the same classes.
        logits = model.predict(images, output="logits")
        np.testing.assert_array_equal(model.class_names[logits.argmax(1)], named[format])
        np.testing.assert_allclose(outputs[format].sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(named["keras"], named["onnx"])
    np.testing.assert_array_equal(named["savedmodel"], named["onnx"])


@pytest.mark.parametrize("name", ON_THE_RAW_TEST_SPLIT)
def test_the_documented_code_scores_the_published_accuracy_in_every_format(name, raw_digits_test):
    raw, labels = raw_digits_test
    images = zoo.preprocess(name, raw)
    published = zoo.info(name)["metrics"]["test_accuracy"]
    for format in zoo.FORMATS:
        model = zoo.load(name, format)
        accuracy = np.mean(model.class_names[model.predict(images).argmax(1)] == labels.astype(str))
        assert accuracy == pytest.approx(published, abs=1e-9), format


def test_lucirs_columns_are_not_digits_but_class_names_say_which(raw_digits_test):
    # Why class_names exist: LUCIR's output columns follow its class order.
    raw, labels = raw_digits_test
    model = zoo.load("digits_lucir", "keras")
    images = zoo.preprocess("digits_lucir", raw)
    assert np.mean(model.predict(images).argmax(1) == labels) < 0.05
    assert np.mean(model.class_names[model.predict(images).argmax(1)].astype(int) == labels) > 0.9


def test_the_underlying_objects_stay_reachable():
    keras_model = zoo.load("digits_baseline", "keras")
    assert isinstance(keras_model.model, keras.Model) and keras_model.layers  # forwarded
    logits = keras_model(GOOD, training=False)  # calling it calls the keras.Model
    np.testing.assert_allclose(keras_model.predict(GOOD, output="logits"), logits, atol=1e-6)
    served = zoo.load("digits_baseline")
    assert "serve" in served.signatures and served.model.signatures is served.signatures
    np.testing.assert_allclose(served.serve(GOOD)["logits"], logits, atol=1e-5)
    onnx = zoo.load("digits_baseline", "onnx")
    assert [o.name for o in onnx.model.get_outputs()] == ["logits", "probabilities"]


def test_an_edited_manifest_class_list_is_refused_at_load(zoo_copy):
    manifest_path = zoo_copy / "saved_models" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    classes = manifest["models"]["digits_lucir"]["classes"]
    classes[0], classes[1] = classes[1], classes[0]  # what the ONNX file does not say
    manifest["models"]["digits_baseline"]["classes"] = [str(i) for i in range(9)]  # one too few
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(
        zoo.ZooError,
        match=r"The manifest's classes for 'digits_lucir' \(\['8', '2', .*\]\) disagree with those "
        r"stored in export/digits_lucir.onnx \(\['2', '8', .*\]\); the manifest was edited: restore "
        r"it .*git checkout -- saved_models/manifest.json.* rebuild digits_lucir",
    ):
        zoo.load("digits_lucir", "onnx", root=zoo_copy)
    # The SavedModel and .keras files store no names, but their number of outputs.
    for format in ("savedmodel", "keras"):
        with pytest.raises(
            zoo.ZooError,
            match=r"classes for 'digits_baseline' do not fit the model: 9 class names given for a "
            r"model with 10 classes\. Restore the manifest",
        ):
            zoo.load("digits_baseline", format, root=zoo_copy)


# --- Preprocessing that cannot be fed the wrong scale silently --------------


@pytest.mark.parametrize(
    "transform, message",
    [
        (
            lambda raw: raw / 16,
            r"values in \[0, 1\] with fractions .*look already scaled .*"
            r"pass sklearn.datasets.load_digits\(\).images as they are",
        ),
        (lambda raw: raw / 16 * 15, r"must be whole numbers 0..16 .*look scaled or resized"),
        (inputs.digits_to_uint8, r"got \[0, 255\] \(these look like 0..255 pixels\)"),
        (lambda raw: raw[..., None], r"looks like model input already"),
        (lambda raw: raw[0], r"single image without the batch axis; pass raw\[None\]"),
        (lambda raw: raw - 1, r"must lie in \[0, 16\], got \[-1, 15\]"),
    ],
    ids=["images / 16", "rescaled", "0..255 pixels", "channel axis", "one image", "negative"],
)
def test_preprocess_refuses_what_is_not_raw_with_the_fix(transform, message, raw_digits_test):
    raw, _ = raw_digits_test
    for name in ("digits_baseline", "digits_git"):  # 8x8 and 16x16 models
        with pytest.raises(ValueError, match=message):
            zoo.preprocess(name, transform(raw))


def test_preprocess_accepts_genuine_raw_batches_with_a_small_maximum(raw_digits_test):
    # Raw digits are whole numbers: a faint batch (max 1) or a blank one is
    # still unambiguous raw data, unlike images / 16.
    raw, _ = raw_digits_test
    faint = np.minimum(raw[:5], 1)
    assert faint.max() == 1
    expected = np.round(faint * 255 / 16).astype(np.uint8)[..., None] * np.float32(1 / 255)
    np.testing.assert_array_equal(zoo.preprocess("digits_baseline", faint), expected)
    assert zoo.preprocess("digits_baseline", np.zeros((3, 8, 8))).max() == 0
    assert zoo.preprocess("digits_git", raw[:4].astype(np.uint8)).shape == (4, 16, 16, 1)
    assert zoo.preprocess("digits_git", np.zeros((0, 8, 8))).shape == (0, 16, 16, 1)


def test_images_over_16_score_a_tenth_so_they_are_refused(raw_digits_test, digits_test):
    # The silent failure the check prevents: fed through the model, digits
    # divided by 16 (and then taken as raw) give chance accuracy.
    raw, labels = raw_digits_test
    scaled_as_raw = inputs.digits_to_uint8(raw / 16)[..., None] / np.float32(255)
    model = zoo.load("digits_baseline", "onnx")
    assert np.mean(model.class_names[model.predict(scaled_as_raw).argmax(1)].astype(int) == labels) < 0.2


@pytest.mark.parametrize("name", ["digits_git", "digits_adco_probe", "digits_bnm"])
def test_preprocess_resizes_as_training_did_bit_for_bit(name, raw_digits_test, digits_test):
    # The 16x16 models trained on kerazoo.data.transforms.resize (TensorFlow);
    # zoo.preprocess does it with NumPy and must give the very same floats.
    from kerazoo.data.transforms import resize

    raw, _ = raw_digits_test
    images = zoo.preprocess(name, raw)
    assert images.shape[1:] == tuple(zoo.info(name)["input"]["shape"][1:]) == (16, 16, 1)
    assert sorted(map(bytes, images)) == sorted(map(bytes, resize(digits_test[0], 16)))


def test_preprocess_resizes_only_where_training_did():
    # glyphs_baseline trained on the 28x28 glyphs as they are (image_size 0).
    assert zoo.preprocess("glyphs_baseline", np.zeros((2, 28, 28, 1), np.uint8)).shape == (2, 28, 28, 1)
    for size in ((64, 64), (28, 32)):
        with pytest.raises(
            ValueError,
            match=rf"raw images are {size[0]}x{size[1]}; glyphs_baseline takes "
            r"28x28 images and was trained on its dataset's images at that size",
        ):
            zoo.preprocess("glyphs_baseline", np.zeros((2, *size, 1), np.uint8))


def test_preprocess_needs_no_tensorflow():
    code = """
import sys
from pathlib import Path
import numpy as np
from sklearn.datasets import load_digits
import kerazoo
for name in kerazoo.zoo.available():
    spec = kerazoo.zoo.info(name)["input"]
    if spec["raw_format"] == "sklearn_digits":
        raw = load_digits().images
    else:
        raw = np.zeros((2, *spec["shape"][1:]), np.uint8)
    kerazoo.zoo.preprocess(name, raw)
leaked = [m for m in ("tensorflow", "keras") if m in sys.modules]
assert not leaked, leaked
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# --- Small things -------------------------------------------------------------


def test_loading_prints_no_tensorflow_start_up_lines():
    # A user's own program: no TF_CPP_MIN_LOG_LEVEL, TensorFlow started by kerazoo.
    code = """
import numpy as np
import kerazoo
images = np.full((2, 8, 8, 1), 0.5, np.float32)
for format in kerazoo.zoo.FORMATS:
    model = kerazoo.zoo.load("digits_baseline", format)
    model.predict(images)
    model.predict(images, output="logits")
print("done")
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0 and result.stdout == "done\n", result.stderr
    assert result.stderr == "", result.stderr


def test_verify_reports_every_broken_model_and_file(cli, zoo_copy):
    broken = {
        "digits_lucir": "export/digits_lucir.onnx",
        "digits_batchformer": "saved_models/digits_batchformer/report.md",
    }
    for relative in broken.values():
        path = zoo_copy / relative
        path.write_bytes(path.read_bytes() + b"\0")
    (zoo_copy / "saved_models" / "digits_lucir" / "report.md").unlink()
    with pytest.raises(zoo.ChecksumError) as error:
        zoo.verify("digits_lucir", zoo_copy)
    assert "export/digits_lucir.onnx is corrupt" in str(error.value)
    assert "saved_models/digits_lucir/report.md is missing" in str(error.value)

    result = cli("kerazoo.zoo", "verify", "--root", zoo_copy)  # --root after the command
    assert result.returncode == 2, result.stderr
    for relative in [*broken.values(), "saved_models/digits_lucir/report.md"]:
        assert relative in result.stderr, result.stderr
    assert "2 broken model(s): digits_batchformer, digits_lucir" in result.stderr
    assert "digits_baseline: 8 files OK" in result.stdout
    assert "digits_lucir: 2 of 8 files broken" in result.stdout


def test_root_may_follow_the_command(cli, feature_run, tmp_path):
    run = feature_run[0]
    root = tmp_path / "zoo"
    published = cli("kerazoo.zoo", "publish", run, "digits_features", "--root", root)
    assert published.returncode == 0, published.stderr
    assert published.stdout.startswith(
        f"published digits_features in {root / 'saved_models' / 'digits_features'}:"
    )
    assert zoo.available(root) == ["digits_features"]
    listed = cli("kerazoo.zoo", "--root", root, "list")
    assert listed.stdout.startswith("digits_features: adco on digits"), listed.stderr


def test_summary_names_the_protocol_with_its_nuisance(tmp_path):
    # A model trained on digits-rot-lt keeps its nuisance; GIT's comes from
    # its config's transform (its dataset has none).
    manifest = json.loads((zoo.default_root() / "saved_models" / "manifest.json").read_text())
    rotated = manifest["models"]["digits_batchformer"]
    rotated["dataset"] = rotated["config"]["dataset"] = "digits-rot-lt"
    (tmp_path / "saved_models").mkdir()
    (tmp_path / "saved_models" / "manifest.json").write_text(json.dumps(manifest))
    assert zoo.summary("digits_batchformer", tmp_path) == "batchformer on digits-rot-lt, 10 classes"
    assert zoo.summary("digits_git", tmp_path) == "git on digits-bg-lt, 10 classes"
    assert zoo.summary("digits_adco", tmp_path) == "adco on digits, features"


def test_providers_and_session_options_apply_to_the_onnx_format_only():
    import onnxruntime

    with pytest.raises(ValueError, match="providers= configures ONNX Runtime, for format='onnx'"):
        zoo.load("digits_baseline", "keras", providers=["CPUExecutionProvider"])
    options = onnxruntime.SessionOptions()
    with pytest.raises(ValueError, match="session_options= configures ONNX Runtime, for format='onnx'"):
        zoo.load("digits_baseline", "keras", session_options=options)
    # A shared machine's serving process: one thread, the session's own options.
    options.intra_op_num_threads = 1
    model = zoo.load("digits_baseline", "onnx", session_options=options)
    assert model.model.get_session_options().intra_op_num_threads == 1
    assert list(model.class_names) == [str(i) for i in range(10)]
