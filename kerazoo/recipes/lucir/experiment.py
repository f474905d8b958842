"""What one seed of the lucir recipe does (imported when a run starts)."""

import types

import keras
import numpy as np

from kerazoo import backbones, metrics
from kerazoo.data.splits import class_order, incremental_phases
from kerazoo.incremental import METHODS as INCREMENTAL_METHODS
from kerazoo.incremental import ClassIncremental, Settings, labels_in_phase_order
from kerazoo.recipes import plots
from kerazoo.recipes.lucir import METHODS, RECIPE
from kerazoo.recipes.recipe import Outcome
from kerazoo.recipes.results import MethodResult, count, format_values, spread_label
from kerazoo.schedules import VariableLength

PHASE_TABLE_TITLE = "Accuracy on all seen classes after each phase (%)"


def build_optimizer(config):
    def make(steps):
        if config.lr_milestones:
            per_epoch = steps // config.epochs
            schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
                [m * per_epoch for m in config.lr_milestones],
                [config.learning_rate * 0.1**i for i in range(len(config.lr_milestones) + 1)],
            )
        else:
            schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)
        # A phase's number of steps follows the seed's class order: as
        # variables, one traced step serves the phase on every seed.
        return keras.optimizers.SGD(VariableLength(schedule), momentum=config.momentum)

    return make


def build_backbone(config, method, image_shape):
    """The feature extractor of `method`: the LUCIR code's cosine models drop
    the last block's ReLU (modified_resnet_cifar), its iCaRL-CNN baseline
    keeps it (resnet_cifar), and so do kerazoo's other linear-head methods."""
    cosine = INCREMENTAL_METHODS[method].head == "cosine"
    return backbones.get(config.backbone, input_shape=image_shape, last_relu=not cosine)


def _rows(method):
    """(row id, PhaseResult field) pairs a method reports."""
    return [(method, "cnn_accuracy"), *[(row, "nme_accuracy") for row in METHODS[method].rows]]


def prepare(config, run):
    protocol = run.protocol()
    return types.SimpleNamespace(
        protocol=protocol,
        phases=incremental_phases(np.arange(protocol.num_classes), config.num_base, config.num_phases),
    )


def run_method(config, run, method, data):
    protocol, phases, seed = data.protocol, data.phases, run.seed
    order_seed = seed if config.class_order_seed is None else config.class_order_seed
    order = class_order(protocol.num_classes, order_seed)
    run.log(f"seed {seed}: class order {order.tolist()}", console=False)
    learner = ClassIncremental(
        INCREMENTAL_METHODS[method],
        (
            protocol.train_images,
            labels_in_phase_order(protocol.train_labels, order),
            protocol.test_images,
            labels_in_phase_order(protocol.test_labels, order),
        ),
        [len(p) for p in phases],
        Settings.from_config(config),
        seed,
        build_backbone=lambda: build_backbone(config, method, protocol.image_shape),
        make_optimizer=build_optimizer(config),
        fit=run.fit,
        strategy=run.strategy,
        epoch_counter=run.epoch_counter,
        log=lambda message: run.log(message, console=False),
        reuse=run.reuse,
    )
    phase_results = learner.run(f"seed{seed}-{method}")
    rows, curves = {}, {}
    for row, field in _rows(method):
        accuracies = [getattr(r, field) for r in phase_results]
        curves[row] = accuracies
        rows[row] = {
            "average_incremental_accuracy": metrics.average_incremental_accuracy(accuracies),
            "final_accuracy": accuracies[-1],
            "average_forgetting": metrics.average_forgetting([r.task_accuracy for r in phase_results])
            if field == "cnn_accuracy"
            else None,
        }
    num_classes = [int(sum(len(p) for p in phases[: i + 1])) for i in range(len(phases))]
    return MethodResult(
        rows,
        details={"per_phase_accuracy": curves, "num_classes": num_classes, "class_order": order.tolist()},
        # Shipped as backbone + cosine head (`inference_model()`), without the
        # frozen old model; its columns follow this seed's class order.
        model=learner.model,
        input_shape=protocol.image_shape,
        sample_images=protocol.test_images[:7],
        class_names=[protocol.class_names[c] for c in order],
        model_metrics={
            "test_accuracy": rows[method]["final_accuracy"],
            "average_incremental_accuracy": rows[method]["average_incremental_accuracy"],
            "average_forgetting": rows[method]["average_forgetting"],
        },
    )


def _plot(curves, num_classes, path, num_seeds, dataset, command=None):
    figure, ax = plots.plt.subplots(figsize=(7.5, 4))
    # Horizontal offsets (a few % of the axis) keep neighbouring curves'
    # error bars apart.
    reach = 0.015 * (max(num_classes) - min(num_classes)) if len(num_classes) > 1 else 0.15
    offsets = np.linspace(-reach, reach, len(curves))
    for offset, (name, values) in zip(offsets, curves.items()):
        values = 100 * np.asarray(values)
        x = np.asarray(num_classes) + offset
        ax.errorbar(
            x,
            values.mean(0),
            yerr=values.std(0) if num_seeds > 1 else None,
            marker="o",
            capsize=3,
            label=name,
        )
    ax.set_xticks(num_classes)
    ax.set_xlabel("number of classes")
    ax.set_ylabel("accuracy on all seen classes (%)")
    ax.set_title(f"Class-incremental {dataset} ({spread_label(num_seeds)})")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    plots.save_figure(figure, path, command)


def report(config, run, per_seed):
    protocol = run.protocol()
    first = next(iter(per_seed.values()))
    num_classes = next(iter(first.values())).details["num_classes"]
    labels = RECIPE.labels
    curves = {
        labels[row]: [results[method].details["per_phase_accuracy"][row] for results in per_seed.values()]
        for method, result in first.items()
        for row in result.details["per_phase_accuracy"]
    }
    _plot(curves, num_classes, run.path / "accuracy_curve.png", len(per_seed), config.dataset, run.command)
    label = spread_label(len(per_seed))
    phase_table = "\n".join(
        [
            "| classes | " + " | ".join(curves) + " |",
            "|---" * (len(curves) + 1) + "|",
            *[
                f"| {n} | "
                + " | ".join(format_values([c[i] for c in values]) for values in curves.values())
                + " |"
                for i, n in enumerate(num_classes)
            ],
        ]
    )
    order = (
        "each seed its own class order"
        if config.class_order_seed is None
        else f"class order seed {config.class_order_seed}"
    )
    notes = [
        f"Class-incremental protocol: {count(config.num_base, 'base class', 'base classes')} + "
        f"{count(config.num_phases, 'phase')}, {count(config.exemplars_per_class, 'exemplar')} per class "
        f"(herding), {count(config.epochs, 'epoch')} per "
        f"phase, seeds {list(per_seed)} ({order}). Every method sees the same data, class order "
        "and memory.",
        "",
        f"## {PHASE_TABLE_TITLE}, {label}",
        "",
        phase_table,
        "",
        "![accuracy vs classes](accuracy_curve.png)",
        "",
        "## Reading the table",
        "",
        "- Average incremental accuracy includes the base phase. Forgetting: mean over the earlier "
        "phases (each phase's classes one task, the base phase's too) of (best earlier accuracy on "
        "the task − final accuracy on it), CNN classifier (Chaudhry et al., 2018).",
        "- iCaRL-CNN is the LUCIR code's baseline (`incremental_train_and_eval.py`): linear head, "
        f"CE + distillation on the old classes' logits (β = {config.distillation_weight}, "
        f"T = {config.temperature}), exemplars.",
        "- `replay` (linear head, CE only, exemplars) and `cn` (cosine head, CE only, no "
        "distillation) are extra baselines, not the paper's iCaRL-CNN or CN rows.",
        "- Limitation: LUCIR targets the imbalance between a few exemplars per old class and many "
        "new images; with a memory that is large relative to the new data its advantage can "
        "vanish. This run measured only the memory size above.",
        "",
        "## Data",
        "",
        *[f"- {note}" for note in protocol.notes],
    ]
    return Outcome("\n".join(notes), table=f"{PHASE_TABLE_TITLE}, {label}\n{phase_table}")
