"""LUCIR class-incremental learning against replay and joint training.

`python -m kerazoo.recipes.lucir` runs the offline digits protocol: 2 base
classes then 4 phases of 2, 6 exemplars per class (about the paper's
20-of-500 ratio), over 3 seeds. In the same run, on the same data, class
order and memory, it trains LUCIR (cosine head + less-forget + margin
ranking), its ablations (cosine head with CE only; + less-forget), LUCIR
with class-balanced finetuning (CBF), replay fine-tuning (linear head, CE,
exemplars) and joint training (upper bound), and reports per-phase
accuracy, average incremental accuracy and forgetting. The model it exports
(and the zoo's `digits_lucir`) is seed 0's final LUCIR model, without CBF.
"""

import dataclasses

import keras
import numpy as np

from kerazoo import backbones, metrics
from kerazoo.data.splits import class_order, incremental_phases
from kerazoo.incremental import METHODS, ClassIncremental, labels_in_phase_order
from kerazoo.models import Classifier
from kerazoo.recipes import plots, runner
from kerazoo.recipes.config import ConfigError, option

PHASE_TABLE_TITLE = "Accuracy on all seen classes after each phase (%, mean ± std over seeds)"
LABELS = {
    "lucir": "LUCIR",
    "lucir+cbf": "LUCIR+CBF",
    "cn": "cosine+CE (cn)",
    "cn+lf": "cn+lf",
    "replay": "replay",
    "joint": "joint",
}


@dataclasses.dataclass
class LUCIRConfig(runner.RunConfig):
    backbone: str = option("convnet", f"feature extractor, built with last_relu=False: {backbones.available()}")
    num_base: int = option(2, "classes in the base phase")
    num_phases: int = option(4, "incremental phases after the base phase (equal class counts)")
    class_order_seed: int = option(-1, "seed of the class order (-1: each run seed; LUCIR's CIFAR order is 1993)")
    exemplars_per_class: int = option(6, "exemplars kept per old class (herding)")
    epochs: int = option(30, "epochs per phase")
    batch_size: int = option(32, "global batch size")
    learning_rate: float = option(0.05, "SGD learning rate at the start of each phase")
    lr_milestones: list[int] = option([], "epochs where the lr drops x0.1 (empty: cosine decay to 0 per phase)")
    momentum: float = option(0.9, "SGD momentum")
    weight_decay: float = option(5e-4, "coupled L2 on all trainable weights (PyTorch SGD's weight decay)")
    lambda_base: float = option(5.0, "less-forget weight base; lambda = base*sqrt(old/new)")
    margin: float = option(0.5, "margin-ranking margin m")
    k: int = option(2, "margin-ranking hard negatives K")
    augment: bool = option(False, "pad-4 crop + flip (CIFAR)")
    flip_means: bool = option(False, "average NME class means with flipped images (CIFAR code)")
    num_seeds: int = option(3, "seeds seed, seed+1, ...; each repeats every method")
    methods: list[str] = option(
        ["lucir", "replay", "joint", "cn", "cn+lf", "lucir+cbf"],
        f"methods run on identical data: {sorted(METHODS)}",
    )


def _mean_std(values):
    values = 100 * np.asarray(values, dtype=float)
    return f"{values.mean():.1f} ± {values.std():.1f}"


def _make_optimizer(config):
    def make(steps):
        if config.lr_milestones:
            per_epoch = steps // config.epochs
            schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
                [m * per_epoch for m in config.lr_milestones],
                [config.learning_rate * 0.1**i for i in range(len(config.lr_milestones) + 1)],
            )
        else:
            schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)
        return keras.optimizers.SGD(schedule, momentum=config.momentum)

    return make


def _plot(curves, num_classes, path, seeds):
    figure, ax = plots.plt.subplots(figsize=(7.5, 4))
    # Small horizontal offsets keep the error bars of neighbouring curves apart.
    offsets = np.linspace(-0.15, 0.15, len(curves))
    for offset, (name, values) in zip(offsets, curves.items()):
        values = 100 * np.asarray(values)
        x = np.asarray(num_classes) + offset
        ax.errorbar(x, values.mean(0), yerr=values.std(0), marker="o", capsize=3, label=name)
    ax.set_xticks(num_classes)
    ax.set_xlabel("number of classes")
    ax.set_ylabel("accuracy on all seen classes (%)")
    ax.set_title(f"Class-incremental digits ({len(seeds)} seeds)")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    plots.save_figure(figure, path)


def run(config, run, strategy):
    unknown = [m for m in config.methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"Unknown methods {unknown}; choose from {sorted(METHODS)}.")
    protocol = run.protocol()
    phases = incremental_phases(np.arange(protocol.num_classes), config.num_base, config.num_phases)
    phase_sizes = [len(p) for p in phases]
    seeds = [config.seed + i for i in range(config.num_seeds)]
    results = {}  # (seed, method) -> [PhaseResult]
    final_model = final_classes = None  # seed 0's (the first seed's) LUCIR model
    for seed in seeds:
        order = class_order(protocol.num_classes, seed if config.class_order_seed < 0 else config.class_order_seed)
        run.log(f"seed {seed}: class order {order.tolist()}")
        data = (
            protocol.train_images,
            labels_in_phase_order(protocol.train_labels, order),
            protocol.test_images,
            labels_in_phase_order(protocol.test_labels, order),
        )
        for name in config.methods:
            keras.utils.set_random_seed(seed)
            learner = ClassIncremental(
                METHODS[name],
                data,
                phase_sizes,
                build_backbone=lambda: backbones.get(
                    config.backbone, input_shape=protocol.image_shape, last_relu=False
                ),
                make_optimizer=_make_optimizer(config),
                fit=run.fit,
                strategy=strategy,
                epoch_counter=run.epoch_counter,
                exemplars_per_class=config.exemplars_per_class,
                epochs=config.epochs,
                batch_size=config.batch_size,
                seed=seed,
                lambda_base=config.lambda_base,
                margin=config.margin,
                k=config.k,
                weight_decay=config.weight_decay,
                augment=config.augment,
                flip_means=config.flip_means,
                log=run.log,
            )
            results[seed, name] = learner.run(f"seed{seed}-{name}")
            if name == "lucir" and final_model is None:
                # Shipped without the frozen old backbone: the deployable
                # (and fine-tunable) part is the backbone and cosine head.
                final_model = Classifier(
                    learner.model.backbone, protocol.num_classes, head=learner.model.head
                )
                final_model(protocol.test_images[:1])
                final_classes = [protocol.class_names[c] for c in order]

    num_classes = [r.num_classes for r in results[seeds[0], config.methods[0]]]
    curves, summary_rows, summary, metric_values = {}, [], [], {}
    for name in config.methods:
        variants = [(LABELS[name] + ("-CNN" if name == "lucir" else ""), "cnn_accuracy")]
        if name == "lucir":
            variants.append(("LUCIR-NME", "nme_accuracy"))
        for label, field in variants:
            per_seed = [[getattr(r, field) for r in results[s, name]] for s in seeds]
            curves[label] = per_seed
            aia = [metrics.average_incremental_accuracy(a) for a in per_seed]
            final = [a[-1] for a in per_seed]
            forgetting = [
                metrics.average_forgetting([r.task_accuracy for r in results[s, name]]) for s in seeds
            ] if field == "cnn_accuracy" else None
            metric_values[label] = {
                "average_incremental_accuracy": aia,
                "final_accuracy": final,
                "average_forgetting": forgetting,
                "per_phase_accuracy": per_seed,
            }
            summary_rows.append(
                f"| {label} | {_mean_std(aia)} | {_mean_std(final)} | "
                f"{_mean_std(forgetting) if forgetting else '–'} |"
            )
            summary.append((f"{label} avg incremental acc", _mean_std(aia)))

    _plot(curves, num_classes, run.path / "accuracy_curve.png", seeds)
    phase_rows = [
        f"| {n} | " + " | ".join(_mean_std([c[s][i] for s in range(len(seeds))]) for c in curves.values()) + " |"
        for i, n in enumerate(num_classes)
    ]
    phase_table = "\n".join(
        [
            "| classes | " + " | ".join(curves) + " |",
            "|---" * (len(curves) + 1) + "|",
            *phase_rows,
        ]
    )
    report = "\n".join(
        [
            f"Class-incremental protocol: {config.num_base} base classes + {config.num_phases} "
            f"phases of {phase_sizes[-1] if config.num_phases else 0}, {config.exemplars_per_class} "
            f"exemplars per class (herding), {config.epochs} epochs per phase, seeds {seeds} "
            "(each seed: its own class order"
            + ("" if config.class_order_seed < 0 else f"; order seed {config.class_order_seed}")
            + ", weights and data order). Every method sees the same data, order and memory.",
            "",
            f"## {PHASE_TABLE_TITLE}",
            "",
            phase_table,
            "",
            "## Summary (%, mean ± std over seeds)",
            "",
            "| method | average incremental accuracy | final accuracy | average forgetting |",
            "|---|---|---|---|",
            *summary_rows,
            "",
            "Average incremental accuracy includes the base phase. Forgetting: mean over "
            "earlier phases' classes of (best earlier accuracy − final accuracy), CNN classifier.",
            "",
            "![accuracy vs classes](accuracy_curve.png)",
            "",
            "## Limitation",
            "",
            "LUCIR targets the imbalance between a few exemplars and many new images. With a "
            "large memory (20 exemplars per class on digits, little imbalance) the prototypes "
            "measured LUCIR *below* replay (96.9 vs 97.7 average incremental accuracy); "
            "use it when memory is small relative to the new data.",
            "",
            "## Data",
            "",
            *[f"- {note}" for note in protocol.notes],
        ]
    )
    metric_values["seeds"] = seeds
    metric_values["num_classes"] = num_classes
    model_metrics = None
    if final_model is not None:
        cnn = metric_values["LUCIR-CNN"]
        model_metrics = {
            "test_accuracy": cnn["final_accuracy"][0],
            "average_incremental_accuracy": cnn["average_incremental_accuracy"][0],
            "average_forgetting": cnn["average_forgetting"][0],
        }
    return runner.Outcome(
        metric_values,
        report,
        summary,
        final_model,
        protocol.test_images[:7],
        class_names=final_classes,
        model_metrics=model_metrics,
        table=f"{PHASE_TABLE_TITLE}\n{phase_table}",
    )


if __name__ == "__main__":
    runner.main("lucir", LUCIRConfig, run, __doc__)
