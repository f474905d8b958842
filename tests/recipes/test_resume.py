"""Kill-and-resume: the real process is SIGKILLed, the same command resumes
it, and the run ends with the metrics and shipped weights of an
uninterrupted run with the same seed, and no partial file left behind.

Killed inside a training stage in the recipes whose own tests do not cover
it (GIT: its translator), random draws included: dropout masks
(BatchFormer), MUNIT's styles (GIT's translator) and AdCo's probe points
survive the kill. The baseline's (mid-epoch with augmentation, during the
export) and LUCIR's (inside and between phases, inside class-balanced
finetuning) are in their own tests."""

import json

import pytest

from helpers.recipes import GIT_TOY_TRANSLATOR
from helpers.resume import assert_same_shipped_weights, csv_rows, leftover_files, run_killed_then_resumed

COMMON = ["--set", "num_seeds=1", "--set", "backup_seconds=0", "--set", "exports=keras"]
# recipe -> (tiny settings, the stage to kill, the epochs it must have logged first)
CASES = {
    "bnm": (["--set", "steps=60", "--set", "warmup_steps=10", "--set", "methods=none,bnm"], "seed0-bnm", 2),
    "batchformer": (
        [
            "--set",
            "epochs=4",
            "--set",
            "passes_per_epoch=1",
            "--set",
            "methods=balanced_softmax,balanced_softmax_batchformer",
        ],
        "seed0-balanced_softmax_batchformer",
        2,
    ),
    "adco": (
        [
            "--set",
            "epochs=4",
            "--set",
            "probe_every=2",
            "--set",
            "max_train_images=512",  # 4 steps an epoch; the probes' regressions on 512 images
            "--set",
            "methods=adco,random",
        ],
        "seed0-adco",
        2,
    ),
    "git": (
        [
            "--set",
            "translator_epochs=3",
            "--set",
            "translator_batch_size=16",
            *(arg for setting in GIT_TOY_TRANSLATOR for arg in ("--set", setting)),
            "--set",
            "diagnostic_styles=2",
            "--set",
            "epochs=4",
            "--set",
            "drs_epoch=2",
            "--set",
            "ekld_transforms=2",
            "--set",
            "methods=ce_drs,ce_drs_git",
        ],
        "translator",
        1,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("recipe", list(CASES))
def test_killed_inside_a_stage_resumes_to_the_uninterrupted_numbers(recipe, cli, tmp_path):
    settings, stage, epochs = CASES[recipe]
    module = f"kerazoo.recipes.{recipe}"
    full = cli(module, *COMMON, *settings, "--out", tmp_path / "full")
    assert full.returncode == 0, full.stderr

    out = tmp_path / "killed"
    resumed = run_killed_then_resumed(
        ["-m", module, *COMMON, *settings, "--out", out],
        lambda: (
            csv_rows(out / "logs" / f"{stage}.csv") >= epochs
            and not (out / "checkpoints" / f"{stage}.weights.h5").exists()
        ),
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"{stage}: training" in resumed.stdout  # the cut stage trained on, from its backup
    a = json.loads((tmp_path / "full" / "metrics.json").read_text())
    b = json.loads((out / "metrics.json").read_text())
    assert (a["results"], a["details"]) == (b["results"], b["details"])
    assert_same_shipped_weights(tmp_path / "full", out)
    assert not leftover_files(out), leftover_files(out)


@pytest.mark.slow
def test_a_kept_model_trains_the_next_seeds_stage_in_full_after_a_resumed_one(cli, tmp_path):
    # One process trains seed 0's stage, is killed inside it, resumes it
    # from its backup, and then trains seed 1's stage on the same kept model
    # (Run.reuse): Keras' restore had left the resumed epoch on that model,
    # and seed 1's fit skipped as many epochs.
    settings = ["--set", "epochs=4", "--set", "passes_per_epoch=1", "--set", "methods=balanced_softmax"]
    args = ["--set", "num_seeds=2", "--set", "backup_seconds=0", "--set", "exports=none", "--jobs", "1"]
    module = "kerazoo.recipes.batchformer"
    full = cli(module, *args, *settings, "--out", tmp_path / "full")
    assert full.returncode == 0, full.stderr
    out = tmp_path / "killed"
    resumed = run_killed_then_resumed(
        ["-m", module, *args, *settings, "--out", out],
        lambda: csv_rows(out / "logs" / "seed0-balanced_softmax.csv") >= 2,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "seed0-balanced_softmax: resumed from its backup after epoch" in resumed.stdout
    assert csv_rows(out / "logs" / "seed1-balanced_softmax.csv") == 4
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (tmp_path / "full", out))
    assert (a["results"], a["details"]) == (b["results"], b["details"])
