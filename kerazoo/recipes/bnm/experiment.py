"""What one seed of the bnm recipe does (imported when a run starts)."""

import math
import types

import keras
import numpy as np

from kerazoo import backbones, metrics
from kerazoo.data import make_domain_shift, make_few_labels, paired_dataset
from kerazoo.data.folders import folder_domain_shift
from kerazoo.models import DomainAdapter, SemiSupervised
from kerazoo.ops import outputs_numpy
from kerazoo.optimizers import with_weight_decay
from kerazoo.recipes import plots
from kerazoo.recipes.bnm import METHODS, SHIFTS
from kerazoo.recipes.config import ConfigError
from kerazoo.recipes.recipe import Outcome
from kerazoo.recipes.results import MethodResult, count
from kerazoo.schedules import InverseDecay


def _data(config):
    """(labelled images, labels, unlabelled images, eval images, eval labels, protocol)."""
    common = dict(
        data_dir=config.data_dir or None,
        seed=config.seed,
        image_size=config.image_size or None,
        download=config.download,
    )
    if config.task == "ssl":
        p = make_few_labels(config.dataset, config.labels_per_class, **common)
        return p.train_images, p.train_labels, p.unlabelled_images, p.test_images, p.test_labels, p
    if config.domain_folders:
        source, target = folder_domain_shift(
            config.data_dir, config.source_domain, config.target_domain, config.image_size
        )
    else:
        key = SHIFTS[config.shift]
        strength = {key.split("_", 1)[1]: getattr(config, key)} if key else {}
        source, target = make_domain_shift(config.dataset, config.shift, **common, **strength)
    target.notes = target.notes + [f"source: {len(source.train_labels)} labelled images"]
    return (
        source.train_images,
        source.train_labels,
        target.unlabelled_images,
        target.test_images,
        target.test_labels,
        target,
    )


def build_optimizer(config):
    rate = config.learning_rate
    if config.lr_schedule == "inverse":
        rate = InverseDecay(rate)
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(rate, momentum=config.momentum, nesterov=True)
    else:
        optimizer = keras.optimizers.Adam(rate)
    return with_weight_decay(optimizer, config.weight_decay)


def build_model(config, method, image_shape, num_classes):
    """A compiled, built `DomainAdapter` (da) or `SemiSupervised` (ssl)."""
    model_class = DomainAdapter if config.task == "da" else SemiSupervised
    model = model_class(
        backbones.get(config.backbone, input_shape=image_shape, synchronized=config.synchronized_bn),
        num_classes,
        method=method,
        weight=config.weight,
        warmup_steps=config.warmup_steps,
        normalization=None if config.normalization == "default" else config.normalization,
        scope=config.batch_scope,
    )
    model.compile(
        optimizer=build_optimizer(config), metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    )
    model(np.zeros((1, *image_shape), "float32"))  # fit cannot build from paired batches
    return model


def prepare(config, run):
    """The labelled, unlabelled and evaluation splits, and the steps of every method."""
    images, labels, unlabelled, eval_images, eval_labels, protocol = _data(config)
    run.data_notes = protocol.notes  # for report.md and the exported model's record
    lead, key, size = (
        ("labelled", "batch_size", len(labels))
        if config.task == "da"
        else ("unlabelled", "unlabelled_batch_size", len(unlabelled))
    )
    lead_batches = size // getattr(config, key)
    if lead_batches == 0:
        raise ConfigError(
            f"Config key '{key}' ({getattr(config, key)}) exceeds the {lead} set ({size} images); "
            f"set {key} to at most {size}."
        )
    epochs = math.ceil(config.steps / lead_batches)
    run.log(
        f"{count(epochs, 'epoch')} x {count(lead_batches, 'step')} = "
        f"{count(epochs * lead_batches, 'step')} per method",
        console=False,
    )
    return types.SimpleNamespace(
        images=images,
        labels=labels,
        unlabelled=unlabelled,
        eval_images=eval_images,
        eval_labels=eval_labels,
        protocol=protocol,
        lead=lead,
        epochs=epochs,
        steps=epochs * lead_batches,
    )


def run_method(config, run, method, data):
    model = run.reuse(
        build_model(config, method, data.protocol.image_shape, data.protocol.num_classes), method
    )
    # The seed's batches are every method's: one pipeline (its tf.data
    # functions traced once) per seed.
    stream = run.cache(
        ("stream", run.seed),
        lambda: paired_dataset(
            data.images,
            data.labels,
            data.unlabelled,
            config.batch_size,
            seed=run.seed,
            epoch_counter=run.epoch_counter,
            unlabelled_batch_size=config.unlabelled_batch_size,
            epoch_length=data.lead,
            augment=config.augment,
        ),
    )
    run.fit(model, stream, stage=f"seed{run.seed}-{method}", epochs=data.epochs)
    logits = outputs_numpy(model, data.eval_images)
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    predicted = probs.argmax(axis=1)
    singular_values = np.linalg.svd(probs, compute_uv=False)
    row = {
        "test_accuracy": metrics.accuracy(data.eval_labels, predicted),
        "batch_stats_accuracy": _batch_stats_accuracy(
            model, data.eval_images, data.eval_labels, config.unlabelled_batch_size
        ),
        "predicted_classes": int(len(np.unique(predicted))),
        "nuclear_norm": float(singular_values.sum()),
    }
    return MethodResult(
        {method: row},
        details={
            "singular_values": singular_values.tolist(),
            "steps": data.steps,
            "eval_shape": list(probs.shape),
        },
        model=model,
        input_shape=data.protocol.image_shape,
        sample_images=data.eval_images[:7],
        class_names=data.protocol.class_names,
        model_metrics={"test_accuracy": row["test_accuracy"]},
    )


def _batch_stats_accuracy(model, images, labels, batch_size):
    """Accuracy when BatchNorm normalises each evaluation batch with its own
    statistics, as the unlabelled forward pass did in training (a diagnostic:
    the official code, and `accuracy`, use the running statistics, which
    average the source and target batches' and can fail on the target).
    The model's weights are restored afterwards."""
    weights = model.get_weights()
    try:
        logits = np.concatenate(
            [
                np.asarray(model(images[i : i + batch_size], training=True))
                for i in range(0, len(images), batch_size)
            ]
        )
    finally:
        model.set_weights(weights)
    return metrics.accuracy(labels, logits.argmax(axis=1))


def _plot_spectra(per_seed, path, split, dataset, command=None):
    figure, ax = plots.plt.subplots(figsize=(6.5, 4))
    # Methods' spectra can coincide: a marker and a line style each keep them apart.
    styles = zip(plots.MARKERS, ("-", "--", "-.", ":", "-", "--"))
    lowest, highest = np.inf, 0.0
    for method, (marker, line) in zip(next(iter(per_seed.values())), styles):
        values = np.mean(
            [results[method].details["singular_values"] for results in per_seed.values()], axis=0
        )
        ax.plot(
            np.arange(1, len(values) + 1),
            values,
            marker=marker,
            linestyle=line,
            markersize=4,
            fillstyle="none",
            label=METHODS[method].label,
        )
        positive = values[values > 0]
        if len(positive):
            lowest, highest = min(lowest, positive.min()), max(highest, positive.max())
    ax.set_yscale("log")
    # Plain numbers on the log axis; a spectrum within one decade has too few
    # major ticks, so its minor ticks are labelled too (else "9×10⁰" or none).
    plain = plots.matplotlib.ticker.FormatStrFormatter("%g")
    ax.yaxis.set_major_formatter(plain)
    if highest < 10 * lowest:
        ax.yaxis.set_minor_formatter(plain)
    ax.set_xlabel("index (sorted)")
    ax.set_ylabel("singular value")
    seeds = "one seed" if len(per_seed) == 1 else f"mean over {len(per_seed)} seeds"
    ax.set_title(f"{dataset}: singular values of the {split} prediction matrix ({seeds})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    plots.save_figure(figure, path, command)


def report(config, run, per_seed):
    split = "target" if config.task == "da" else "test"
    if config.task == "ssl":
        setting = f"{config.dataset}, {config.labels_per_class} labels per class"
    elif config.source_domain:
        setting = f"{config.dataset}: {config.source_domain} → {config.target_domain}"
    else:
        setting = f"{config.dataset}: {config.shift} shift"
    _plot_spectra(per_seed, run.path / "singular_values.png", split, setting, run.command)
    details = next(iter(next(iter(per_seed.values())).values())).details
    steps, (rows, classes) = details["steps"], details["eval_shape"]
    transfer = (
        "source CE + λ·term on the target batch, separate forward passes"
        if config.task == "da"
        else "labelled CE + λ·term on the unlabelled batch, separate forward passes"
    )
    lines = [
        f"Task `{config.task}`: {transfer}; λ = {config.weight} after {config.warmup_steps} CE-only "
        f"steps; {count(steps, 'step')} of {config.batch_size} + {config.unlabelled_batch_size} images; "
        + (
            "`CE only` trains on the source only, its target batches still passing through the network "
            "(λ = 0, as the official code), so BatchNorm's running statistics adapt to the target as "
            "the other methods' do. "
            if config.task == "da"
            else "`CE only` is labelled-only training. "
        )
        + f"Columns: accuracy, number of distinct predicted classes and nuclear norm "
        f"(sum of singular values) of the {split} prediction matrix (softmax, "
        f"{rows} × {classes}; at most √(min(B, C)·B) = {math.sqrt(min(rows, classes) * rows):.1f}).",
        "",
        f"![sorted singular values of the {split} prediction matrix](singular_values.png)",
        "",
        "The paper's diagnostic: a method that keeps all classes predicted has a flatter "
        "spectrum (larger small singular values); a collapsed one (EntMin often) has few large ones.",
        "",
        "## Data",
        "",
        *[f"- {note}" for note in run.data_notes],
    ]
    return Outcome("\n".join(lines))
