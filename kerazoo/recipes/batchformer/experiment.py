"""What one seed of the batchformer recipe does (imported when a run starts)."""

import types
import warnings

import keras
import numpy as np

from kerazoo import backbones, metrics
from kerazoo.data.pipeline import concatenate_epochs
from kerazoo.layers import BatchFormer
from kerazoo.models import BatchFormerClassifier
from kerazoo.ops import outputs_numpy
from kerazoo.optimizers import with_weight_decay
from kerazoo.recipes import plots
from kerazoo.recipes.batchformer import METHODS, RECIPE
from kerazoo.recipes.config import ConfigError
from kerazoo.recipes.recipe import Outcome
from kerazoo.recipes.results import MethodResult, count, paired_p_value, spread_label
from kerazoo.schedules import WarmupCosineDecay

SHOTS = ("many", "medium", "few")


def build_model(config, protocol, method, steps):
    """A compiled, built `BatchFormerClassifier` for one method."""
    loss = method.removesuffix("_batchformer")
    with_batchformer = method.endswith("_batchformer")
    batchformer = None
    if with_batchformer:
        batchformer = BatchFormer(
            num_heads=config.num_heads,
            dropout=config.dropout,
            num_layers=config.num_layers,
            scope=config.batch_scope,
        )
    model = BatchFormerClassifier(
        backbones.get(config.backbone, input_shape=protocol.image_shape),
        protocol.num_classes,
        batchformer,
        class_counts=protocol.class_counts(),
        loss=loss,
        batchformer_loss_weight=config.batchformer_loss_weight,
    )
    if config.optimizer == "adam":
        optimizer = keras.optimizers.Adam(config.learning_rate)
    else:
        if config.warmup_steps:
            schedule = WarmupCosineDecay(
                config.learning_rate, config.warmup_learning_rate, config.warmup_steps, steps
            )
        else:
            schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)
        optimizer = keras.optimizers.SGD(schedule, momentum=config.momentum)
    model.compile(
        optimizer=with_weight_decay(optimizer, config.weight_decay),
        batchformer_lr_scale=config.batchformer_lr_scale,
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    model(keras.ops.zeros((1, *protocol.image_shape)))
    return model


def prepare(config, run):
    """The protocol and the steps of every method (checked against the warm-up)."""
    protocol = run.protocol()
    steps = config.epochs * config.passes_per_epoch * (len(protocol.train_labels) // config.batch_size)
    if config.warmup_steps and config.warmup_steps >= steps:
        raise ConfigError(
            f"Config key 'warmup_steps' ({config.warmup_steps}) must be below the run's "
            f"{steps} training steps (epochs x passes_per_epoch x batches per pass)."
        )
    return types.SimpleNamespace(protocol=protocol, steps=steps)


def run_method(config, run, method, data):
    protocol = data.protocol
    # The seed's batches are every method's: one pipeline (its tf.data
    # functions traced once) per seed.
    train = run.cache(("passes", run.seed), lambda: _passes(config, protocol, run.seed, run.epoch_counter))
    model = run.reuse(build_model(config, protocol, method, data.steps), method)
    run.fit(model, train, stage=f"seed{run.seed}-{method}", epochs=config.epochs)
    # The protocol's own batches: a streamed one (ImageNet-LT) holds no test array.
    predictions = np.concatenate(
        [np.argmax(outputs_numpy(model, images.numpy()), axis=-1) for images, _ in protocol.eval_dataset()]
    )
    labels = protocol.test_labels
    shots = metrics.shot_accuracy(
        labels, predictions, protocol.class_counts(), config.many_shot, config.few_shot
    )
    row = {
        "test_accuracy": metrics.accuracy(labels, predictions),
        # None, not NaN, for an empty group: the tables then show "–".
        **{k: None if np.isnan(v) else v for k, v in shots.items()},
    }
    return MethodResult(
        {method: row},
        model=model,
        input_shape=protocol.image_shape,
        sample_images=protocol.sample_images(7),
        class_names=protocol.class_names,
    )


def _passes(config, protocol, seed, epoch_counter):
    """One epoch = `passes_per_epoch` passes, pass j in the order of stream
    seed seed·passes + j (distinct for every (seed, j); the plain seed for one pass)."""
    streams = [
        protocol.train_dataset(
            config.batch_size,
            seed=seed * config.passes_per_epoch + j,
            epoch_counter=epoch_counter,
            augment=config.augment,
        )
        for j in range(config.passes_per_epoch)
    ]
    return concatenate_epochs(streams)


def report(config, run, per_seed):
    protocol = run.protocol()
    counts = protocol.class_counts()
    groups = {
        "many": int((counts > config.many_shot).sum()),
        "medium": int(((counts >= config.few_shot) & (counts <= config.many_shot)).sum()),
        "few": int((counts < config.few_shot).sum()),
    }
    plot_shots(per_seed, config.methods, run.path / "shots.png", config.dataset, run.command)
    verdicts = effect_verdicts(per_seed)
    measured = ["## What was measured", "", *[f"- {line}" for line in verdicts], ""] if verdicts else []
    return Outcome(
        "\n".join(
            [
                "## Classes per group",
                "",
                f"Many-shot: more than {config.many_shot} training images "
                f"({count(groups['many'], 'class', 'classes')}); "
                f"medium: {config.few_shot} to {config.many_shot} ({groups['medium']}); "
                f"few-shot: fewer than {config.few_shot} ({groups['few']}). Training images per class: "
                + ", ".join(f"{n} {c}" for n, c in zip(protocol.class_names, counts))
                + ".",
                "",
                "![many-, medium- and few-shot accuracy per method](shots.png)",
                "",
                *measured,
                "## Data",
                "",
                *[f"- {note}" for note in protocol.notes],
            ]
        ),
        metrics={"classes_per_group": groups},
    )


def effect_verdicts(per_seed):
    """One sentence per effect that ran: its same-seed few-shot and overall
    differences (mean ± std over seeds), called a gain or a loss only when a
    two-sided paired t-test on them gives p < 0.05, else within seed noise
    (one seed: no verdict). A shot group without classes says so."""
    lines = []
    for method, baseline in RECIPE.effects:
        rows = [
            {m: r.rows[m] for m, r in results.items()}
            for results in per_seed.values()
            if method in results and baseline in results
        ]
        if not rows:
            continue
        parts = []
        for key, name in (("few", "few-shot"), ("test_accuracy", "overall")):
            if any(r[m][key] is None for r in rows for m in (method, baseline)):
                parts.append(f"{name}: no class in the group")
                continue
            diffs = 100 * np.array([r[method][key] - r[baseline][key] for r in rows], dtype=float)
            if len(diffs) == 1:
                parts.append(f"{name} {diffs[0]:+.1f} (one seed)")
                continue
            p = paired_p_value(diffs)
            verdict = "within seed noise" if not p < 0.05 else ("a gain" if diffs.mean() > 0 else "a loss")
            parts.append(f"{name} {diffs.mean():+.1f} ± {diffs.std():.1f} ({verdict}, p = {p:.2g})")
        lines.append(
            f"{METHODS[method].label} − {METHODS[baseline].label}, same seed over "
            f"{count(len(rows), 'seed')}: " + "; ".join(parts) + "."
        )
    return lines


def plot_shots(per_seed, methods, path, dataset, command=None):
    """Many/medium/few-shot accuracy per method, mean ± std over seeds: one
    marker per method and group (bars from 0 would hide differences of a
    point), the legend beside the axes."""
    figure, ax = plots.plt.subplots(figsize=(8, 3.8))
    width = 0.6 / len(methods)
    for i, method in enumerate(methods):
        values = (
            np.array(
                [[results[method].rows[method][s] for s in SHOTS] for results in per_seed.values()],
                dtype=float,
            )
            * 100
        )  # None (an empty group) becomes NaN
        with warnings.catch_warnings(action="ignore", category=RuntimeWarning):
            # An empty group (all NaN) draws no point instead of warning.
            mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
        ax.errorbar(
            np.arange(len(SHOTS)) + (i - (len(methods) - 1) / 2) * width,
            mean,
            yerr=std if len(per_seed) > 1 else None,
            marker=plots.MARKERS[i % len(plots.MARKERS)],
            linestyle="none",
            capsize=3,
            label=METHODS[method].label,
        )
    ax.set_xticks(np.arange(len(SHOTS)), [f"{s}-shot" for s in SHOTS])
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{dataset}: {spread_label(len(per_seed))}")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    plots.save_figure(figure, path, command)
