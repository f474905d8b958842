"""Run a recipe's TOML config end to end on tfds mock data."""

import importlib
import json
from pathlib import Path

import tensorflow_datasets as tfds

ROOT = Path(__file__).parents[2]

# The GIT recipe's translator at toy size (`key=value` settings): tracing its
# training step and an epoch of digits-lt at batch 16 take seconds, and its
# style draws are the default translator's.
GIT_TOY_TRANSLATOR = [
    "translator_dim=8",
    "translator_n_res=1",
    "translator_mlp_dim=16",
    "disc_dim=8",
    "disc_layers=2",
]


def run_config_on_mock_data(recipe, config, tmp_path, *sets, num_examples=1000):
    """Run `python -m kerazoo.recipes.<recipe> --config recipes/<config>
    --set ...` in this process, with tfds serving `num_examples` random
    examples per split in place of the real dataset; return (metrics.json,
    run directory).

    The mock data tests a paper protocol's splits, phases, backbone and
    optimizer, not its accuracy; the run writes only model.keras
    (`exports=keras`: the SavedModel and ONNX exports, a minute for a
    ResNet-50, are tested by the recipes' toy runs).
    """
    module = importlib.import_module(f"kerazoo.recipes.{recipe}")
    out = tmp_path / "run"
    argv = ["--config", str(ROOT / "recipes" / config)]
    for setting in ("exports=keras", *sets, f"data_dir={tmp_path / 'data'}"):
        argv += ["--set", setting]
    with tfds.testing.mock_data(num_examples=num_examples):
        module.RECIPE.main([*argv, "--out", str(out)])
    return json.loads((out / "metrics.json").read_text()), out
