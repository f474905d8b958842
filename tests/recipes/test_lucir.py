"""End-to-end runs of the LUCIR recipe."""

import json

import numpy as np
import pytest

from helpers.recipes import ROOT, run_config_on_mock_data
from helpers.resume import csv_rows, leftover_files, run_killed_then_resumed
from kerazoo.data.splits import class_order, incremental_phases
from kerazoo.recipes import lucir
from kerazoo.recipes.config import ConfigError, resolve

RECIPE = "kerazoo.recipes.lucir"
TOY = ["--set", "epochs=4", "--set", "num_seeds=1", "--set", "methods=lucir"]


@pytest.mark.slow
def test_killed_inside_and_between_phases_and_inside_cbf_resumes_to_the_same_numbers(cli, tmp_path):
    """One uninterrupted run, and one run SIGKILLed three times in turn: mid-
    phase 2, after phase 2's checkpoint, and inside phase 3's class-balanced
    finetuning; each re-run resumes where it was cut. (A kill during the
    export: tests/recipes/test_baseline.py.)"""
    # 4 base classes + 3 phases: phase 3, the last, holds the last kill point.
    args = [*TOY, "--set", "methods=lucir+cbf", "--set", "epochs=3", "--set", "cbf_epochs=3"]
    args += ["--set", "num_base=4", "--set", "num_phases=3"]
    args += ["--set", "backup_seconds=0", "--set", "exports=none"]
    full = cli(RECIPE, *args, "--out", tmp_path / "full")
    assert full.returncode == 0, full.stderr

    out = tmp_path / "killed"
    stage = "seed0-lucir+cbf"
    checkpoint = out / "checkpoints" / f"{stage}-phase2.weights.h5"
    resumed = run_killed_then_resumed(
        ["-m", RECIPE, *args, "--out", out],
        lambda: csv_rows(out / "logs" / f"{stage}-phase2.csv") >= 1 and not checkpoint.exists(),
        checkpoint.exists,
        lambda: csv_rows(out / "logs" / f"{stage}-phase3-cbf.csv") >= 1,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    assert f"{stage}-phase3-cbf: training" in resumed.stdout  # the cut stage trained on, from its backup
    assert f"{stage}-phase1: finished earlier" in (out / "run.log").read_text()
    a = json.loads((tmp_path / "full" / "metrics.json").read_text())
    b = json.loads((out / "metrics.json").read_text())
    assert (a["results"], a["details"]) == (b["results"], b["details"])
    assert (out / "accuracy_curve.png").exists()
    assert not leftover_files(out), leftover_files(out)


@pytest.mark.slow
def test_the_paper_protocol_runs_on_tfds_mock_data(tmp_path):
    # The protocol's class order, ResNet-32, growing heads and herding at
    # 16x16 (a quarter of the 32x32 cost), one epoch per phase, over the base
    # phase and one incremental phase: later phases run the same code (the
    # 5- and 10-phase plans are checked below).
    metrics, _ = run_config_on_mock_data(
        "lucir",
        "cifar100_lucir_5phases.toml",
        tmp_path,
        "epochs=1",
        "batch_size=16",
        "image_size=16",
        "methods=lucir",
        "flip_means=false",
        "num_phases=1",
    )
    details = metrics["details"]["0"]["lucir"]
    assert details["num_classes"] == [50, 100]
    assert details["class_order"][:3] == [68, 56, 78]  # LUCIR's CIFAR order, seed 1993
    assert len(details["per_phase_accuracy"]["lucir_nme"]) == 2


@pytest.mark.parametrize(
    "config, phases", [("cifar100_lucir_5phases.toml", 5), ("cifar100_lucir_10phases.toml", 10)]
)
def test_paper_configs_plan_the_papers_phases(config, phases):
    # The paper configs' phase plans; the code they run is the mock-data run
    # above, only with more phases (11 ResNet-32 phases would cost the suite
    # ~15 minutes).
    from kerazoo.recipes.lucir import LUCIRConfig

    resolved = resolve(LUCIRConfig, [str(ROOT / "recipes" / config)])
    plan = incremental_phases(np.arange(100), resolved.num_base, resolved.num_phases)
    assert [len(p) for p in plan] == [50] + [50 // phases] * phases
    assert (resolved.epochs, resolved.lr_milestones, resolved.exemplars_per_class) == (160, [80, 120], 20)
    assert class_order(100, resolved.class_order_seed)[:3].tolist() == [68, 56, 78]


@pytest.mark.slow
def test_the_recipe_runs_on_two_replicas_with_balanced_finetuning(two_replica_run):
    """The whole phase loop (growing heads, margin ranking's all-reduce, CBF's
    partial last batch, herding) under a 2-replica MirroredStrategy (the
    export of a 2-replica run: tests/recipes/test_baseline.py)."""
    # lucir+cbf trains LUCIR, then balances its head (iCaRL-CNN adds no
    # replica-specific code: its distillation is a per-sample loss).
    metrics, out = two_replica_run("lucir", "epochs=6", "num_seeds=1", "methods=lucir+cbf", "cbf_epochs=4")
    assert metrics["replicas"] == 2
    assert "seed0-lucir+cbf-phase4-cbf: 4 epochs in" in (out / "run.log").read_text()
    assert metrics["results"]["lucir+cbf"]["final_accuracy"][0] > 0.5  # chance is 0.1


def test_class_incremental_phases_on_your_own_image_folders(tmp_path):
    from helpers.image_folders import write_image_folders
    from kerazoo.recipes import lucir
    from kerazoo.recipes.config import ConfigError

    root = write_image_folders(
        tmp_path / "own", domains=("train", "test"), classes=("a", "b", "c", "d"), per_class=8, size=8
    )
    with pytest.raises(ConfigError, match=r"Cannot split 4 classes into 2 base classes and 4 equal phases"):
        resolve(lucir.LUCIRConfig, sets=["dataset=imagefolder", f"data_dir={root}"])
    sets = [
        "dataset=imagefolder",
        f"data_dir={root}",
        "num_base=2",
        "num_phases=1",
        "epochs=2",
        "exemplars_per_class=2",
        "batch_size=8",
        "num_seeds=1",
        "methods=lucir",
        "exports=keras",
    ]
    out = tmp_path / "run"
    lucir.RECIPE.main([*[arg for s in sets for arg in ("--set", s)], "--out", str(out)])
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["details"]["0"]["lucir"]["per_phase_accuracy"]) == {"lucir", "lucir_nme"}
    assert len(metrics["details"]["0"]["lucir"]["per_phase_accuracy"]["lucir"]) == 2  # base + one phase
    # The shipped model's columns are the user's classes in seed 0's class order.
    assert metrics["model"]["class_names"] == [["a", "b", "c", "d"][i] for i in class_order(4, 0)]


@pytest.mark.parametrize("milestones", ["40,20", "20,20", "0"])
def test_milestones_must_increase(milestones):
    # Keras' piecewise schedule takes unsorted boundaries without a word.
    with pytest.raises(ConfigError, match="lr_milestones"):
        resolve(lucir.LUCIRConfig, sets=["epochs=30", f"lr_milestones={milestones}"])
    assert resolve(lucir.LUCIRConfig, sets=["epochs=30", "lr_milestones=10,20"]).lr_milestones == [10, 20]


@pytest.mark.parametrize(
    "method, last_relu", [("lucir", False), ("cn", False), ("icarl", True), ("joint", True)]
)
def test_cosine_methods_drop_the_last_relu_and_the_linear_baselines_keep_it(method, last_relu):
    # As the LUCIR code: modified_resnet_cifar for its cosine models,
    # resnet_cifar for its iCaRL-CNN baseline.
    from kerazoo.recipes.lucir.experiment import build_backbone

    config = resolve(lucir.LUCIRConfig)
    images = np.random.default_rng(0).normal(size=(16, 8, 8, 1)).astype("float32")
    features = np.asarray(build_backbone(config, method, (8, 8, 1))(images, training=False))
    assert (features.min() >= 0) == last_relu
