"""End-to-end runs of `python -m kerazoo.recipes.baseline` in subprocesses."""

import csv
import json
import signal

import keras
import numpy as np
import pytest

from helpers import processes
from helpers.resume import assert_same_shipped_weights, leftover_files, run_killed_then_resumed, wait_until

RECIPE = "kerazoo.recipes.baseline"
TOY = ["--set", "epochs=2"]


def test_help_lists_every_field(cli):
    import dataclasses

    from kerazoo.recipes.baseline import BaselineConfig

    result = cli(RECIPE, "--help")
    assert result.returncode == 0
    for field in dataclasses.fields(BaselineConfig):
        assert field.name in result.stdout


def test_unknown_key_exits_non_zero_naming_valid_keys(cli):
    result = cli(RECIPE, "--set", "nonsense=1")
    assert result.returncode == 2
    assert "nonsense" in result.stderr and "epochs" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_two_replica_run_trains_and_exports(two_replica_run):
    metrics, out = two_replica_run("baseline", "epochs=5")
    assert metrics["replicas"] == 2
    assert metrics["results"]["erm"]["test_accuracy"][0] > 0.9
    assert (out / "model.onnx").exists()
    # The learning curve's held-out scores are the test split's, and say so.
    with open(out / "logs" / "seed0.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 and not any(key.startswith("val_") for key in rows[0])
    assert float(rows[-1]["test_accuracy"]) == pytest.approx(
        metrics["results"]["erm"]["test_accuracy"][0], abs=0.02
    )


def test_missing_dataset_says_how_to_provide_it(cli, tmp_path):
    result = cli(
        RECIPE, "--set", "dataset=cifar100", "--set", f"data_dir={tmp_path}", "--out", tmp_path / "run"
    )
    assert result.returncode == 2
    assert "cifar100" in result.stderr and "download_and_prepare" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()  # nothing left behind


@pytest.mark.slow
def test_default_run_reaches_95_percent_and_refuses_to_clobber(cli, tmp_path):
    out = tmp_path / "run"
    result = cli(RECIPE, "--out", out)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    (accuracy,) = metrics["results"]["erm"]["test_accuracy"]
    assert accuracy >= 0.95
    assert metrics["model"]["metrics"]["test_accuracy"] == accuracy
    for name in (
        "config.json",
        "report.md",
        "training_curves.png",
        "model.keras",
        "logs/seed0.csv",
        "checkpoints/seed0.weights.h5",
    ):
        assert (out / name).exists(), name
    assert any((out / "tensorboard").rglob("*tfevents*"))
    # The console: the stage line and the headline table, one seed without a spread.
    assert "seed0: 30 epochs in" in result.stdout
    assert f"| ERM baseline | {100 * accuracy:.1f} |" in result.stdout and "±" not in result.stdout
    assert "Epoch 1/30" not in result.stdout  # per-epoch lines only with --verbose
    # TensorFlow's start-up noise is silenced for the CLI.
    assert "oneDNN" not in result.stderr and "cuInit" not in result.stderr

    before = (out / "metrics.json").read_text()
    again = cli(RECIPE, "--out", out)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert (out / "metrics.json").read_text() == before
    changed = cli(RECIPE, *TOY, "--out", out, "--overwrite")
    assert changed.returncode == 0, changed.stderr
    assert json.loads((out / "config.json").read_text())["config"]["epochs"] == 2


def _epochs_logged(logs):
    """Epochs in the CSV log of the run's one training stage (whatever its name)."""
    files = list(logs.glob("*.csv"))
    assert len(files) <= 1, files
    if not files:
        return []
    with open(files[0]) as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


@pytest.mark.slow
def test_interrupted_killed_mid_epoch_and_while_exporting_resumes_to_an_uninterrupted_run(cli, tmp_path):
    # The resumed epoch must also redraw the same crops and flips: they are
    # keyed by (seed, epoch, position), not by RNG state.
    args = [
        "--set",
        "epochs=4",
        "--set",
        "batch_size=8",
        "--set",
        "augment=crop_flip",
        "--set",
        "backup_seconds=0",
    ]
    # Both runs must find the dataset prepared: preparing it draws from Python's
    # `random`, which Keras' initializers read too (a runner issue of its own).
    from kerazoo.data import load_arrays

    load_arrays("digits", "train")
    full = cli(RECIPE, *args, "--out", tmp_path / "full")
    assert full.returncode == 0, full.stderr

    out = tmp_path / "killed"
    # Ctrl-C (SIGINT) mid-epoch 2 of 4 stops it with the way to resume, not a traceback.
    interrupted = processes.Process(["-m", RECIPE, *args, "--out", out])
    wait_until(lambda: len(_epochs_logged(out / "logs")) >= 1, interrupted)
    interrupted.send_signal(signal.SIGINT)
    _, stderr = interrupted.communicate(timeout=120)
    assert interrupted.returncode == 130, stderr
    assert stderr.strip() == f"interrupted: re-run the same command to resume the run in {out}."
    # Then killed mid-epoch 3, and once model.keras is written and the
    # SavedModel and ONNX files are not yet.
    resumed = run_killed_then_resumed(
        ["-m", RECIPE, *args, "--out", out],
        lambda: len(_epochs_logged(out / "logs")) >= 2,
        (out / "model.keras").exists,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    epochs = _epochs_logged(out / "logs")
    assert epochs == [0, 1, 2, 3]  # no epoch trained twice, none skipped

    # Every recorded number is equal, except how long each invocation took.
    a, b = (
        {
            k: v
            for k, v in json.loads((path / "metrics.json").read_text()).items()
            if not k.startswith("seconds")
        }
        for path in (tmp_path / "full", out)
    )
    assert a == b
    assert_same_shipped_weights(tmp_path / "full", out)
    assert (out / "model" / "saved_model.pb").is_file() and (out / "model.onnx").is_file()
    assert not leftover_files(out), leftover_files(out)


def test_trains_and_reports_on_your_own_image_folder_with_a_long_tail(tmp_path, capsys):
    from helpers.image_folders import write_image_folders
    from kerazoo.recipes import baseline

    # root/<class>/<image>, images of varied sizes: 20 per class, 16 train / 4 test.
    root = write_image_folders(
        tmp_path / "pets", domains=(), classes=("ant", "bee", "cat", "dog"), per_class=20, channels=1
    )
    sets = ["dataset=imagefolder-lt", f"data_dir={root}", "epochs=3", "batch_size=8", "exports=keras"]
    argv = [arg for s in sets for arg in ("--set", s)]

    with pytest.raises(SystemExit) as exit_:  # mixed sizes need image_size
        baseline.RECIPE.main([*argv, "--out", str(tmp_path / "refused")])
    assert exit_.value.code == 2 and "set image_size" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()

    baseline.RECIPE.main([*argv, "--set", "image_size=8", "--out", str(tmp_path / "run")])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    (accuracy,) = metrics["results"]["erm"]["test_accuracy"]
    assert 0.0 <= accuracy <= 1.0
    assert metrics["model"]["class_names"] == ["ant", "bee", "cat", "dog"]
    assert metrics["model"]["input_shape"] == [None, 8, 8, 1]
    report = (tmp_path / "run" / "report.md").read_text()
    # The Zipf long tail (min 5) applied to the training split: one class keeps 16, the tail 5 each.
    counts = sorted(
        int(line.split("|")[2])
        for line in report.splitlines()
        if line.startswith(("| ant |", "| bee |", "| cat |", "| dog |"))
    )
    assert counts == [5, 5, 5, 16]
    assert f"image folders {root}" in report and "Zipf long tail" in report


@pytest.mark.slow
@pytest.mark.parametrize("precision, dtype", [("mixed", "bfloat16"), ("mixed_float16", "float16")])
def test_mixed_precision_trains_and_exports_float32(cli, tmp_path, precision, dtype):
    out = tmp_path / "run"
    result = cli(RECIPE, *TOY, "--set", f"precision={precision}", "--out", out)
    assert result.returncode == 0, result.stderr
    import kerazoo.models  # noqa: F401  registers the classes model.keras names

    assert keras.saving.load_model(out / "model.keras").compute_dtype == dtype
    from kerazoo.export import OnnxClassifier

    probabilities = OnnxClassifier(out / "model.onnx").predict(np.zeros((2, 8, 8, 1), "float32"))
    assert probabilities.dtype == np.float32 and np.allclose(probabilities.sum(1), 1, atol=1e-5)
