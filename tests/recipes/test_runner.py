"""The recipe runner: validation before anything is created, divergence,
the seeds loop, and exact kill-and-resume of a two-optimizer model (the run
directory's refusals: test_run_directory.py)."""

import importlib
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from helpers import processes
from helpers.resume import csv_rows, run_killed_then_resumed
from kerazoo.recipes import runner
from kerazoo.recipes.baseline import BaselineConfig
from kerazoo.recipes.config import resolve

TWO_PLAYER = Path(__file__).parents[1] / "helpers" / "two_player.py"
BASELINE = "kerazoo.recipes.baseline"


@pytest.mark.parametrize(
    "setting, message",
    [
        ("epochs=0", "'epochs' must be >= 1"),
        ("batch_size=0", "'batch_size' must be >= 1"),
        ("image_size=-5", "'image_size' must be >= 0"),
        ("backbone=vgg16", "choose from convnet, convnet5, ldam_resnet32, resnet18, resnet32"),
        ("dataset=digits-xyz", "Bad protocol name 'digits-xyz'"),
        ("learning_rate=nan", "'learning_rate' must be a finite number"),
        ("learning_rate=-0.1", "'learning_rate' must be >= 0.0"),
        ("num_seeds=0", "'num_seeds' must be >= 1"),
        ("dataset=imagenet_lt", "'imagenet_lt' is too large for memory and is read as a stream"),
    ],
)
def test_bad_values_stop_before_a_directory_is_made(cli, tmp_path, setting, message):
    out = tmp_path / "run"
    result = cli(BASELINE, "--set", setting, "--out", out)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(
    "setting, message",
    [
        ("num_base=20", "Cannot split 10 classes into 20 base classes"),
        ("num_phases=3", "Cannot split 10 classes into 2 base classes and 3 equal phases"),
        ("methods=lucir,nonsense", "'methods' got 'nonsense'"),
    ],
)
def test_cross_field_checks_of_lucir_run_first(cli, tmp_path, setting, message):
    result = cli("kerazoo.recipes.lucir", "--set", setting, "--out", tmp_path / "run")
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_nan_loss_stops_training_and_writes_no_model(cli, tmp_path):
    out = tmp_path / "run"
    result = cli(BASELINE, "--set", "epochs=2", "--set", "learning_rate=1e30", "--out", out)
    assert result.returncode == 1, result.stderr
    assert "training loss became nan" in result.stderr and "Lower the learning rate" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (out / "model.keras").exists() and not (out / "model").exists()
    assert (
        "error: stage 'seed0': the training loss became nan" in (out / "run.log").read_text().splitlines()[-1]
    )


def test_a_corrected_rerun_after_a_config_error_just_works(cli, tmp_path):
    out = tmp_path / "run"
    assert cli(BASELINE, "--set", "epochs=0", "--out", out).returncode == 2
    result = cli(BASELINE, "--set", "epochs=1", "--set", "exports=none", "--out", out)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_seeds_loop_reports_mean_and_std(two_replica_run):
    metrics, out = two_replica_run("baseline", "epochs=2", "num_seeds=2")
    assert metrics["seeds"] == [0, 1]
    values = metrics["results"]["erm"]["test_accuracy"]
    assert len(values) == 2
    # Each seed trained its own model (accuracies alone may coincide: 348 of
    # 360 on both seeds in one process).
    assert (out / "logs" / "seed0.csv").read_text() != (out / "logs" / "seed1.csv").read_text()
    report = (out / "report.md").read_text()
    mean, std = 100 * np.mean(values), 100 * np.std(values)
    assert f"{mean:.1f} ± {std:.1f}" in report and "mean ± std over 2 seeds" in report


def test_one_process_trains_the_shipped_pair_last_and_only_if_asked_for():
    pairs = [(s, m) for s in (0, 1) for m in ("ce", "bnm")]
    assert runner.sequential_order(pairs, (0, "bnm")) == [(0, "ce"), (1, "ce"), (1, "bnm"), (0, "bnm")]
    assert runner.sequential_order(pairs, (0, "fbnm")) == pairs  # methods without the shipped one


def test_the_shipped_pair_runs_last_on_a_kept_model_and_exports_its_own_weights(tmp_path):
    # One process: seed 1 trains first and keeps its model; the shipped pair
    # (seed 0) then trains that object. Its export must be seed 0's model,
    # bit for bit the one a one-seed run exports.
    recipe = importlib.import_module("kerazoo.recipes.batchformer").RECIPE
    toy = ["epochs=2", "passes_per_epoch=1", "methods=balanced_softmax_batchformer", "exports=keras"]
    for seeds in (1, 2):
        sets = [a for s in (*toy, f"num_seeds={seeds}") for a in ("--set", s)]
        recipe.main([*sets, "--jobs", "1", "--out", str(tmp_path / f"seeds{seeds}")])
    log = (tmp_path / "seeds2" / "run.log").read_text()
    assert log.index("seed1-balanced_softmax_batchformer: training") < log.index(
        "seed0-balanced_softmax_batchformer: training"
    )
    assert "seed0: the next stage trains a kept model" in log
    one, two = (keras.saving.load_model(tmp_path / f"seeds{n}" / "model.keras") for n in (1, 2))
    for a, b in zip(one.get_weights(), two.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    first, both = (json.loads((tmp_path / f"seeds{n}" / "metrics.json").read_text()) for n in (1, 2))
    assert both["model"] == first["model"]
    assert (
        both["results"]["balanced_softmax_batchformer"]["test_accuracy"][0]
        == first["results"]["balanced_softmax_batchformer"]["test_accuracy"][0]
    )


@pytest.mark.slow
def test_two_optimizers_resume_exactly_after_sigkill(tmp_path):
    """Every weight and both optimizers' slots of a model trained on two
    augmented views per image end the same after SIGKILL mid-epoch and a
    re-run as without the interruption."""
    args = [TWO_PLAYER, "--set", "epochs=6", "--set", "backup_seconds=0"]
    full = tmp_path / "full"
    done = processes.run([*args, "--out", full])
    assert done.returncode == 0, done.stderr
    killed = tmp_path / "killed"
    log = killed / "logs" / "two-player.csv"
    resumed = run_killed_then_resumed([*args, "--out", killed], lambda: csv_rows(log) >= 3)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    epochs = [int(line.split(",")[0]) for line in log.read_text().splitlines()[1:]]
    assert epochs == list(range(6))  # no epoch trained twice, none skipped
    a = json.loads((full / "metrics.json").read_text())["details"]["0"]["two-player"]["state"]
    b = json.loads((killed / "metrics.json").read_text())["details"]["0"]["two-player"]["state"]
    assert len(a) == len(b) > 4  # weights, bank, both optimizers' slots and counters
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.slow
def test_a_fresh_data_directory_gives_the_same_numbers(tmp_path):
    """Preparing a dataset the first time must not move the random state
    (it once did: 87.5 % on a fresh data dir, 85.8 % on a prepared one)."""
    import os

    env = {**os.environ, "KERAZOO_DATA_DIR": str(tmp_path / "data")}
    accuracies = []
    for name in ("fresh", "prepared"):
        done = processes.run(
            ["-m", BASELINE, "--set", "epochs=1", "--set", "exports=none", "--out", tmp_path / name], env=env
        )
        assert done.returncode == 0, done.stderr
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        accuracies.append(metrics["results"]["erm"]["test_accuracy"])
    assert accuracies[0] == accuracies[1]


# Your own data (dataset=imagefolder / arrays): every recipe's config takes it, and names a bad data_dir.
from helpers.image_folders import write_image_folders  # noqa: E402

OWN_DATA = {
    "baseline": "imagefolder-lt",
    "lucir": "imagefolder",
    "bnm": "imagefolder",
    "batchformer": "imagefolder-lt",
    "adco": "imagefolder",
    "git": "imagefolder-lt",
}


@pytest.mark.parametrize("recipe", sorted(OWN_DATA))
def test_every_recipe_accepts_your_own_image_folders(recipe, config_class, tmp_path):
    root = write_image_folders(tmp_path, domains=(), classes=tuple("abcdefghij"), per_class=2, size=4)
    config = resolve(config_class(recipe), sets=[f"dataset={OWN_DATA[recipe]}", f"data_dir={root}"])
    assert config.data_dir == str(root)


@pytest.mark.parametrize(
    "sets, message",
    [
        (
            ["dataset=imagefolder"],
            "Config key 'data_dir': dataset=imagefolder reads your data from data_dir, which is not set",
        ),
        (
            ["dataset=arrays-lt", "data_dir={tmp}/mine.npz"],
            "does not exist; dataset=arrays needs an .npz file",
        ),
        (["dataset=arrays", "data_dir={tmp}"], "is a folder; dataset=arrays needs"),
    ],
)
def test_a_bad_data_dir_for_your_own_data_is_a_config_error(sets, message, tmp_path):
    with pytest.raises(runner.ConfigError, match=message):
        resolve(BaselineConfig, sets=[s.format(tmp=tmp_path) for s in sets])


def test_a_run_in_this_process_leaves_op_determinism_as_it_was(tmp_path):
    from tensorflow.python.framework import config as tf_config

    from kerazoo.recipes import baseline

    assert not tf_config.is_op_determinism_enabled()
    baseline.RECIPE.main(["--set", "epochs=1", "--set", "exports=none", "--out", str(tmp_path / "run")])
    assert not tf_config.is_op_determinism_enabled()


def test_sigterm_ends_a_process_that_made_a_multiworker_strategy():
    # TensorFlow's preemption notifier takes SIGTERM over when the strategy
    # is made and only logs it; a scheduler's SIGTERM must end the run.
    from helpers.multiworker import cluster_configs

    code = (
        "import os, signal, time\n"
        "from kerazoo.recipes.runner import make_strategy\n"
        "make_strategy('multiworker')\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "time.sleep(5)\n"
        "print('still alive')\n"
    )
    result = processes.run(["-c", code], env={"TF_CONFIG": cluster_configs(1)[0]}, timeout=120)
    assert result.returncode == -15 and "still alive" not in result.stdout, result.stderr[-2000:]
