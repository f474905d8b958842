"""ERM baseline: a backbone and a linear head trained with cross-entropy.

`python -m kerazoo.recipes.baseline` trains the digits convnet for 30
epochs and reports test accuracy; every method recipe compares against this.
"""

import dataclasses

import keras
import numpy as np

from kerazoo import backbones, metrics
from kerazoo.data import eval_dataset, train_dataset
from kerazoo.models import Classifier
from kerazoo.recipes import plots, runner
from kerazoo.recipes.config import option


@dataclasses.dataclass
class BaselineConfig(runner.RunConfig):
    backbone: str = option("convnet", f"feature extractor: one of {backbones.available()}")
    synchronized_bn: bool = option(False, "BatchNorm statistics over the global batch")
    epochs: int = option(30, "training epochs")
    batch_size: int = option(32, "global batch size (split across replicas)")
    learning_rate: float = option(0.05, "peak SGD learning rate (cosine decay to 0)")
    momentum: float = option(0.9, "SGD momentum")
    weight_decay: float = option(5e-4, "decoupled weight decay of SGD")
    augment: bool = option(False, "pad-4 random crop and horizontal flip (CIFAR-style)")


def build_classifier(config, protocol):
    """A compiled `Classifier` for the config; call inside `strategy.scope()`."""
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
        optimizer=keras.optimizers.SGD(
            learning_rate=keras.optimizers.schedules.CosineDecay(config.learning_rate, steps),
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    model(protocol.train_images[:1])
    return model


def run(config, run, strategy):
    protocol = run.protocol()
    train = train_dataset(
        protocol.train_images,
        protocol.train_labels,
        config.batch_size,
        seed=config.seed,
        epoch_counter=run.epoch_counter,
        augment=config.augment,
    )
    test = eval_dataset(protocol.test_images, protocol.test_labels)
    with strategy.scope():
        model = build_classifier(config, protocol)
    run.fit(model, train, stage="baseline", epochs=config.epochs, validation_data=test)

    predictions = np.argmax(model.predict(test, verbose=0), axis=-1)
    labels = protocol.test_labels
    per_class = metrics.per_class_accuracy(labels, predictions, protocol.num_classes)
    results = {
        "test_accuracy": metrics.accuracy(labels, predictions),
        "balanced_accuracy": metrics.balanced_accuracy(labels, predictions, protocol.num_classes),
        "per_class_accuracy": {n: float(a) for n, a in zip(protocol.class_names, per_class)},
    }
    plots.plot_history(
        run.path / "logs" / "baseline.csv", run.path / "training_curves.png", "ERM baseline"
    )
    counts = protocol.class_counts()
    report = "\n".join(
        [
            "## Result",
            "",
            "| method | test accuracy | class-balanced accuracy |",
            "|---|---|---|",
            f"| ERM baseline | {100 * results['test_accuracy']:.2f} % | "
            f"{100 * results['balanced_accuracy']:.2f} % |",
            "",
            "## Per class",
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
            "![training curves](training_curves.png)",
        ]
    )
    summary = [
        ("test accuracy", f"{100 * results['test_accuracy']:.2f} %"),
        ("balanced accuracy", f"{100 * results['balanced_accuracy']:.2f} %"),
    ]
    return runner.Outcome(
        results,
        report,
        summary,
        model,
        protocol.test_images[:7],
        class_names=protocol.class_names,
        model_metrics={k: results[k] for k in ("test_accuracy", "balanced_accuracy")},
    )


if __name__ == "__main__":
    runner.main("baseline", BaselineConfig, run, __doc__)
