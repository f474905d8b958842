"""BNM (batch nuclear-norm maximisation) against CE only, EntMin and fast BNM.

`python -m kerazoo.recipes.bnm` (`task=da`, the default) runs unsupervised
domain adaptation offline: source = a seeded half of the digits training
split, upsampled to 16x16; target = the other half with a background shift
(every zero pixel set to one random level in {0..127}/255 per image),
unlabelled; evaluation on the shifted test split. 400 steps of 64 source +
64 target images in separate forward passes (as the official code), Adam
1e-3, λ = 1, BNM = −mean of the singular values (the official DA code). A
CE-only warm-up of 150 steps
stands in for the official code's ImageNet-pretrained start: from random
weights BNM amplifies whatever the near-uniform target predictions are.

`--set task=ssl` runs semi-supervised learning: digits with a few labels per
class, BNM (÷ batch, the paper's form) on the rest.

In the same run, on the same data and seeds, it trains CE only (source-only
or labelled-only), EntMin, BNM and FBNM, and reports accuracy on the target
(DA) or test (SSL) split, and the diversity the paper analyses: the number
of distinct predicted classes and the nuclear norm of the prediction matrix
on that split, with a plot of its sorted singular values per method. The
exported model (and the zoo's `digits_bnm`) is the first seed's BNM model.
"""

import dataclasses
import math

import keras
import numpy as np

from kerazoo import backbones, metrics
from kerazoo.data import eval_dataset, make_domain_shift, make_few_labels, paired_dataset
from kerazoo.data.folders import folder_domain_shift
from kerazoo.data.user_sources import IMAGE_FOLDERS
from kerazoo.models import DomainAdapter, SemiSupervised
from kerazoo.optimizers import with_weight_decay
from kerazoo.recipes import plots, runner
from kerazoo.recipes.config import ConfigError, option
from kerazoo.recipes.results import Column, SeedResult
from kerazoo.schedules import InverseDecay

LABELS = {"none": "CE only", "entmin": "EntMin", "bnm": "BNM", "fbnm": "FBNM"}
COLUMNS = [
    Column("accuracy", "target (DA) / test (SSL) accuracy"),
    Column("batch_stats_accuracy", "the same with BatchNorm batch statistics"),
    Column("predicted_classes", "predicted classes", scale=1),
    Column("nuclear_norm", "nuclear norm of predictions", scale=1),
]
EFFECTS = [(LABELS[m], LABELS["none"]) for m in ("bnm", "fbnm", "entmin")]
# Keyword arguments of each target shift (the prototype's strengths).
SHIFTS = {"bg": "bg_max_level", "rot": "rot_max_degrees"}
FOLDERS = IMAGE_FOLDERS


@dataclasses.dataclass
class BNMConfig(runner.RunConfig):
    task: str = option("da", "da: domain adaptation; ssl: few labels + unlabelled", choices=["da", "ssl"])
    image_size: int = option(16, "resize images to this square size (0 = keep)", min=0)
    shift: str = option("bg", "da target shift of the dataset's other half (not with domain folders)",
                        choices=sorted(SHIFTS))
    bg_max_level: int = option(127, "bg shift: background level up to this /255", min=0, max=255)
    rot_max_degrees: float = option(45.0, "rot shift: rotation up to ± this", min=0.0, max=180.0)
    source_domain: str = option("", f"dataset={FOLDERS}: source folder under data_dir (e.g. amazon) "
                                    "for domain folders root/<domain>/<class>/<image>; '' = shift one dataset")
    target_domain: str = option("", f"dataset={FOLDERS}: target folder under data_dir (e.g. webcam)")
    labels_per_class: int = option(5, "ssl: labelled training images per class", min=1)
    methods: list[str] = option(["none", "entmin", "bnm", "fbnm"], "methods, same data and seeds",
                                choices=sorted(LABELS))
    weight: float = option(1.0, "λ of the transfer term", min=0.0)
    warmup_steps: int = option(150, "CE-only steps before λ applies", min=0)
    normalization: str = option("default", "BNM/FBNM divisor: default = min_dim (da) / batch (ssl)",
                                choices=["default", "min_dim", "batch"])
    scope: str = option("global", "batch-level term over the global or the per-replica batch",
                        choices=["global", "replica"])
    steps: int = option(400, "training steps (rounded up to whole epochs of the paired stream)", min=1)
    batch_size: int = option(64, "labelled (source) images per step, global", min=1)
    unlabelled_batch_size: int = option(64, "unlabelled (target) images per step, global", min=1)
    backbone: str = option("convnet", "feature extractor", choices=backbones.available())
    synchronized_bn: bool = option(False, "BatchNorm statistics over the global batch")
    optimizer: str = option("adam", "adam, or sgd (momentum, nesterov)", choices=["adam", "sgd"])
    learning_rate: float = option(1e-3, "initial learning rate", min=0.0)
    lr_schedule: str = option("constant", "constant, or inverse: lr·(1 + 0.001·i)^-0.75",
                              choices=["constant", "inverse"])
    momentum: float = option(0.9, "sgd momentum", min=0.0, max=1.0)
    weight_decay: float = option(0.0, "weight decay, coupled L2 as PyTorch's", min=0.0)
    augment: bool = option(False, "random crop + flip on both streams")
    num_seeds: int = option(3, "seeds seed, seed+1, ...; each repeats every method", min=1)

    @property
    def domain_folders(self):
        """Whether the source and target are two domain folders (else a shift of one dataset)."""
        return bool(self.source_domain or self.target_domain)

    def validate(self):
        # The domain-folder mode's own needs first: they name every key it needs, data_dir included.
        if self.domain_folders and not (self.dataset == FOLDERS and self.task == "da" and self.data_dir
                                        and self.source_domain and self.target_domain):
            raise ConfigError(
                f"source_domain/target_domain (domain folders root/<domain>/<class>/<image>) need "
                f"dataset={FOLDERS}, task=da, data_dir, source_domain and target_domain."
            )
        if self.domain_folders and not self.image_size:
            raise ConfigError(f"dataset={FOLDERS} with domains needs image_size (folder images differ in size).")
        super().validate()
        if not self.methods:
            raise ConfigError(f"Config key 'methods' is empty; choose from {', '.join(LABELS)}.")


def _data(config):
    """(labelled images, labels, unlabelled images, eval images, eval labels, protocol)."""
    common = dict(data_dir=config.data_dir or None, seed=config.seed,
                  image_size=config.image_size or None, download=config.download)
    if config.task == "ssl":
        p = make_few_labels(config.dataset, config.labels_per_class, **common)
        return p.train_images, p.train_labels, p.unlabelled_images, p.test_images, p.test_labels, p
    if config.domain_folders:
        source, target = folder_domain_shift(config.data_dir, config.source_domain,
                                             config.target_domain, config.image_size)
    else:
        strength = {SHIFTS[config.shift].split("_", 1)[1]: getattr(config, SHIFTS[config.shift])}
        source, target = make_domain_shift(config.dataset, config.shift, **common, **strength)
    target.notes = target.notes + [f"source: {len(source.train_labels)} labelled images"]
    return (source.train_images, source.train_labels, target.unlabelled_images,
            target.test_images, target.test_labels, target)


def _optimizer(config):
    rate = config.learning_rate
    if config.lr_schedule == "inverse":
        rate = InverseDecay(rate)
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(rate, momentum=config.momentum, nesterov=True)
    else:
        optimizer = keras.optimizers.Adam(rate)
    return with_weight_decay(optimizer, config.weight_decay)


def build_model(config, method, image_shape, num_classes):
    """A compiled, built `DomainAdapter` (da) or `SemiSupervised` (ssl);
    call inside `strategy.scope()`."""
    model_class = DomainAdapter if config.task == "da" else SemiSupervised
    model = model_class(
        backbones.get(config.backbone, input_shape=image_shape, synchronized=config.synchronized_bn),
        num_classes,
        method=method,
        weight=config.weight,
        warmup_steps=config.warmup_steps,
        normalization=None if config.normalization == "default" else config.normalization,
        scope=config.scope,
    )
    model.compile(optimizer=_optimizer(config),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    model(np.zeros((1, *image_shape), "float32"))  # fit cannot build from paired batches
    return model


def run_seed(config, run, seed):
    images, labels, unlabelled, eval_images, eval_labels, protocol = _data(config)
    # Building the data ran TensorFlow ops (resizing), which moves the op seeds.
    keras.utils.set_random_seed(seed)
    run.data_notes = protocol.notes  # for report.md and the exported model's record
    lead = "labelled" if config.task == "da" else "unlabelled"
    lead_batches = (len(labels) // config.batch_size if lead == "labelled"
                    else len(unlabelled) // config.unlabelled_batch_size)
    if lead_batches == 0:
        raise ConfigError(f"Config: the {lead} set is smaller than one batch; lower the batch size.")
    epochs = math.ceil(config.steps / lead_batches)
    rows, spectra, shipped = {}, {}, None
    for method in config.methods:
        keras.utils.set_random_seed(seed)
        with run.strategy.scope():
            model = build_model(config, method, protocol.image_shape, protocol.num_classes)
        stream = paired_dataset(images, labels, unlabelled, config.batch_size, seed=seed,
                                epoch_counter=run.epoch_counter,
                                unlabelled_batch_size=config.unlabelled_batch_size,
                                epoch_length=lead, augment=config.augment)
        run.fit(model, stream, stage=f"seed{seed}-{method}", epochs=epochs)
        logits = model.predict(eval_dataset(eval_images, eval_labels), verbose=0)
        probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
        predicted = probs.argmax(axis=1)
        singular_values = np.linalg.svd(probs, compute_uv=False)
        rows[LABELS[method]] = {
            "accuracy": metrics.accuracy(eval_labels, predicted),
            "batch_stats_accuracy": _batch_stats_accuracy(model, eval_images, eval_labels,
                                                          config.unlabelled_batch_size),
            "predicted_classes": int(len(np.unique(predicted))),
            "nuclear_norm": float(singular_values.sum()),
        }
        spectra[LABELS[method]] = singular_values.tolist()
        if method == "bnm":
            shipped = model
    run.log(f"seed {seed}: {epochs} epochs x {lead_batches} steps = {epochs * lead_batches} steps",
            console=False)
    return SeedResult(
        rows,
        details={"singular_values": spectra, "steps": epochs * lead_batches,
                 "eval_shape": list(probs.shape)},
        model=shipped,
        input_shape=protocol.image_shape,
        sample_images=eval_images[:7],
        class_names=protocol.class_names,
        model_metrics=None if shipped is None else {"test_accuracy": rows["BNM"]["accuracy"]},
    )


def _batch_stats_accuracy(model, images, labels, batch_size):
    """Accuracy when BatchNorm normalises each evaluation batch with its own
    statistics, as the unlabelled forward pass did in training (a diagnostic:
    the official code, and `accuracy`, use the running statistics, which
    average the source and target batches' and can fail on the target).
    The model's weights are restored afterwards."""
    weights = model.get_weights()
    try:
        logits = np.concatenate([np.asarray(model(images[i:i + batch_size], training=True))
                                 for i in range(0, len(images), batch_size)])
    finally:
        model.set_weights(weights)
    return metrics.accuracy(labels, logits.argmax(axis=1))


def _plot_spectra(per_seed, path, split):
    figure, ax = plots.plt.subplots(figsize=(6.5, 4))
    details = [r.details["singular_values"] for r in per_seed.values()]
    for method in details[0]:
        values = np.mean([d[method] for d in details], axis=0)
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", label=method)
    ax.set_yscale("log")
    ax.set_xlabel("index (sorted)")
    ax.set_ylabel("singular value")
    seeds = "one seed" if len(per_seed) == 1 else f"mean over {len(per_seed)} seeds"
    ax.set_title(f"Singular values of the {split} prediction matrix ({seeds})")
    ax.grid(alpha=0.3)
    ax.legend()
    plots.save_figure(figure, path)


def report(config, run, per_seed):
    split = "target" if config.task == "da" else "test"
    _plot_spectra(per_seed, run.path / "singular_values.png", split)
    details = next(iter(per_seed.values())).details
    steps, (rows, classes) = details["steps"], details["eval_shape"]
    transfer = ("source CE + λ·term on the target batch, separate forward passes" if config.task == "da"
                else "labelled CE + λ·term on the unlabelled batch, separate forward passes")
    lines = [
        f"Task `{config.task}`: {transfer}; λ = {config.weight} after {config.warmup_steps} CE-only "
        f"steps; {steps} steps of {config.batch_size} + {config.unlabelled_batch_size} images; "
        f"`CE only` is {'source-only' if config.task == 'da' else 'labelled-only'} training. "
        f"Columns: accuracy, number of distinct predicted classes and nuclear norm "
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
    return runner.Outcome("\n".join(lines))


RECIPE = runner.Recipe("bnm", BNMConfig, run_seed, COLUMNS, __doc__, EFFECTS, report)

if __name__ == "__main__":
    RECIPE.main()
