"""The glyphs benchmark configs (recipes/glyphs_*.toml): each states the
protocol docs/benchmark.md reports, and each runs end to end, with tiny
settings, on a real but small `glyphs` build (tests/conftest.py's
`small_glyphs`: 100 training and 10 test images per class; the full runs
are not part of the suite)."""

import json
import os

import pytest

from kerazoo.recipes.config import resolve

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

# config -> (recipe, the settings that make it tiny)
TINY = {
    "glyphs_baseline.toml": ("baseline", ["epochs=1"]),
    "glyphs_lt100_batchformer.toml": ("batchformer", ["epochs=1"]),
    "glyphs_bg_lt100_git.toml": (
        "git",
        [
            "epochs=2",
            "drs_epoch=1",
            "threshold=10",
            "tail_size=10",
            "translator_epochs=1",
            "translator_batch_size=64",
            "translator_dim=4",
            "translator_n_res=1",
            "translator_mlp_dim=8",
            "disc_dim=4",
            "disc_layers=2",
            "ekld_images=2",
            "ekld_transforms=2",
            "diagnostic_styles=2",
        ],
    ),
    "glyphs_fonts_bnm.toml": ("bnm", ["steps=6", "warmup_steps=3", "methods=none,bnm"]),
    "glyphs_bg_bnm.toml": ("bnm", ["steps=6", "warmup_steps=3", "methods=none,bnm"]),
    # LUCIR's 47-class phase plan; iCaRL runs the same phases (digits tests).
    "glyphs_lucir.toml": ("lucir", ["epochs=1", "exemplars_per_class=2", "methods=lucir"]),
    "glyphs_adco.toml": (
        "adco",
        [
            "epochs=1",
            "batch_size=32",
            "bank_size=64",
            "probe_every=0",
            "max_train_images=470",  # the probes fit on ~10 images per class, not 100
            "methods=adco,random",
        ],
    ),
}


# Run as glyphs_bg_lt100_git.toml, with another nuisance.
SAME_AS_BG = ["glyphs_dil_lt100_git.toml", "glyphs_rot_lt100_git.toml"]


def _recipe(name):
    import importlib

    return importlib.import_module(f"kerazoo.recipes.{name}")


def test_every_glyphs_config_is_covered():
    configs = sorted(f for f in os.listdir(os.path.join(ROOT, "recipes")) if f.startswith("glyphs_"))
    assert configs == sorted([*TINY, *SAME_AS_BG])


@pytest.mark.parametrize("config", sorted([*TINY, *SAME_AS_BG]))
def test_configs_use_the_28x28_backbone_and_three_or_more_seeds(config):
    name = TINY.get(config, ("git",))[0]
    resolved = resolve(_recipe(name).RECIPE.config, [os.path.join(ROOT, "recipes", config)])
    assert resolved.backbone == "convnet5" and resolved.dataset.startswith("glyphs")
    assert resolved.num_seeds == (5 if name == "batchformer" else 3)


def test_the_git_configs_differ_only_in_their_nuisance():
    git = _recipe("git").RECIPE.config
    bg, dil = (
        resolve(git, [os.path.join(ROOT, "recipes", f"glyphs_{t}_lt100_git.toml")]) for t in ("bg", "dil")
    )
    assert (bg.transform, dil.transform) == ("bg", "dil")
    assert {k: v for k, v in vars(bg).items() if k != "transform"} == {
        k: v for k, v in vars(dil).items() if k != "transform"
    }


@pytest.mark.slow
@pytest.mark.parametrize("config", sorted(TINY))
def test_config_runs_end_to_end_with_tiny_settings(config, small_glyphs, tmp_path):
    name, sets = TINY[config]
    argv = ["--config", os.path.join(ROOT, "recipes", config)]
    for setting in ("num_seeds=1", "exports=keras", f"data_dir={small_glyphs}", *sets):
        argv += ["--set", setting]
    _recipe(name).RECIPE.main([*argv, "--out", str(tmp_path / "run")])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    resolved = resolve(_recipe(name).RECIPE.config, [argv[1]], sets=argv[3::2])
    methods = _recipe(name).RECIPE.methods_of(resolved)
    assert set(methods) <= set(metrics["methods"])  # and its extra rows (e.g. lucir_nme)
    assert (tmp_path / "run" / "model.keras").is_file()
