"""What one seed of the baseline recipe does (imported when a run starts)."""

import keras
import numpy as np

from kerazoo import backbones, metrics
from kerazoo.data import eval_dataset, train_dataset
from kerazoo.models import Classifier
from kerazoo.ops import outputs_numpy
from kerazoo.optimizers import with_weight_decay
from kerazoo.recipes import plots
from kerazoo.recipes.baseline import METHODS
from kerazoo.recipes.recipe import Outcome
from kerazoo.recipes.results import MethodResult


def build_model(config, protocol):
    """A compiled `Classifier` for the config."""
    steps = config.epochs * (len(protocol.train_labels) // config.batch_size)
    model = Classifier(
        backbones.get(
            config.backbone,
            input_shape=protocol.image_shape,
            synchronized=config.synchronized_bn,
        ),
        protocol.num_classes,
    )
    model.compile(
        optimizer=with_weight_decay(
            keras.optimizers.SGD(
                learning_rate=keras.optimizers.schedules.CosineDecay(config.learning_rate, steps),
                momentum=config.momentum,
            ),
            config.weight_decay,
        ),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    model(protocol.train_images[:1])
    return model


def run_method(config, run, method, data):
    seed = run.seed
    protocol = run.protocol()
    train = train_dataset(
        protocol.train_images,
        protocol.train_labels,
        config.batch_size,
        seed=seed,
        epoch_counter=run.epoch_counter,
        augment=config.augment,
    )
    test = eval_dataset(protocol.test_images, protocol.test_labels)
    model = build_model(config, protocol)
    stage = f"seed{seed}"
    run.fit(model, train, stage=stage, epochs=config.epochs, test_data=test)

    predictions = np.argmax(outputs_numpy(model, protocol.test_images), axis=-1)
    labels = protocol.test_labels
    per_class = metrics.per_class_accuracy(labels, predictions, protocol.num_classes)
    row = {
        "test_accuracy": metrics.accuracy(labels, predictions),
        "balanced_accuracy": metrics.balanced_accuracy(labels, predictions, protocol.num_classes),
    }
    if seed == config.seed:
        plots.plot_history(
            run.path / "logs" / f"{stage}.csv",
            run.path / "training_curves.png",
            f"{config.dataset}: {METHODS[method].label}, seed {seed}",
            run.command,
        )
    return MethodResult(
        {method: row},
        details={"per_class_accuracy": {n: float(a) for n, a in zip(protocol.class_names, per_class)}},
        model=model,
        input_shape=protocol.image_shape,
        sample_images=protocol.test_images[:7],
        class_names=protocol.class_names,
    )


def report(config, run, per_seed):
    protocol = run.protocol()
    counts = protocol.class_counts()
    per_class = np.mean(
        [
            [r["erm"].details["per_class_accuracy"][n] for n in protocol.class_names]
            for r in per_seed.values()
        ],
        axis=0,
    )
    return Outcome(
        "\n".join(
            [
                "## Per class (mean over seeds)",
                "",
                "| class | train images | test accuracy |",
                "|---|---|---|",
                *[
                    f"| {name} | {counts[i]} | {100 * per_class[i]:.1f} % |"
                    for i, name in enumerate(protocol.class_names)
                ],
                "",
                "## Data",
                "",
                *[f"- {note}" for note in protocol.notes],
                "",
                f"![training curves of seed {config.seed}](training_curves.png)",
            ]
        )
    )
