"""What one seed of the git recipe does (imported when a run starts)."""

import csv
import shutil
import types

import keras
import numpy as np
import tensorflow as tf
from scipy import stats

from kerazoo import backbones, metrics
from kerazoo.atomic import atomic_path
from kerazoo.data import augment as augment_ops
from kerazoo.data import train_dataset
from kerazoo.data.transforms import apply_nuisance
from kerazoo.layers.git_augment import GITAugment
from kerazoo.models import MUNIT, GITClassifier, MUNITGenerator
from kerazoo.optimizers import with_weight_decay
from kerazoo.protocol_names import with_nuisance
from kerazoo.recipes import plots
from kerazoo.recipes.config import ConfigError
from kerazoo.recipes.git import METHODS, TRANSLATOR_FILE, translator_file, translator_image_shape
from kerazoo.recipes.recipe import Outcome
from kerazoo.recipes.results import MethodResult, spread_label

# Below this share of the true nuisance's pixel variance a translator is
# called one that learned no variation (below it, GIT's effect is not claimed).
MIN_VARIANCE_RATIO = 0.10
# Chance is E|N(0, 1)| = 0.80; at or below this the style leaves a readable
# trace (the fidelity issue's bar; the digits bg translator reaches 0.64).
MAX_STYLE_ERROR = 0.75


def prepare(config, run):
    """The long tail without (`clean`) and with (`shifted`) the nuisance, same
    images and order (the shifted one is what the classifiers learn from),
    and its class sizes."""
    clean = shifted = run.protocol()
    if config.transform != "none":
        name = with_nuisance(config.dataset, config.transform)
        shifted = run.protocol(name=name)
        if not np.array_equal(shifted.train_indices, clean.train_indices):
            raise RuntimeError(f"{name} and {config.dataset} hold different training images.")
    run.data_notes = shifted.notes  # what the shipped classifier was trained on
    translator_path = None
    if config.translator:
        # Before any classifier trains on another process (`--jobs`).
        translator_path = translator_file(config.translator)  # checksum-verified once, here
        shape = translator_image_shape(translator_path)
        if shape != tuple(shifted.image_shape):
            raise ConfigError(
                f"Config key 'translator': {config.translator} translates images of shape {shape}, "
                f"this run's are {tuple(shifted.image_shape)}; use a translator trained on this "
                "protocol (or set image_size to match)."
            )
    return types.SimpleNamespace(
        clean=clean, shifted=shifted, counts=shifted.class_counts(), translator_path=translator_path
    )


def true_transform(config, salt):
    """(images, draw) -> one true nuisance per image, seeded by (seed, salt, draw)."""
    return lambda images, draw: apply_nuisance(images, config.transform, seed=[config.seed, salt, draw])


def _draw_ekld_images(config, clean):
    """The eKLD images (the first `ekld_images` untransformed test images of
    each class) and their `ekld_transforms` true nuisances."""
    rows = np.concatenate(
        [np.flatnonzero(clean.test_labels == c)[: config.ekld_images] for c in range(clean.num_classes)]
    )
    images = clean.test_images[rows]
    transform = true_transform(config, 1)
    return images, clean.test_labels[rows], [transform(images, k) for k in range(config.ekld_transforms)]


def build_translator(config, image_shape):
    """An untrained, compiled `MUNIT` with the config's sizes."""
    generator = MUNITGenerator(
        image_shape,
        dim=config.translator_dim,
        style_dim=config.translator_style_dim,
        n_downsample=config.translator_n_downsample,
        n_res=config.translator_n_res,
        mlp_dim=config.translator_mlp_dim,
        content_channels=config.translator_content_channels or None,
        seed=config.seed,
    )
    munit = MUNIT(
        generator,
        disc_dim=config.disc_dim,
        disc_layers=config.disc_layers,
        domains=config.translator_domains,
        seed=config.seed,
    )
    rate = config.translator_lr
    if config.translator_lr_step:
        rate = keras.optimizers.schedules.ExponentialDecay(
            rate, config.translator_lr_step, 0.5, staircase=True
        )
    adam = keras.optimizers.Adam(rate, beta_1=0.5, beta_2=0.999)
    munit.compile(optimizer=with_weight_decay(adam, config.translator_weight_decay))
    return munit


def load_translator(source, root=None):
    """The translator `source` names (see `translator_file`), loaded."""
    return keras.saving.load_model(translator_file(source, root), safe_mode=True)


def translator(config, run, data):
    """The run's translator: trained (once per run; a resumed run loads the
    finished stage) or loaded, and kept as the run directory's
    translator.keras, which `zoo publish` ships beside the classifier."""
    return run.cache("translator", lambda: _translator(config, run, data))


def _translator(config, run, data):
    if data.translator_path:  # `prepare` resolved and verified it
        _keep(run, lambda tmp: shutil.copyfile(data.translator_path, tmp))
        return keras.saving.load_model(data.translator_path, safe_mode=True)
    # Its own stage, from the run's first seed: its initial weights depend
    # neither on which methods ran first nor on which seed needs it first.
    run.reseed(config.seed)
    munit = build_translator(config, data.shifted.image_shape)

    run.fit(
        munit,
        translator_stream(config, run, data.shifted),
        stage="translator",
        epochs=config.translator_epochs,
        divergence_hint="Lower translator_lr.",
    )
    generator = munit.inference_model()
    _keep(run, generator.save)
    return generator


def translator_stream(config, run, shifted):
    """The translator's training batches: class-balanced, augmented by
    `config.translator_augment`; for MUNIT's two domains, the code's two
    loaders over the same data, zipped."""
    second = 1000 + config.seed if config.translator_domains == 2 else None
    return _stream(
        run,
        shifted,
        config.translator_batch_size,
        config.seed,
        "class_balanced",
        augment=augment_ops.policy(config.translator_augment),
        second=second,
        second_augment=augment_ops.policy(config.translator_augment),
    )


def _keep(run, write):
    # Once: a resumed run already has it.
    if not (run.path / TRANSLATOR_FILE).exists():
        with atomic_path(run.path / TRANSLATOR_FILE) as tmp:
            write(tmp)


def build_model(config, image_shape, num_classes, learning_rate, augment=None, start=None):
    """A compiled, built `GITClassifier`, with the weights of `start` if given."""
    model = GITClassifier(
        backbones.get(config.backbone, input_shape=image_shape), num_classes, augment=augment
    )
    model.compile(
        optimizer=with_weight_decay(
            keras.optimizers.SGD(learning_rate, momentum=config.momentum), config.weight_decay
        ),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    model(np.zeros((1, *image_shape), "float32"))
    if start is not None:
        model.backbone.set_weights(start.backbone.get_weights())
        model.head.set_weights(start.head.get_weights())
    return model


def _stream(run, protocol, batch_size, seed, sampler, augment=None, second=None, second_augment=None):
    """The training stream of `protocol`; with `second`, zipped with a second
    loader, as the official code's: the same sampler in the order of seed
    `second`, augmented by `second_augment`."""

    def loader(stream_seed, policy):
        return train_dataset(
            protocol.train_images,
            protocol.train_labels,
            batch_size,
            seed=stream_seed,
            epoch_counter=run.epoch_counter,
            sampler=sampler,
            augment=policy,
        )

    if second is None:
        return loader(seed, augment)
    return tf.data.Dataset.zip(loader(seed, augment), loader(second, second_augment))


def _train(config, run, seed, protocol, stage, augment=None, policy=None, start=None):
    """The DRS epochs of one method (from `start`, the model after the
    instance-sampled epochs), or with `start=None` those first epochs.

    `policy` augments the classifier's images (default: `config.augment`)."""
    first = start is None
    if policy is None:
        policy = augment_ops.policy(config.augment)
    # GIT's "independent" rule translates a second loader's batch: the code's
    # MUNIT loader, augmented as the translator's images (flip, no crop).
    second = 1000 + seed if augment is not None and augment.rule == "independent" else None
    data = _stream(
        run,
        protocol,
        config.batch_size,
        2 * seed + (0 if first else 1),
        "instance" if first else "class_balanced",
        policy,
        second,
        augment_ops.policy(config.translator_augment),
    )
    rate = config.learning_rate * (1.0 if first else config.drs_lr_scale)
    model = build_model(config, protocol.image_shape, protocol.num_classes, rate, augment, start)
    epochs = config.drs_epoch if first else config.epochs - config.drs_epoch
    if epochs:
        run.fit(model, data, stage=stage, epochs=epochs)
    return model


def evaluate(config, run, model, data):
    """Class-balanced and tail accuracy on the transformed test set; per-class
    and tail/head eKLD (None without a nuisance)."""
    shifted, clean, counts = data.shifted, data.clean, data.counts
    predict = lambda x: np.asarray(model(x, training=False))  # noqa: E731
    predictions = np.concatenate(
        [
            predict(shifted.test_images[i : i + 512]).argmax(-1)
            for i in range(0, len(shifted.test_labels), 512)
        ]
    )
    per_class = metrics.per_class_accuracy(shifted.test_labels, predictions, shifted.num_classes)
    tail = counts < config.tail_size
    row = {
        "balanced_accuracy": float(np.nanmean(per_class)),
        "tail_accuracy": float(np.nanmean(per_class[tail])) if tail.any() else None,
        "tail_ekld": None,
        "head_ekld": None,
    }
    details = {"per_class_accuracy": per_class.tolist()}
    if config.transform != "none":
        images, labels, draws = run.cache("ekld draws", lambda: _draw_ekld_images(config, clean))
        ekld = metrics.ekld(
            predict, images, labels, lambda x, k: draws[k], config.ekld_transforms, shifted.num_classes
        )
        row["tail_ekld"] = float(np.nanmean(ekld[tail])) if tail.any() else None
        row["head_ekld"] = float(np.nanmean(ekld[~tail])) if (~tail).any() else None
        details["per_class_ekld"] = ekld.tolist()
    return row, details


def run_method(config, run, method, data):
    seed, shifted, clean = run.seed, data.shifted, data.clean
    if method == "oracle":
        # The GIT code's oracle: the untransformed long tail, the true nuisance
        # drawn for every image in every epoch, the same schedule.
        oracle = augment_ops.chain(
            *filter(None, (augment_ops.policy(p) for p in (config.augment, config.transform)))
        )
        warm = _train(config, run, seed, clean, f"seed{seed}-oracle_ce", policy=oracle)
        run.reseed()
        model = _train(config, run, seed, clean, f"seed{seed}-oracle", policy=oracle, start=warm)
    else:
        generator = None
        if method == "ce_drs_git":
            # The translator first: it is the run's longest stage, and another
            # process can train the shared instance-sampled stage meanwhile.
            generator = translator(config, run, data)
            run.reseed()
        # CE + DRS and GIT share the instance-sampled stage (trained once, then loaded).
        warm = _train(config, run, seed, shifted, f"seed{seed}-ce")
        augment = None
        if generator is not None:
            # Every seed's stage in this process shares the translator, whose
            # style draws advance its SeedGenerator: restart them from the
            # seed, so that a stage's draws do not depend on the stages this
            # process ran before it (nor on whether it loaded the translator).
            state = generator.seed_generator.state
            state.assign(keras.ops.convert_to_tensor([seed, 0], dtype=state.dtype))
            augment = GITAugment(
                generator,
                data.counts,
                config.threshold,
                config.fraction,
                config.rule,
                seed=seed,
                styles=config.styles,
                style_scale=config.style_scale,
            )
        run.reseed()
        model = _train(config, run, seed, shifted, f"seed{seed}-{method}", augment, start=warm)
    with run.timed(f"seed{seed}-{method}: evaluation"):
        row, details = evaluate(config, run, model, data)
    return MethodResult(
        {method: row},
        details=details,
        model=model,
        input_shape=shifted.image_shape,
        sample_images=shifted.test_images[:7],
        class_names=shifted.class_names,
    )


def draw_styles(generator, source, shifted, count, draw, scale=1.0):
    """`count` styles as `GITAugment(styles=source, style_scale=scale)`
    translates with them: from N(0, I), or encoded from training images
    drawn class-balanced (a DRS batch's), times `scale`; a NumPy draw
    seeded by `draw`."""
    if source == "prior":
        return scale * generator.random_styles(count, draw)
    rng = np.random.default_rng(draw)
    labels = shifted.train_labels
    classes = rng.choice(np.unique(labels), count)
    picks = np.array([rng.choice(np.flatnonzero(labels == c)) for c in classes])
    return scale * np.asarray(generator.styles_of(shifted.train_images[picks]))


def translator_origin(config, generator):
    """Where the run's translator came from (`source`: '' when trained in this
    run, else the `translator` it was loaded from) and its sizes, read from the
    generator: a loaded file's sizes are its own, not the config's
    translator_* keys."""
    sizes = generator.get_config()
    return {
        "source": config.translator,
        "sizes": {
            k: sizes[k] for k in ("dim", "style_dim", "n_downsample", "n_res", "mlp_dim", "content_channels")
        },
    }


def translator_diagnostics(config, generator, clean, shifted, counts):
    """Does the translator vary its output at all? On the tail-class training
    images (what GIT translates):

    - `translation_variance`: pixel variance across `diagnostic_styles`
      styles per image (`metrics.draw_variance`), drawn as the config's
      `styles` and `style_scale` (`draw_styles`);
    - `true_variance`: the same for the true nuisance applied to the
      untransformed images, and `variance_ratio` = translation / true;
    - `source_mse`: mean squared difference between an image and its
      translations (≈ 0 for a translator that copies its input);
    - `style_reconstruction_error`: |s − E_style(decode(c, s))| for random s
      (≈ 0.80 when the decoder ignores the style).
    """
    rows = np.flatnonzero(counts[shifted.train_labels] < config.threshold)
    if not len(rows):
        rows = np.arange(len(shifted.train_labels))
    images = shifted.train_images[rows]

    translations = [
        np.asarray(
            generator.translate(
                images, draw_styles(generator, config.styles, shifted, len(images), k, config.style_scale)
            )
        )
        for k in range(config.diagnostic_styles)
    ]
    variance = metrics.draw_variance(lambda x, k: translations[k], images, config.diagnostic_styles)
    result = {
        "images": int(len(rows)),
        "translation_variance": variance,
        "source_mse": float(np.mean([np.mean((t - images) ** 2) for t in translations])),
        "style_reconstruction_error": generator.style_reconstruction_error(images),
    }
    if config.transform != "none":
        true = metrics.draw_variance(
            true_transform(config, 2), clean.train_images[rows], config.diagnostic_styles
        )
        result.update(true_variance=true, variance_ratio=variance / true if true > 0 else None)
    return result


def report(config, run, per_seed):
    clean, shifted, counts = run.data.clean, run.data.shifted, run.data.counts
    methods = config.methods
    lines, extra = [], {}
    figure_lines = []
    if "ce_drs_git" in config.methods:
        generator = translator(config, run, run.data)
        with run.timed("translator diagnostics and translations.png"):
            diagnostics = translator_origin(config, generator)
            diagnostics.update(translator_diagnostics(config, generator, clean, shifted, counts))
            plot_translations(
                config, generator, clean, shifted, counts, run.path / "translations.png", command=run.command
            )
        history = run.path / "logs" / "translator.csv"
        if history.exists():
            with open(history, newline="") as f:
                last = list(csv.DictReader(f))[-1]
            diagnostics["training_style_recon_last_epoch"] = float(last["style_recon"])
            diagnostics["training_image_recon_last_epoch"] = float(last["image_recon"])
        extra["translator"] = diagnostics
        figure_lines.append("![translations of tail-class images](translations.png)")
        lines += ["## Translator diagnostics", "", *_diagnostic_lines(diagnostics), ""]
    if config.transform != "none":
        plot_ekld(per_seed, methods, counts, run.path / "ekld_by_class_size.png", config, run.command)
        figure_lines.insert(0, "![per-class eKLD against training class size](ekld_by_class_size.png)")
        extra["ekld_size_correlation"] = {m: _size_correlation(per_seed, m, counts) for m in methods}
    extra["acceptance"] = acceptance(per_seed, extra.get("translator"), extra.get("ekld_size_correlation"))
    lines += [
        "## Acceptance checks",
        "",
        *[
            f"- {c['check']}: **{'pass' if c['pass'] else 'fail'}** ({c['measured']})"
            for c in extra["acceptance"]
        ],
        "",
    ]
    lines += figure_lines + [""]
    lines += [
        "## Data",
        "",
        f"Tail: classes with fewer than {config.tail_size} training images "
        f"({int((counts < config.tail_size).sum())} of {len(counts)}); GIT translates classes "
        f"below {config.threshold} ({config.rule} rule). Training images per class: "
        + ", ".join(f"{n} {c}" for n, c in zip(shifted.class_names, counts))
        + ".",
        "",
        *[f"- {note}" for note in shifted.notes],
    ]
    return Outcome("\n".join(lines), metrics=extra)


def _diagnostic_lines(d):
    sizes = ", ".join(f"{k} {v}" for k, v in d["sizes"].items())
    origin = (
        f"loaded from `{d['source']}` (kept as {TRANSLATOR_FILE}; the config's translator_* keys do not apply)"
        if d["source"]
        else f"trained in this run ({TRANSLATOR_FILE})"
    )
    lines = [
        f"- translator: {origin}; its sizes: {sizes}",
        f"- pixel variance across {d['images']} tail-class training images × sampled styles: "
        f"{d['translation_variance']:.5f}"
        + (
            f"; the true nuisance's: {d['true_variance']:.5f} (ratio {d['variance_ratio']:.3f})"
            if d.get("variance_ratio") is not None
            else ""
        ),
        f"- mean squared difference translation − source: {d['source_mse']:.5f}",
        f"- style-reconstruction error on random styles: {d['style_reconstruction_error']:.3f} "
        "(≈ 0.80 = E|N(0, 1)| when the decoder ignores the style)",
    ]
    if "training_style_recon_last_epoch" in d:
        lines.append(
            f"- training style-reconstruction loss, last epoch: {d['training_style_recon_last_epoch']:.3f}"
        )
    learned = learned_variation(d)
    lines.append(
        f"- verdict: the translator {'learned' if learned else 'did not learn'} variation "
        f"(bar: variance ratio ≥ {MIN_VARIANCE_RATIO} and style-reconstruction error "
        f"≤ {MAX_STYLE_ERROR})"
    )
    return lines


def learned_variation(diagnostics):
    """The issue's bar, translation variance ≥ 10 % of the true nuisance's,
    and a style that can be read back from the translation (error below
    `MAX_STYLE_ERROR`): an untrained decoder also varies with the style, in
    noise no encoder can invert."""
    d = diagnostics or {}
    ratio = d.get("variance_ratio")
    return (
        ratio is not None
        and ratio >= MIN_VARIANCE_RATIO
        and d.get("style_reconstruction_error", 1.0) <= MAX_STYLE_ERROR
    )


def _same_seed(per_seed, method, baseline, key):
    rows = [{m: r.rows[m] for m, r in results.items()} for results in per_seed.values()]
    diffs = [
        r[method][key] - r[baseline][key]
        for r in rows
        if method in r and baseline in r and r[method][key] is not None and r[baseline][key] is not None
    ]
    return np.array(diffs, dtype=float)


def _size_correlation(per_seed, method, counts):
    """Spearman correlation of training class size and the mean per-class
    eKLD over seeds: negative when eKLD rises as classes shrink (Figure 1).
    Tied sizes share their average rank (a long tail has many classes of
    the smallest size); a class without test images (NaN eKLD) is left out."""
    ekld = np.nanmean(
        [results[method].details["per_class_ekld"] for results in per_seed.values() if method in results],
        axis=0,
    )
    return float(stats.spearmanr(counts, ekld, nan_policy="omit").statistic)


def acceptance(per_seed, diagnostics, correlations):
    """The checks of GIT's claims that this run can decide, each with its numbers."""
    base, git, oracle = "ce_drs", "ce_drs_git", "oracle"
    checks = []

    def add(check, passed, measured):
        checks.append({"check": check, "pass": bool(passed), "measured": measured})

    ekld = _same_seed(per_seed, oracle, base, "tail_ekld")
    accuracy = _same_seed(per_seed, oracle, base, "tail_accuracy")
    if len(ekld):
        add(
            "oracle lowers tail eKLD by ≥ 0.5 over CE + DRS",
            ekld.mean() <= -0.5,
            f"{ekld.mean():+.3f} ± {ekld.std():.3f}",
        )
        add(
            "oracle raises tail accuracy by ≥ 0.15 over CE + DRS",
            accuracy.mean() >= 0.15,
            f"{accuracy.mean():+.3f} ± {accuracy.std():.3f}",
        )
    if correlations and base in correlations:
        add(
            "CE + DRS eKLD rises as class size falls (Spearman ρ(size, eKLD) < 0)",
            correlations[base] < 0,
            f"ρ = {correlations[base]:+.2f}",
        )
    balanced = _same_seed(per_seed, git, base, "balanced_accuracy")
    if len(balanced):
        add(
            "GIT does no harm: class-balanced accuracy within 0.05 of CE + DRS",
            abs(balanced.mean()) <= 0.05 or balanced.mean() > 0,
            f"{balanced.mean():+.3f} ± {balanced.std():.3f}",
        )
        tail = _same_seed(per_seed, git, base, "tail_ekld")
        if len(tail):
            add(
                "GIT does no harm: tail eKLD within 0.15 of CE + DRS",
                tail.mean() <= 0.15,
                f"{tail.mean():+.3f} ± {tail.std():.3f}",
            )
            ratio = (diagnostics or {}).get("variance_ratio")
            add(
                "GIT improvement claimable: tail eKLD drops ≥ 0.15 with translation variance ≥ 10 % "
                "of the true nuisance's",
                tail.mean() <= -0.15 and learned_variation(diagnostics),
                f"eKLD {tail.mean():+.3f}, variance ratio " + ("n/a" if ratio is None else f"{ratio:.3f}"),
            )
    return checks


def plot_ekld(per_seed, methods, counts, path, config, command=None):
    """Per-class eKLD (mean ± std over seeds) against training class size,
    one marker per class and method, the tail threshold dotted."""
    figure, ax = plots.plt.subplots(figsize=(6.5, 4))
    # Classes of one size would share an x: points, not lines (a line would
    # zig-zag between them), each method nudged sideways on the log axis.
    nudges = np.linspace(-0.015, 0.015, len(methods)) if len(methods) > 1 else [0.0]
    for nudge, method in zip(nudges, methods):
        values = np.array([results[method].details["per_class_ekld"] for results in per_seed.values()])
        ax.errorbar(
            counts * 10**nudge,
            values.mean(0),
            yerr=values.std(0) if len(per_seed) > 1 else None,
            marker="o",
            markersize=4,
            linestyle="none",
            capsize=2,
            label=METHODS[method].label,
        )
    ax.axvline(
        config.tail_size, color="0.5", linestyle=":", label=f"tail: fewer than {config.tail_size} images"
    )
    ax.set_xscale("log")
    ticks = [
        t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if counts.min() <= t <= counts.max()
    ]
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.tick_params(axis="x", which="minor", labelbottom=False)
    ax.set_xlabel("training images of the class")
    ax.set_ylabel("eKLD (lower = more invariant)")
    ax.set_title(f"{config.dataset} + {config.transform}: eKLD per class, {spread_label(len(per_seed))}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    plots.save_figure(figure, path, command)


def rarest_class_examples(labels, counts, threshold, rows):
    """Indices of the first training image of each of the `rows` rarest
    tail classes (fewer than `threshold` images; every class if none is),
    rarest first: where GIT's translations matter most."""
    tail = np.flatnonzero(counts[labels] < threshold)
    candidates = tail if len(tail) else np.arange(len(labels))
    classes, first = np.unique(labels[candidates], return_index=True)
    return candidates[first[np.argsort(counts[classes], kind="stable")]][:rows]


def plot_translations(
    config, generator, clean, shifted, counts, path, rows=8, styles=6, true_draws=3, command=None
):
    """Training images of the `rows` rarest tail classes, one per class
    (first column), their translations under styles drawn as the config's
    `styles`, and (with a nuisance) true nuisances of the untransformed image."""
    labels = shifted.train_labels
    picked = rarest_class_examples(labels, counts, config.threshold, rows)
    images = shifted.train_images[picked]
    columns = [images] + [
        np.asarray(
            generator.translate(
                images, draw_styles(generator, config.styles, shifted, len(images), k, config.style_scale)
            )
        )
        for k in range(styles)
    ]
    titles = ["source"] + [f"style {k + 1}" for k in range(styles)]
    if config.transform != "none":
        transform = true_transform(config, 3)
        columns += [transform(clean.train_images[picked], k) for k in range(true_draws)]
        titles += [f"true {config.transform} {k + 1}" for k in range(true_draws)]
    figure, axes = plots.plt.subplots(
        len(picked),
        len(columns),
        squeeze=False,
        figsize=(1.1 * len(columns), 1.1 * len(picked) + 0.4),
        layout="constrained",  # the title just above the grid, not an inch off
    )
    for j, column in enumerate(columns):
        for i in range(len(picked)):
            ax = axes[i][j]
            ax.imshow(
                np.clip(column[i], 0, 1).squeeze(),
                cmap="gray" if column.shape[-1] == 1 else None,
                vmin=0,
                vmax=1,
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(titles[j], fontsize=7)
            if j == 0:
                ax.set_ylabel(f"class {shifted.class_names[labels[picked[i]]]}", fontsize=7)
    source = "N(0, I)" if config.styles == "prior" else "encoded from class-balanced training images"
    scale = "" if config.style_scale == 1 else f" × {config.style_scale:g}"
    translator_from = (
        f"translator {config.translator}" if config.translator else "translator trained in this run"
    )
    figure.suptitle(
        f"{config.dataset} + {config.transform}: styles {source}{scale}; {translator_from}", fontsize=8
    )
    plots.save_figure(figure, path, command)
