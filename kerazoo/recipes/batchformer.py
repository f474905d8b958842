"""BatchFormer on a long tail: CE and Balanced Softmax, each with and without BatchFormer.

`python -m kerazoo.recipes.batchformer` trains the four methods on the same
data and seeds (digits-lt: Zipf 2.0, at least 5 images per class, balanced
test set; convnet, Adam 1e-3, 30 epochs of 5 passes, batch 64, 3 seeds) and reports
overall, many-, medium- and few-shot test accuracy, the same-seed effect of
BatchFormer and of Balanced Softmax, and a bar plot. Many-shot classes have
more than 100 training images, few-shot fewer than 20 (the ImageNet-LT
split); on digits-lt that is 1 many, 1 medium and 8 few-shot classes. The
shipped model is Balanced Softmax + BatchFormer of the first seed, exported
without BatchFormer. Paper protocols: recipes/cifar100_lt_batchformer.toml,
recipes/imagenet_lt_batchformer.toml (ImageNet-LT, streamed from disk: the
same code reads an in-memory or a streamed protocol through its
`train_dataset` / `eval_dataset`).
"""

import dataclasses
import functools
import warnings

import keras
import numpy as np

from kerazoo import backbones, metrics
from kerazoo.layers import BatchFormer
from kerazoo.models import BatchFormerClassifier
from kerazoo.optimizers import with_weight_decay
from kerazoo.recipes import plots, runner
from kerazoo.recipes.config import ConfigError, option
from kerazoo.recipes.results import Column, SeedResult, spread_label
from kerazoo.schedules import WarmupCosineDecay

# config name -> (table label, loss, with BatchFormer)
METHODS = {
    "ce": ("CE", "ce", False),
    "ce_batchformer": ("CE + BatchFormer", "ce", True),
    "balanced_softmax": ("Balanced Softmax", "balanced_softmax", False),
    "balanced_softmax_batchformer": ("Balanced Softmax + BatchFormer", "balanced_softmax", True),
}
SHIPPED = "balanced_softmax_batchformer"
SHOTS = ("many", "medium", "few")
COLUMNS = [
    Column("test_accuracy", "overall"),
    Column("many", "many-shot"),
    Column("medium", "medium-shot"),
    Column("few", "few-shot"),
]
EFFECTS = [
    ("CE + BatchFormer", "CE"),
    ("Balanced Softmax + BatchFormer", "Balanced Softmax"),
    ("Balanced Softmax", "CE"),
]


@dataclasses.dataclass
class BatchFormerConfig(runner.RunConfig):
    reads_streamed_datasets = True  # ImageNet-LT, through protocol.train_dataset

    dataset: str = option("digits-lt", "protocol (see RunConfig); -lt Zipf 2.0, -lt100 exponential rho=100")
    backbone: str = option("convnet", "feature extractor", choices=backbones.available())
    epochs: int = option(30, "training epochs", min=1)
    passes_per_epoch: int = option(
        5, "passes over the training set per epoch, each in its own seeded order "
        "(fewer, longer epochs: Keras' per-epoch cost dominates on tiny data)", min=1)
    batch_size: int = option(64, "global batch size; BatchFormer attends over it (per replica by default)",
                             min=2)
    optimizer: str = option("adam", "adam (constant lr) or sgd (momentum, cosine decay to 0)",
                            choices=["adam", "sgd"])
    learning_rate: float = option(1e-3, "learning rate of the backbone and head (sgd: where the "
                                  "warm-up starts, or the cosine's peak without one)", min=0.0)
    warmup_steps: int = option(0, "sgd: linear warm-up steps from learning_rate to warmup_learning_rate, "
                               "then cosine from there (the official CIFAR-100-LT schedule: 800)", min=0)
    warmup_learning_rate: float = option(0.0, "sgd: the warm-up's end and the cosine's peak "
                                         "(official CIFAR-100-LT: 0.1)", min=0.0)
    momentum: float = option(0.9, "SGD momentum", min=0.0, max=1.0)
    weight_decay: float = option(0.0, "weight decay, coupled L2 as PyTorch's (both optimizers)", min=0.0)
    batchformer_loss_weight: float = option(
        1.0, "factor on the loss with BatchFormer: 1 = mean over the 2B rows (README form), "
        "3 = the official BalancedSoftmax code's three summed terms", min=0.0)
    augment: bool = option(False, "random crop + horizontal flip: pad-4 (CIFAR) in memory, "
                                  "random-resized (ImageNet) when streamed")
    num_heads: int = option(4, "BatchFormer attention heads", min=1)
    num_layers: int = option(1, "BatchFormer encoder layers", min=1)
    dropout: float = option(0.5, "BatchFormer dropout (four places, as PyTorch)", min=0.0, max=0.99)
    batchformer_lr_scale: float = option(0.1, "BatchFormer's learning rate / the rest's", min=0.0)
    batchformer_scope: str = option("replica", "attend over each replica's batch or the global batch",
                                    choices=["replica", "global"])
    many_shot: int = option(100, "many-shot: more than this many training images", min=1)
    few_shot: int = option(20, "few-shot: fewer than this many training images", min=1)
    num_seeds: int = option(3, "seeds seed, seed+1, ...; each repeats every method", min=1)
    methods: list[str] = option(list(METHODS), "methods run on identical data and seeds",
                                choices=list(METHODS))

    def validate(self):
        super().validate()
        if not self.methods:
            raise ConfigError(f"Config key 'methods' is empty; choose from {', '.join(METHODS)}.")
        if self.warmup_steps and (self.optimizer != "sgd" or self.warmup_steps < 2
                                  or not self.warmup_learning_rate):
            raise ConfigError(
                f"Config key 'warmup_steps' ({self.warmup_steps}): a warm-up needs optimizer=sgd, "
                "warmup_steps >= 2 and warmup_learning_rate > 0 (the cosine's peak)."
            )
        if self.few_shot > self.many_shot:
            raise ConfigError(
                f"Config keys 'few_shot' ({self.few_shot}) and 'many_shot' ({self.many_shot}): "
                "few_shot must not exceed many_shot."
            )


def build_model(config, protocol, method, steps):
    """A compiled, built `BatchFormerClassifier` for one method; call inside `strategy.scope()`."""
    _, loss, with_batchformer = METHODS[method]
    batchformer = None
    if with_batchformer:
        batchformer = BatchFormer(
            num_heads=config.num_heads,
            dropout=config.dropout,
            num_layers=config.num_layers,
            scope=config.batchformer_scope,
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
            schedule = WarmupCosineDecay(config.learning_rate, config.warmup_learning_rate,
                                         config.warmup_steps, steps)
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


def run_seed(config, run, seed):
    protocol = run.protocol()
    counts = protocol.class_counts()
    steps = config.epochs * config.passes_per_epoch * (len(protocol.train_labels) // config.batch_size)
    if config.warmup_steps and config.warmup_steps >= steps:
        raise ConfigError(f"Config key 'warmup_steps' ({config.warmup_steps}) must be below the run's "
                          f"{steps} training steps (epochs x passes_per_epoch x batches per pass).")
    test = protocol.eval_dataset()
    rows, shipped = {}, None
    for method in config.methods:
        # Every method starts from the same weights and sees the same batches.
        keras.utils.set_random_seed(seed)
        train = _passes(config, protocol, seed, run.epoch_counter)
        with run.strategy.scope():
            model = build_model(config, protocol, method, steps)
        run.fit(model, train, stage=f"seed{seed}-{method}", epochs=config.epochs)
        predictions = np.argmax(model.predict(test, verbose=0), axis=-1)
        labels = protocol.test_labels
        shots = metrics.shot_accuracy(labels, predictions, counts, config.many_shot, config.few_shot)
        rows[METHODS[method][0]] = {
            "test_accuracy": metrics.accuracy(labels, predictions),
            # None, not NaN, for an empty group: the tables then show "–".
            **{k: None if np.isnan(v) else v for k, v in shots.items()},
        }
        if shipped is None or method == SHIPPED:
            shipped = (model, rows[METHODS[method][0]])
    return SeedResult(
        rows,
        model=shipped[0],
        input_shape=protocol.image_shape,
        sample_images=protocol.sample_images(7),
        class_names=protocol.class_names,
        model_metrics=shipped[1],
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
    return functools.reduce(lambda first, second: first.concatenate(second), streams)


def report(config, run, per_seed):
    protocol = run.protocol()
    counts = protocol.class_counts()
    groups = {
        "many": int((counts > config.many_shot).sum()),
        "medium": int(((counts >= config.few_shot) & (counts <= config.many_shot)).sum()),
        "few": int((counts < config.few_shot).sum()),
    }
    methods = [METHODS[m][0] for m in config.methods]
    plot_shots(per_seed, methods, run.path / "shots.png", config.dataset)
    return runner.Outcome(
        "\n".join(
            [
                "## Classes per group",
                "",
                f"Many-shot: more than {config.many_shot} training images ({groups['many']} classes); "
                f"medium: {config.few_shot} to {config.many_shot} ({groups['medium']}); "
                f"few-shot: fewer than {config.few_shot} ({groups['few']}). Training images per class: "
                + ", ".join(f"{n} {c}" for n, c in zip(protocol.class_names, counts)) + ".",
                "",
                "![many-, medium- and few-shot accuracy per method](shots.png)",
                "",
                "## What was measured",
                "",
                *[f"- {line}" for line in effect_verdicts(per_seed)],
                "",
                "## Data",
                "",
                *[f"- {note}" for note in protocol.notes],
            ]
        ),
        metrics={"classes_per_group": groups},
    )


def effect_verdicts(per_seed):
    """One sentence per effect that ran: its same-seed few-shot and overall
    differences, called a gain or a loss only when the mean exceeds the
    seed-to-seed spread of the differences."""
    lines = []
    for method, baseline in EFFECTS:
        rows = [r.rows for r in per_seed.values() if method in r.rows and baseline in r.rows]
        if not rows:
            continue
        parts = []
        for key, name in (("few", "few-shot"), ("test_accuracy", "overall")):
            diffs = 100 * np.array([r[method][key] - r[baseline][key] for r in rows], dtype=float)
            spread = diffs.std() if len(diffs) > 1 else float("nan")
            verdict = "within seed noise" if not abs(diffs.mean()) > spread else (
                "a gain" if diffs.mean() > 0 else "a loss")
            parts.append(f"{name} {diffs.mean():+.1f} ± {spread:.1f} ({verdict})")
        lines.append(f"{method} − {baseline}, same seed over {len(rows)} seed(s): " + "; ".join(parts) + ".")
    return lines


def plot_shots(per_seed, methods, path, dataset):
    """Grouped bars: many/medium/few-shot accuracy per method, mean ± std over seeds."""
    figure, ax = plots.plt.subplots(figsize=(8, 3.8))
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        values = np.array(
            [[r.rows[method][s] for s in SHOTS] for r in per_seed.values()], dtype=float
        ) * 100  # None (an empty group) becomes NaN
        with warnings.catch_warnings(action="ignore", category=RuntimeWarning):
            # An empty group (all NaN) draws no bar instead of warning.
            mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
        ax.bar(np.arange(len(SHOTS)) + (i - (len(methods) - 1) / 2) * width, mean,
               width, yerr=std, capsize=3, label=method)
    ax.set_xticks(np.arange(len(SHOTS)), [f"{s}-shot" for s in SHOTS])
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{dataset}: error bars {spread_label(len(per_seed))}")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    plots.save_figure(figure, path)


RECIPE = runner.Recipe(
    "batchformer", BatchFormerConfig, run_seed, COLUMNS, __doc__, effects=EFFECTS, report=report
)

if __name__ == "__main__":
    RECIPE.main()
