"""The AdCo recipe: config checks, a toy run on two replicas with both exports, the ImageNet
paper config on tfds mock data."""

import json
import os
import types

import keras
import numpy as np
import pytest

from helpers.export import softmax
from helpers.recipes import run_config_on_mock_data
from kerazoo import zoo
from kerazoo.export import OnnxClassifier
from kerazoo.models import Classifier, FeatureExtractor
from kerazoo.recipes.adco.experiment import plot_curves
from kerazoo.recipes.config import ConfigError, resolve

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def test_defaults_and_the_digits_toml_agree(config_class):
    cls = config_class("adco")
    default = resolve(cls)
    assert default == resolve(cls, [os.path.join(ROOT, "recipes", "digits_adco.toml")])
    assert (default.bank_size, default.key_momentum, default.num_seeds) == (1024, 0.99, 3)
    assert default.methods == ["raw", "adco", "moco", "supervised", "random"]


def test_the_paper_toml_holds_the_official_hyperparameters(config_class):
    paper = resolve(config_class("adco"), [os.path.join(ROOT, "recipes", "imagenet_adco.toml")])
    assert (paper.backbone, paper.bank_size, paper.epochs, paper.batch_size) == ("resnet50", 65536, 200, 256)
    assert (paper.learning_rate, paper.final_learning_rate, paper.key_momentum) == (0.03, 6e-4, 0.999)
    assert (paper.temperature, paper.bank_temperature, paper.bank_lr, paper.bank_init) == (
        0.12,
        0.02,
        3.0,
        "keys",
    )


@pytest.mark.parametrize(
    "sets, message",
    [
        (["methods=[]"], "methods"),
        (["shuffle_groups=3"], "shuffle_groups"),
        (["bank_size=64"], "bank_size"),
        (["dataset=digits-lt"], "dataset"),
    ],
)
def test_bad_configs_are_refused(config_class, sets, message):
    with pytest.raises(ConfigError, match=message):
        resolve(config_class("adco"), sets=sets)


@pytest.mark.slow
def test_toy_run_on_two_replicas_reports_every_encoder_and_ships_features_and_a_probe(
    two_replica_run, tmp_path
):
    metrics, out = two_replica_run(
        "adco",
        "epochs=2",
        "batch_size=64",
        "bank_size=128",
        "num_seeds=1",
        "probe_every=1",
        "max_train_images=512",  # the probes' regressions fit on 512 images, not 1,437
        "methods=raw,adco,random",
    )
    assert metrics["replicas"] == 2
    assert list(metrics["results"]) == ["raw", "adco", "random"]
    assert list(metrics["methods"].values()) == ["raw pixels", "AdCo", "random init"]
    adco = metrics["results"]["adco"]
    assert 0.1 < adco["linear_probe"][0] <= 1.0 and 0.1 < adco["knn"][0] <= 1.0
    assert 1.0 < adco["bank_rank"][0] <= 32.0 and np.isfinite(adco["bank_loss"][0])
    assert "bank_loss" not in metrics["results"]["random"]  # no bank to score
    assert [p[0] for p in metrics["details"]["0"]["adco"]["probe_curve"]] == [1, 2]
    report = (out / "report.md").read_text()
    assert "(probe_curve.png)" in report and "| AdCo − random init |" in report
    assert (out / "probe_curve.png").stat().st_size > 0

    # The encoder ships as features, its linear probe as a classifier; both publish.
    assert metrics["model"]["kind"] == "features"
    assert type(keras.saving.load_model(out / "model.keras")) is FeatureExtractor
    probe = keras.saving.load_model(out / "probe" / "model.keras")
    assert type(probe) is Classifier
    images = np.random.default_rng(0).uniform(0, 1, (5, 16, 16, 1)).astype("float32")
    onnx = OnnxClassifier(out / "probe" / "model.onnx", providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(onnx.predict(images), softmax(np.asarray(probe(images))), atol=1e-4)
    assert abs(metrics["report"]["probe_classifier_accuracy"] - adco["linear_probe"][0]) < 0.02
    root = tmp_path / "zoo"
    assert zoo.publish(out, "toy_adco", root=root)["kind"] == "features"
    probe_entry = zoo.publish(out / "probe", "toy_adco_probe", root=root)
    assert (probe_entry["kind"], probe_entry["run_subdir"]) == (
        "classifier",
        "probe",
    )  # what rebuild publishes


def test_probe_curve_plots_the_probes_that_ran_and_nothing_when_none_did(tmp_path):
    def seeds(curve):
        result = types.SimpleNamespace(details={"probe_curve": curve})
        return {0: {"adco": result, "random": result}, 1: {"adco": result, "random": result}}

    # Shorter than probe_every: no point to draw, no empty plot (nor matplotlib's
    # "No artists with labels" warning).
    assert not plot_curves(seeds([]), tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
    assert plot_curves(seeds([(5, 0.5), (10, 0.7)]), tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 0


@pytest.mark.slow
def test_imagenet_paper_config_runs_on_tfds_mock_data(tmp_path):
    # Tiny sizes: the test runs the protocol's pieces (ad_init, K, 1000 classes, the
    # validation split), not its accuracy; ResNet-18 for ResNet-50, whose two
    # encoders and ONNX exports alone took ~14 minutes on the shared 2 cores.
    metrics, out = run_config_on_mock_data(
        "adco",
        "imagenet_adco.toml",
        tmp_path,
        "backbone=resnet18",
        "image_size=32",
        "batch_size=8",
        "bank_size=16",
        "shuffle_groups=2",
        "epochs=1",
        "max_train_images=16",
        "methods=adco",
        "knn_k=2",
        num_examples=16,
    )
    assert list(metrics["results"]) == ["adco"]
    assert (out / "logs" / "seed0-adco-ad_init.csv").exists()
    config = json.loads((out / "config.json").read_text())["config"]
    assert (config["dataset"], config["bank_init"], config["bank_size"]) == ("imagenet2012", "keys", 16)
    assert metrics["model"]["kind"] == "features"
    assert keras.saving.load_model(out / "probe" / "model.keras").num_classes == 1000


def test_the_zoo_adco_models_reproduce_their_recorded_scores_in_every_format():
    from kerazoo.data import load_arrays
    from kerazoo.data.transforms import resize

    for name in ("digits_adco", "digits_adco_probe"):
        zoo.verify(name)
    entry = zoo.info("digits_adco_probe")
    size = entry["config"]["image_size"]
    images, labels, _ = load_arrays("digits", "test")
    images = resize(images, size)
    assert zoo.info("digits_adco")["input"]["shape"] == entry["input"]["shape"] == [None, size, size, 1]
    assert entry["run_subdir"] == "probe" and "run_subdir" not in zoo.info("digits_adco")
    features = np.asarray(zoo.load("digits_adco", "keras")(images, training=False))
    np.testing.assert_allclose(zoo.load("digits_adco", "onnx").predict(images), features, atol=1e-4)
    probabilities = softmax(np.asarray(zoo.load("digits_adco_probe", "keras")(images, training=False)))
    np.testing.assert_allclose(
        zoo.load("digits_adco_probe", "onnx").predict(images), probabilities, atol=1e-4
    )
    accuracy = np.mean(probabilities.argmax(axis=1) == labels)
    assert accuracy == pytest.approx(entry["metrics"]["test_accuracy"], abs=0.5 / len(labels))


@pytest.mark.slow
def test_every_stage_probe_and_export_prints_when_it_starts_and_ends(cli, tmp_path):
    result = cli(
        "kerazoo.recipes.adco",
        "--set",
        "methods=raw,adco",
        "--set",
        "epochs=2",
        "--set",
        "probe_every=1",
        "--set",
        "num_seeds=1",
        "--set",
        "max_train_images=256",
        "--set",
        "bank_size=256",
        "--out",
        tmp_path / "run",
    )
    assert result.returncode == 0, result.stderr
    lines = [line.split("] ", 1)[1] for line in result.stdout.splitlines() if line.startswith("[")]
    for started, ended in [
        ("seed0-adco: training 2 epochs ...", "seed0-adco: 2 epochs in "),
        ("seed0-raw: linear probe and kNN ...", "seed0-raw: linear probe and kNN: "),
        ("seed0-adco: linear probe and kNN ...", "seed0-adco: linear probe and kNN: "),
        ("export (model.keras, SavedModel, ONNX) ...", "export (model.keras, SavedModel, ONNX): "),
        (
            "export of the linear probe as a classifier (probe/) ...",
            "export of the linear probe as a classifier (probe/): ",
        ),
    ]:
        assert started in lines, lines
        assert any(line.startswith(ended) for line in lines[lines.index(started) + 1 :]), lines
    probes = [line for line in lines if line.startswith("seed0-adco: linear probe after epoch")]
    assert len(probes) == 2, lines


def test_reads_your_own_arrays_through_the_same_loader(tmp_path):
    from kerazoo.recipes import adco
    from kerazoo.recipes.adco import experiment

    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (8, 10, 10, 3), dtype=np.uint8),
        y_train=np.arange(8) % 2,
        x_test=rng.integers(0, 256, (4, 10, 10, 3), dtype=np.uint8),
        y_test=np.arange(4) % 2,
        class_names=np.array(["no", "yes"]),
    )
    config = resolve(adco.AdCoConfig, sets=["dataset=arrays", f"data_dir={path}", "image_size=6"])
    images, labels, names = experiment._split(config, "train", limit=5)
    assert images.shape == (5, 6, 6, 3) and list(labels) == [0, 1, 0, 1, 0] and names == ["no", "yes"]
    with pytest.raises(ConfigError, match="AdCo runs on a plain dataset without modifiers"):
        resolve(adco.AdCoConfig, sets=["dataset=arrays-lt", f"data_dir={path}"])
