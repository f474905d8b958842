"""The BNM recipe: config checks, toy end-to-end runs (DA on two replicas,
SSL) and the paper-protocol configs on generated or mock data."""

import json
import os
import types

import pytest

from helpers.image_folders import write_image_folders
from helpers.recipes import run_config_on_mock_data
from kerazoo.recipes import bnm
from kerazoo.recipes.bnm import experiment
from kerazoo.recipes.config import ConfigError, resolve

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
TOML = os.path.join(ROOT, "recipes", "{}")


@pytest.mark.parametrize(
    "sets, message",
    [
        (["methods=[]"], "methods"),
        (["dataset=imagefolder", "source_domain=amazon"], "target_domain"),
        (["dataset=imagefolder", "data_dir=/x", "source_domain=a", "target_domain=b", "task=ssl"], "task=da"),
        (["normalization=sum"], "normalization"),
    ],
)
def test_bad_configs_are_refused_before_anything_runs(sets, message):
    with pytest.raises(ConfigError, match=message):
        resolve(bnm.BNMConfig, sets=sets)


def test_own_image_folders_without_domains_are_shifted_or_few_labelled(tmp_path):
    root = write_image_folders(tmp_path, domains=(), per_class=4, size=6)
    for task in ("da", "ssl"):
        config = resolve(bnm.BNMConfig, sets=["dataset=imagefolder", f"data_dir={root}", f"task={task}"])
        assert not config.domain_folders
    images, labels, unlabelled, eval_images, eval_labels, target = experiment._data(
        resolve(
            bnm.BNMConfig, sets=["dataset=imagefolder", f"data_dir={root}", "task=ssl", "labels_per_class=1"]
        )
    )
    assert images.shape == (3, 16, 16, 3) and len(unlabelled) == 6 and len(eval_labels) == 3


def test_a_batch_larger_than_the_set_it_is_drawn_from_names_its_key(tmp_path):
    root = write_image_folders(tmp_path, domains=(), per_class=4, size=6)
    sets = ["dataset=imagefolder", f"data_dir={root}", "task=ssl", "labels_per_class=1"]
    config = resolve(bnm.BNMConfig, sets=sets)
    with pytest.raises(
        ConfigError, match=r"'unlabelled_batch_size' \(64\) exceeds the unlabelled set \(6 images\)"
    ):
        experiment.prepare(config, types.SimpleNamespace())


@pytest.mark.parametrize("name", ["digits_bnm_da.toml", "digits_bnm_da_rot.toml", "digits_bnm_ssl.toml"])
def test_digits_configs_resolve(name):
    config = resolve(bnm.BNMConfig, files=[TOML.format(name)])
    assert config.methods == ["none", "entmin", "bnm", "fbnm"]


@pytest.mark.parametrize(
    "sets, evaluated_on",
    [
        ([], "the digits test split under the bg shift (the target domain)"),
        (["shift=rot"], "the digits test split under the rot shift (the target domain)"),
        (["dataset=glyphs", "shift=fonts"], "the target domain's test images of the glyphs fonts split"),
        (["task=ssl", "dataset=digits-rot"], "the digits-rot test split"),
    ],
)
def test_the_model_record_says_its_accuracy_is_the_target_domains(sets, evaluated_on):
    # `python -m kerazoo.zoo list` prints it after the metrics.
    assert resolve(bnm.BNMConfig, sets=sets).evaluated_on == evaluated_on


def test_domain_folders_are_evaluated_on_the_target_folder(tmp_path):
    root = write_image_folders(tmp_path, domains=("amazon", "webcam"), per_class=1, size=6)
    sets = ["dataset=imagefolder", f"data_dir={root}", "source_domain=amazon", "target_domain=webcam"]
    assert resolve(bnm.BNMConfig, sets=[*sets, "image_size=8"]).evaluated_on == "the webcam target domain"


@pytest.mark.slow
def test_toy_runs_report_every_method_and_ship_bnm(two_replica_run, tmp_path):
    # Domain adaptation under a MirroredStrategy over two logical CPUs.
    metrics, out = two_replica_run("bnm", "steps=11", "warmup_steps=3", "num_seeds=1")
    assert metrics["replicas"] == 2
    results = metrics["results"]
    assert list(results) == ["none", "entmin", "bnm", "fbnm"]
    for row in results.values():
        assert all(1 <= n <= 10 for n in row["predicted_classes"])
        assert all(0 < v <= 60.0 for v in row["nuclear_norm"])  # 360 x 10: at most 60
    spectra = metrics["details"]["0"]["bnm"]["singular_values"]
    assert len(spectra) == 10 and spectra == sorted(spectra, reverse=True)
    assert metrics["model"]["metrics"]["test_accuracy"] == results["bnm"]["test_accuracy"][0]
    assert metrics["model"]["evaluated_on"] == "the digits test split under the bg shift (the target domain)"
    report = (out / "report.md").read_text()
    assert "BNM − CE only" in report and "singular_values.png" in report
    assert (out / "singular_values.png").exists() and (out / "model.onnx").exists()

    # Semi-supervised, one device, in this process.
    bnm.RECIPE.main(
        [
            "--set",
            "task=ssl",
            "--set",
            "steps=21",
            "--set",
            "num_seeds=1",
            "--set",
            "methods=none,bnm",
            "--out",
            str(tmp_path / "ssl"),
        ]
    )
    ssl = json.loads((tmp_path / "ssl" / "metrics.json").read_text())
    assert list(ssl["results"]) == ["none", "bnm"]
    assert "5 labels per class" in (tmp_path / "ssl" / "report.md").read_text()


@pytest.mark.slow
def test_paper_protocols_run_on_generated_or_mock_data(tmp_path):
    # CE only: the BNM term and the export are covered by the toy run; this
    # runs each protocol's data, backbone, optimizer and schedule.
    toy = [
        "steps=2",
        "batch_size=4",
        "unlabelled_batch_size=4",
        "image_size=32",
        "methods=none",
        "exports=none",
    ]
    # Office-Home differs from Office-31 only in its domain names, checked
    # by test_office_configs_name_their_domains.
    data = write_image_folders(tmp_path / "office31", domains=("amazon", "webcam"))
    out = tmp_path / "office31-run"
    sets = [arg for setting in (*toy, f"data_dir={data}") for arg in ("--set", setting)]
    bnm.RECIPE.main(["--config", TOML.format("office31_bnm.toml"), *sets, "--out", str(out)])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["details"]["0"]["none"]["eval_shape"] == [9, 3]  # the whole target domain

    metrics, _ = run_config_on_mock_data(
        "bnm",
        "cifar100_bnm_ssl.toml",
        tmp_path / "cifar",
        *toy,
        "labels_per_class=1",
        num_examples=200,  # one epoch of the paired stream: 100 unlabelled / 4 = 25 steps
    )
    assert metrics["details"]["0"]["none"]["eval_shape"][1] == 100


@pytest.mark.parametrize(
    "config, domains",
    [("office31_bnm.toml", ("amazon", "webcam")), ("officehome_bnm.toml", ("Art", "Clipart"))],
)
def test_office_configs_name_their_domains(config, domains, tmp_path):
    office31 = resolve(bnm.BNMConfig, [TOML.format("office31_bnm.toml")], sets=[f"data_dir={tmp_path}"])
    resolved = resolve(bnm.BNMConfig, [TOML.format(config)], sets=[f"data_dir={tmp_path}"])
    assert (resolved.source_domain, resolved.target_domain) == domains
    differing = {k for k, v in vars(resolved).items() if vars(office31)[k] != v}
    assert differing <= {"source_domain", "target_domain"}
