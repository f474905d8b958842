"""The GIT recipe: config checks, the translator diagnostics and acceptance logic, a toy run on
two replicas (its translator saved and loadable), the CIFAR-LT paper configs on tfds mock data."""

import os

import keras
import numpy as np
import pytest

from helpers.recipes import run_config_on_mock_data
from kerazoo.layers import GITAugment
from kerazoo.models import Classifier, MUNITGenerator
from kerazoo.recipes.config import ConfigError, resolve
from kerazoo.recipes.results import MethodResult

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
METHODS = ("ce_drs", "ce_drs_git", "oracle")


def test_defaults_and_the_digits_toml_agree(config_class):
    cls = config_class("git")
    default = resolve(cls)
    assert default == resolve(cls, [os.path.join(ROOT, "recipes", "digits_git.toml")])
    assert (default.dataset, default.transform, default.num_seeds) == ("digits-lt", "bg", 3)
    assert (default.threshold, default.fraction, default.rule) == (20, 0.5, "threshold")


@pytest.mark.parametrize(
    "sets, message",
    [
        (["dataset=digits-rot-lt"], "transform=rot"),
        (["transform=none"], "oracle"),
        (["drs_epoch=60"], "drs_epoch"),
        (["methods=[]"], "methods"),
        (["rule=soft"], "rule"),
    ],
)
def test_bad_configs_are_refused(config_class, sets, message):
    with pytest.raises(ConfigError, match=message):
        resolve(config_class("git"), sets=sets)


def test_translator_diagnostics_see_a_style_blind_translator(config_class):
    from kerazoo.data import make_protocol
    from kerazoo.recipes.git import experiment as git

    config = resolve(config_class("git"), sets=["diagnostic_styles=3"])
    clean = make_protocol("digits-lt", image_size=16)
    shifted = make_protocol("digits-bg-lt", image_size=16)
    counts = shifted.class_counts()
    generator = MUNITGenerator((16, 16, 1), dim=8, n_res=1, mlp_dim=16)
    varied = git.translator_diagnostics(config, generator, clean, shifted, counts)
    assert varied["images"] == int((counts[shifted.train_labels] < 20).sum())
    assert varied["translation_variance"] > 0 and varied["true_variance"] > 0
    dense = generator.decoder.get_layer("adain_params")
    dense.set_weights([np.zeros_like(w) for w in dense.get_weights()])
    blind = git.translator_diagnostics(config, generator, clean, shifted, counts)
    assert blind["translation_variance"] == pytest.approx(0.0, abs=1e-12)
    assert blind["variance_ratio"] == pytest.approx(0.0, abs=1e-9)
    assert blind["style_reconstruction_error"] > 0.6
    assert not git.learned_variation(blind)
    assert git.learned_variation({"variance_ratio": 0.3, "style_reconstruction_error": 0.2})
    # Variance alone is not learning: an untrained decoder varies too, in noise.
    assert not git.learned_variation({"variance_ratio": 0.3, "style_reconstruction_error": 0.8})


@pytest.mark.parametrize("domains", [1, 2])
def test_the_translator_trains_on_randomly_mirrored_images_as_gits_munit_loaders(config_class, domains):
    import types

    from kerazoo.data import make_protocol
    from kerazoo.data.pipeline import EpochCounter
    from kerazoo.recipes.git import experiment as git

    shifted = make_protocol("digits-bg-lt", image_size=16)
    run = types.SimpleNamespace(epoch_counter=EpochCounter())

    def first_batches(augment):
        sets = [f"translator_augment={augment}", f"translator_domains={domains}", "translator_batch_size=64"]
        batch = next(iter(git.translator_stream(resolve(config_class("git"), sets=sets), run, shifted)))
        # (images, labels), or one such pair for each of MUNIT's two domains.
        return [np.asarray(images) for images, _ in (batch if domains == 2 else [batch])]

    for plain, augmented in zip(first_batches("none"), first_batches("flip")):
        mirrored = np.all(augmented == plain[:, :, ::-1], axis=(1, 2, 3))
        kept = np.all(augmented == plain, axis=(1, 2, 3))
        assert np.all(mirrored | kept)  # the same images, each mirrored or not
        assert 16 < (mirrored & ~kept).sum() < 48  # about half of 64


def test_every_classifier_stage_augments_as_the_config_says_and_the_second_batch_as_munits_loader(
    config_class,
):
    # GIT's code crops and flips the classifier's images in every epoch of
    # every method; the batch it translates ("independent") comes from its
    # MUNIT loader, flipped only.
    import types

    from kerazoo.data import make_protocol
    from kerazoo.data.pipeline import EpochCounter
    from kerazoo.recipes.git import experiment as git

    shifted = make_protocol("digits-bg-lt", image_size=16)
    streams = {}
    run = types.SimpleNamespace(
        epoch_counter=EpochCounter(), fit=lambda model, data, stage, epochs: streams.update({stage: data})
    )
    generator = MUNITGenerator((16, 16, 1), dim=4, n_res=1, mlp_dim=8, seed=0)
    translate = GITAugment(generator, shifted.class_counts(), 20, 0.5, "independent", seed=0)
    for augment in ("none", "crop_flip"):
        sets = [
            f"augment={augment}",
            "batch_size=64",
            f"translator_augment={'flip' if augment != 'none' else 'none'}",
        ]
        config = resolve(config_class("git"), sets=sets)
        warm = git._train(config, run, 0, shifted, f"{augment} ce")
        git._train(config, run, 0, shifted, f"{augment} drs", start=warm)
        git._train(config, run, 0, shifted, f"{augment} git", translate, start=warm)

    def first_images(stage):
        batch = next(iter(streams[stage]))
        return [np.asarray(images) for images, _ in (batch if stage.endswith("git") else [batch])]

    for stage in ("ce", "drs", "git"):
        (plain, *second_plain), (augmented, *second_augmented) = (
            first_images(f"none {stage}"),
            first_images(f"crop_flip {stage}"),
        )
        changed = ~np.all(augmented == plain, axis=(1, 2, 3))
        mirrored = np.all(augmented == plain[:, :, ::-1], axis=(1, 2, 3))
        assert (changed & ~mirrored).sum() > 32, stage  # cropped, not only mirrored
        for plain, augmented in zip(second_plain, second_augmented):
            mirrored = np.all(augmented == plain[:, :, ::-1], axis=(1, 2, 3))
            kept = np.all(augmented == plain, axis=(1, 2, 3))
            assert np.all(mirrored | kept) and 16 < (mirrored & ~kept).sum() < 48


def test_the_translators_learning_rate_halves_every_step_size_steps_as_munits(config_class):
    from kerazoo.recipes.git import experiment as git

    def rates(step_size):
        munit = git.build_translator(
            resolve(config_class("git"), sets=[f"translator_lr_step={step_size}"]), (16, 16, 1)
        )
        rates = []
        for optimizer in (munit.optimizer, munit.discriminator_optimizer):
            for step in (0, 2, 3, 4, 6):
                optimizer.iterations.assign(step)
                rates.append(float(optimizer.learning_rate) / 1e-4)
        return rates

    np.testing.assert_allclose(rates(3), [1, 1, 0.5, 0.5, 0.25] * 2, rtol=1e-6)
    np.testing.assert_allclose(rates(0), 1, rtol=1e-6)


def test_encoded_styles_are_the_styles_of_class_balanced_training_images(config_class):
    from kerazoo.data import make_protocol
    from kerazoo.recipes.git import experiment as git

    shifted = make_protocol("digits-bg-lt", image_size=16)
    generator = MUNITGenerator((16, 16, 1), dim=8, n_res=1, mlp_dim=16, seed=0)
    styles = git.draw_styles(generator, "encoded", shifted, 500, draw=0)
    # Every style is one of a training image's, and the draws cover every
    # class about equally, although the head class has 18x the tail's images.
    every = np.asarray(generator.styles_of(shifted.train_images))
    nearest = np.argmin(((styles[:, None] - every[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_allclose(styles, every[nearest], atol=1e-5)
    classes = np.bincount(shifted.train_labels[nearest], minlength=10)
    assert classes.min() > 25 and classes.max() < 80
    np.testing.assert_array_equal(git.draw_styles(generator, "encoded", shifted, 500, draw=0), styles)
    np.testing.assert_array_equal(
        git.draw_styles(generator, "prior", shifted, 4, 0), generator.random_styles(4, 0)
    )
    # The diagnostics measure the variation of the styles the config trains with.
    config = resolve(config_class("git"), sets=["diagnostic_styles=3", "styles=encoded"])
    clean = make_protocol("digits-lt", image_size=16)
    counts = shifted.class_counts()
    variance = git.translator_diagnostics(config, generator, clean, shifted, counts)["translation_variance"]
    assert variance > 0
    # ... and their scale: styles x 0.5 change the output less.
    np.testing.assert_array_equal(
        git.draw_styles(generator, "encoded", shifted, 500, draw=0, scale=0.5), 0.5 * styles
    )
    scaled = resolve(config_class("git"), sets=["diagnostic_styles=3", "styles=encoded", "style_scale=0.5"])
    assert (
        git.translator_diagnostics(scaled, generator, clean, shifted, counts)["translation_variance"]
        < variance
    )


def test_the_translations_grid_shows_one_image_of_each_of_the_rarest_tail_classes():
    from kerazoo.recipes.git.experiment import rarest_class_examples

    counts = np.array([50, 3, 40, 3, 9])  # class sizes; threshold 45: tail = 1, 3, 4, 2
    labels = np.array([0, 2, 4, 1, 4, 3, 1, 2, 0, 3])
    assert list(rarest_class_examples(labels, counts, 45, rows=3)) == [3, 5, 2]  # classes 1, 3, 4
    assert list(rarest_class_examples(labels, counts, 45, rows=8)) == [3, 5, 2, 1]
    # No tail class: the rarest of all classes.
    assert list(rarest_class_examples(labels, counts, 2, rows=2)) == [3, 5]


def test_acceptance_checks_use_same_seed_differences():
    from kerazoo.recipes.git import experiment as git

    def seed(base, oracle, git_row):
        return {
            m: MethodResult({m: r})
            for m, r in (("ce_drs", base), ("oracle", oracle), ("ce_drs_git", git_row))
        }

    row = lambda acc, tail, ekld: {"balanced_accuracy": acc, "tail_accuracy": tail, "tail_ekld": ekld}  # noqa: E731
    per_seed = {
        0: seed(row(0.4, 0.3, 1.6), row(0.6, 0.55, 0.7), row(0.41, 0.3, 1.2)),
        1: seed(row(0.4, 0.3, 1.6), row(0.6, 0.5, 0.6), row(0.39, 0.3, 1.3)),
    }
    checks = git.acceptance(
        per_seed, {"variance_ratio": 0.05, "style_reconstruction_error": 0.3}, {"ce_drs": -0.8}
    )
    passed = {c["check"]: c["pass"] for c in checks}
    assert len(passed) == len(checks) == 6  # every check, none collapsed into another
    assert passed == {
        "oracle lowers tail eKLD by ≥ 0.5 over CE + DRS": True,
        "oracle raises tail accuracy by ≥ 0.15 over CE + DRS": True,
        "CE + DRS eKLD rises as class size falls (Spearman ρ(size, eKLD) < 0)": True,
        "GIT does no harm: class-balanced accuracy within 0.05 of CE + DRS": True,
        "GIT does no harm: tail eKLD within 0.15 of CE + DRS": True,
        # eKLD fell by 0.35, but the translator varied too little to credit it.
        "GIT improvement claimable: tail eKLD drops ≥ 0.15 with translation variance ≥ 10 % "
        "of the true nuisance's": False,
    }
    claim = checks[-1]["measured"]
    assert "-0.350" in claim and "0.050" in claim


@pytest.mark.slow
def test_the_size_correlation_is_spearmans_with_tied_sizes_at_their_average_rank():
    from kerazoo.recipes.git.experiment import _size_correlation

    def correlation(ekld, counts):
        return _size_correlation(
            {0: {"ce_drs": MethodResult({}, {"per_class_ekld": ekld})}}, "ce_drs", counts
        )

    # Ranks of the sizes (1.5, 1.5, 3, 4) against (4, 3, 2, 1): -4.5 / sqrt(4.5 * 5).
    expected = -4.5 / np.sqrt(22.5)
    assert correlation([0.3, 0.2, 0.1, 0.0], np.array([5, 5, 10, 20])) == pytest.approx(expected)
    # The tied classes' order, and a class without test images, change nothing.
    assert correlation([0.2, 0.3, 0.1, 0.0], np.array([5, 5, 10, 20])) == pytest.approx(expected)
    assert correlation([0.3, float("nan"), 0.2, 0.1, 0.0], np.array([5, 5, 5, 10, 20])) == pytest.approx(
        expected
    )


def test_toy_run_on_two_replicas_saves_a_translator_that_loads_from_file_and_zoo(
    two_replica_run, git_toy, cli, tmp_path
):
    from kerazoo import zoo
    from kerazoo.recipes.git import experiment as git

    metrics, out = two_replica_run("git", *git_toy, "ekld_transforms=3")
    assert metrics["replicas"] == 2 and list(metrics["results"]) == list(METHODS)
    for rows in metrics["results"].values():
        assert set(rows) == {"balanced_accuracy", "tail_accuracy", "tail_ekld", "head_ekld"}
        assert rows["tail_ekld"][0] >= 0
    per_class = metrics["details"]["0"]["ce_drs"]["per_class_ekld"]
    assert len(per_class) == 10 and all(v >= 0 for v in per_class)
    assert {
        "translation_variance",
        "true_variance",
        "variance_ratio",
        "style_reconstruction_error",
        "training_style_recon_last_epoch",
    } <= set(metrics["report"]["translator"])
    assert len(metrics["report"]["acceptance"]) == 6
    report = (out / "report.md").read_text()
    assert "## Translator diagnostics" in report and "(translations.png)" in report
    for plot in ("translations.png", "ekld_by_class_size.png"):
        assert (out / plot).stat().st_size > 0
    shipped = keras.saving.load_model(out / "model.keras")
    assert type(shipped) is Classifier
    assert not any(isinstance(layer, GITAugment) for layer in shipped._flatten_layers())
    assert metrics["model"]["metrics"] == {k: v[0] for k, v in metrics["results"]["ce_drs_git"].items()}
    assert metrics["model"]["evaluated_on"] == "the digits-bg test split"
    # What `translator=FILE` and, once the run is in a zoo, `translator=NAME` load.
    zoo.publish(out, "toy_git", root=tmp_path / "zoo")
    from_file = git.load_translator(str(out / "translator.keras"))
    from_zoo = git.load_translator("toy_git", root=tmp_path / "zoo")
    assert isinstance(from_file, MUNITGenerator) and isinstance(from_zoo, MUNITGenerator)
    x = np.random.default_rng(0).random((2, 16, 16, 1)).astype("float32")
    styles = from_file.random_styles(2, 0)
    np.testing.assert_allclose(
        np.asarray(from_zoo.translate(x, styles)), np.asarray(from_file.translate(x, styles)), atol=1e-6
    )
    # A run that loads it keeps a copy (what `zoo publish` ships with its
    # classifier) and reports the loaded file's sizes, not the config's.
    reuse = tmp_path / "reuse"
    args = [f"--set={s}" for s in [*git_toy, "methods=ce_drs_git", "exports=keras", "translator_dim=16"]]
    result = cli("kerazoo.recipes.git", *args, f"--set=translator={out / 'translator.keras'}", "--out", reuse)
    assert result.returncode == 0, result.stderr
    assert (reuse / "translator.keras").read_bytes() == (out / "translator.keras").read_bytes()
    report = (reuse / "report.md").read_text()
    assert f"- translator: loaded from `{out / 'translator.keras'}`" in report
    assert "its sizes: dim 8, style_dim 8, n_downsample 2, n_res 1, mlp_dim 16" in report
    assert (
        "- translator: trained in this run (translator.keras); its sizes: dim 8,"
        in (out / "report.md").read_text()
    )


@pytest.mark.parametrize(
    "translator, message",
    [
        ("/nonexistent/translator.keras", "Config key 'translator': no file /nonexistent/translator.keras"),
        ("digits_gti", "No model named 'digits_gti' in the zoo; available: ["),
        (
            "digits_baseline",
            "zoo model 'digits_baseline' has no translator.keras; zoo models with one: ['digits_git', 'glyphs_git']",
        ),
    ],
)
def test_a_bad_translator_stops_the_run_before_its_directory_exists(cli, tmp_path, translator, message):
    out = tmp_path / "run"
    result = cli("kerazoo.recipes.git", "--set", f"translator={translator}", "--out", out)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


@pytest.mark.parametrize("name, threshold", [("cifar10", 500), ("cifar100", 100)])
def test_cifar_lt_paper_configs_state_the_papers_protocol(config_class, name, threshold):
    config = resolve(config_class("git"), [os.path.join(ROOT, "recipes", f"{name}_lt_git.toml")])
    assert (config.dataset, config.backbone, config.threshold) == (
        f"{name}-lt100",
        "ldam_resnet32",
        threshold,
    )
    assert config.translator_domains == 2  # MUNIT's two-domain trainer, as GIT runs it


@pytest.mark.slow
def test_the_cifar_lt_paper_config_runs_on_tfds_mock_data(git_toy, tmp_path):
    # CIFAR-100-LT; CIFAR-10-LT's config runs the same code on another tfds
    # name. One classifier stage (GIT from the first epoch) and a minimal
    # translator: time.
    tiny = git_toy + ["epochs=1", "drs_epoch=0", "methods=ce_drs_git", "translator_dim=4"]
    # Small mock data and sizes: the test runs the protocol, ResNet-32, the
    # translator at 32x32 and GIT, not their accuracy.
    metrics, out = run_config_on_mock_data(
        "git", "cifar100_lt_git.toml", tmp_path, "batch_size=16", *tiny, num_examples=300
    )
    assert list(metrics["results"]) == ["ce_drs_git"]
    assert metrics["results"]["ce_drs_git"]["tail_ekld"] == [None]  # no nuisance, no eKLD
    assert "true_variance" not in metrics["report"]["translator"]
    assert "exponential long tail (rho 100" in (out / "report.md").read_text()
