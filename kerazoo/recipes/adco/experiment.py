"""What one seed of the adco recipe does (imported when a run starts)."""

import csv
import json
import math
import shutil
import time

import keras
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from kerazoo import backbones, metrics
from kerazoo.atomic import write_text
from kerazoo.data import datasets, parse_protocol_name, train_dataset, unlabelled_dataset
from kerazoo.models import AdCo, Classifier
from kerazoo.ops import outputs_numpy
from kerazoo.optimizers import GradientAscent, with_weight_decay
from kerazoo.protocol_names import is_user_source
from kerazoo.recipes import plots
from kerazoo.recipes.adco import METHODS, RECIPE
from kerazoo.recipes.config import ConfigError
from kerazoo.recipes.exports import export_model
from kerazoo.recipes.recipe import Outcome
from kerazoo.recipes.results import MethodResult, count, spread_label


def _split(config, split, limit=0):
    """(images, labels, class names) of a split (tfds, or your own data), resized, in memory."""
    base, _, _ = parse_protocol_name(config.dataset)
    # `load` resizes per image, so images of different sizes (ImageNet, your own folders) batch.
    ds, info = datasets.load(
        base,
        split,
        config.data_dir or None,
        download=config.download,
        with_info=True,
        image_size=config.image_size or None,
    )
    if limit:
        ds = ds.take(limit)
    images, labels = [], []
    for x, y in ds.batch(1024).as_numpy_iterator():
        images.append(x)
        labels.append(y)
    label = info.features[info.supervised_keys[1]]
    return np.concatenate(images), np.concatenate(labels), list(label.names)


def prepare(config, run):
    """(train, test) splits in memory, each (images, labels, class names), and the steps per epoch."""
    train = _split(config, "train", config.max_train_images)
    test = _split(config, config.eval_split)
    base, _, _ = parse_protocol_name(config.dataset)
    origin = f"from {config.data_dir}" if is_user_source(base) else "from tfds"
    run.data_notes = [
        f"{base}: {len(train[1])} train / {len(test[1])} {config.eval_split} images {origin}"
        + (f", bilinear resize to {config.image_size}x{config.image_size}" if config.image_size else ""),
        "training labels used only by the supervised encoder and the probes",
    ]
    _steps(config, train)  # a batch larger than the data: refused before any process trains
    return (train, test)


def _steps(config, train):
    steps = len(train[1]) // config.batch_size
    if steps == 0:
        raise ConfigError(f"Config key 'batch_size' ({config.batch_size}) exceeds the training set.")
    return steps


def build_optimizer(config, steps):
    alpha = config.final_learning_rate / config.learning_rate if config.learning_rate else 0.0
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps, alpha=alpha)
    return keras.optimizers.SGD(schedule, momentum=config.momentum)


def build_model(config, mode, image_shape, total_steps):
    """A compiled, built `AdCo` (mode `adco` or `queue`)."""
    model = AdCo(
        backbones.get(config.backbone, input_shape=image_shape),
        bank_size=config.bank_size,
        dim=config.dim,
        hidden_dim=config.hidden_dim or None,
        temperature=config.temperature,
        bank_temperature=config.bank_temperature,
        key_momentum=config.key_momentum,
        mode=mode,
        symmetric=config.symmetric,
        shuffle_groups=config.shuffle_groups,
        scope=config.batch_scope,
    )
    bank_optimizer = None
    if mode == "adco":
        bank_optimizer = GradientAscent(
            keras.optimizers.SGD(config.bank_lr, momentum=config.bank_momentum),
            weight_decay=config.bank_weight_decay,
        )
    model.compile(
        optimizer=with_weight_decay(build_optimizer(config, total_steps), config.weight_decay),
        bank_optimizer=bank_optimizer,
    )
    model(np.zeros((1, *image_shape), "float32"))  # fit cannot build from two-view batches
    return model


def build_supervised_model(config, image_shape, num_classes, total_steps):
    model = Classifier(backbones.get(config.backbone, input_shape=image_shape), num_classes)
    model.compile(
        optimizer=build_optimizer(config, total_steps),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    model(np.zeros((1, *image_shape), "float32"))
    return model


# One BLAS thread for the probes: next to TensorFlow's busy thread pool, a
# digits probe with OpenBLAS's two threads took 0.9-2.3 s against 0.04-0.07 s
# with one; and the result no longer depends on the machine's core count.
def linear_probe(train_features, train_labels):
    """Logistic regression on standardised features: (scaler, classifier)."""
    with threadpool_limits(1, user_api="blas"):
        scaler = StandardScaler().fit(train_features)
        classifier = LogisticRegression(max_iter=2000).fit(scaler.transform(train_features), train_labels)
    return scaler, classifier


def evaluate(train_features, train_labels, test_features, test_labels, k):
    """{"linear_probe": accuracy, "knn": accuracy} of frozen features."""
    scaler, classifier = linear_probe(train_features, train_labels)
    with threadpool_limits(1, user_api="blas"):
        knn = KNeighborsClassifier(n_neighbors=k, metric="cosine").fit(train_features, train_labels)
        return {
            "linear_probe": metrics.accuracy(
                test_labels, classifier.predict(scaler.transform(test_features))
            ),
            "knn": metrics.accuracy(test_labels, knn.predict(test_features)),
        }


class ProbeCurve(keras.callbacks.Callback):
    """Linear-probe test accuracy every `every` epochs, kept in a JSON file
    so that a resumed stage keeps the points of its first invocation; each
    probe is logged with `log(message)` (it takes seconds: a silent pause
    otherwise)."""

    def __init__(self, backbone, data, every, path, log):
        super().__init__()
        self.backbone, self.data, self.every, self.path, self.log = backbone, data, every, path, log
        self.points = json.loads(path.read_text()) if path.exists() else []

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        (train_x, train_y, _), (test_x, test_y, _) = self.data
        started = time.time()
        scaler, classifier = linear_probe(outputs_numpy(self.backbone, train_x), train_y)
        accuracy = metrics.accuracy(
            test_y, classifier.predict(scaler.transform(outputs_numpy(self.backbone, test_x)))
        )
        self.points = [p for p in self.points if p[0] < epoch + 1] + [[epoch + 1, accuracy]]
        write_text(self.path, json.dumps(self.points))
        self.log(
            f"linear probe after epoch {epoch + 1}: {100 * accuracy:.1f} % ({time.time() - started:.0f} s)"
        )


def _fit(config, run, model, stream, stage, epochs, backbone, data):
    callbacks = []
    if config.probe_every:
        (run.path / "logs").mkdir(exist_ok=True)
        callbacks.append(
            ProbeCurve(
                backbone,
                data,
                config.probe_every,
                run.path / "logs" / f"{stage}-probe.json",
                log=lambda message: run.log(f"{stage}: {message}"),
            )
        )
    run.fit(
        model,
        stream,
        stage=stage,
        epochs=epochs,
        callbacks=callbacks,
        divergence_hint="Lower learning_rate or bank_lr, or raise bank_temperature.",
    )
    return _last_epoch(run.path / "logs" / f"{stage}.csv"), (callbacks[0].points if callbacks else [])


def _last_epoch(csv_path):
    """The last row of a CSVLogger file as {column: float}, without the
    columns it fills with NA."""
    with open(csv_path, newline="") as f:
        last = list(csv.DictReader(f))[-1]
    return {key: float(value) for key, value in last.items() if value != "NA"}


def _train_contrastive(config, run, seed, method, data, steps):
    train, _ = data
    image_shape = train[0].shape[1:]
    total = config.epochs * steps
    stage = f"seed{seed}-{method}"

    def views():
        return unlabelled_dataset(
            train[0], config.batch_size, seed, run.epoch_counter, augment=config.augment, views=2
        )

    mode = "adco" if method == "adco" else "queue"
    model = build_model(config, mode, image_shape, total)
    if mode == "adco" and config.bank_init == "keys":
        # The official ad_init: ⌈K/B⌉ MoCo steps of the encoder whose keys fill
        # the bank; then AdCo continues from that encoder with a fresh key copy.
        warm = build_model(config, "queue", image_shape, total)
        warm_steps = math.ceil(config.bank_size / config.batch_size)
        _fit(config, run, warm, views().take(warm_steps), f"{stage}-ad_init", 1, warm.backbone, data)
        model.start_from(warm)
    history, curve = _fit(config, run, model, views(), stage, config.epochs, model.backbone, data)
    return model, history, curve


def run_method(config, run, method, data):
    (train_x, train_y, class_names), (test_x, test_y, _) = data
    steps, seed = _steps(config, (train_x, train_y)), run.seed
    image_shape = train_x.shape[1:]
    row, curve, model = {}, [], None
    if method == "raw":
        flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
        features = flat(train_x), flat(test_x)
    else:
        if method == "random":
            backbone = backbones.get(config.backbone, input_shape=image_shape)
        elif method == "supervised":
            supervised = build_supervised_model(config, image_shape, len(class_names), config.epochs * steps)
            stream = train_dataset(
                train_x, train_y, config.batch_size, seed, run.epoch_counter, augment=config.augment
            )
            _, curve = _fit(
                config,
                run,
                supervised,
                stream,
                f"seed{seed}-supervised",
                config.epochs,
                supervised.backbone,
                data,
            )
            backbone = supervised.backbone
        else:
            model, history, curve = _train_contrastive(config, run, seed, method, data, steps)
            backbone = model.backbone
            row = {
                "contrastive_accuracy": history["contrastive_accuracy"],
                "bank_rank": history["bank_rank"],
                "bank_loss": history.get("bank"),
            }
        features = outputs_numpy(backbone, train_x), outputs_numpy(backbone, test_x)
    with run.timed(f"seed{seed}-{method}: linear probe and kNN"):
        row.update(evaluate(features[0], train_y, features[1], test_y, config.knn_k))
    return MethodResult(
        {method: row},
        details={"probe_curve": curve, "steps": config.epochs * steps},
        model=model,
        input_shape=image_shape,
        sample_images=test_x[:7],
        model_metrics={k: row[k] for k in ("linear_probe", "knn")},
    )


def export_probe(config, run, model):
    """`probe/`: the AdCo encoder with its linear probe folded into a Dense
    head (standardisation included), as a classifier run directory that
    `kerazoo.zoo.publish(run_dir / "probe", name)` takes."""
    (train_x, train_y, class_names), (test_x, test_y, _) = run.data
    backbone = model.backbone
    scaler, classifier = linear_probe(outputs_numpy(backbone, train_x), train_y)
    coef, intercept = _probe_weights(classifier, len(class_names))
    # logits = ((f − μ)/σ)·Wᵀ + b = f·(W/σ)ᵀ + (b − (μ/σ)·Wᵀ)
    kernel = (coef / scaler.scale_).T
    bias = intercept - (scaler.mean_ / scaler.scale_) @ coef.T
    head = keras.layers.Dense(len(class_names), name="probe")
    probe = Classifier.shipped(backbone, len(class_names), head)
    head.set_weights([kernel.astype("float32"), bias.astype("float32")])
    predictions = np.argmax(outputs_numpy(probe, test_x), axis=1)
    accuracy = metrics.accuracy(test_y, predictions)
    path = run.path / "probe"
    if path.exists():
        shutil.rmtree(path)
    path.mkdir()
    notes = run.data_notes + [
        "linear probe: logistic regression on the standardised pooled "
        "features of the train split, folded into the Dense head"
    ]
    described = export_model(
        path,
        MethodResult(
            {}, model=probe, input_shape=train_x.shape[1:], sample_images=test_x[:7], class_names=class_names
        ),
        config,
        notes,
        run.log,
        metrics={"test_accuracy": accuracy},
    )
    shutil.copy2(run.path / "config.json", path / "config.json")
    write_text(path / "report.md", probe_report(accuracy, notes))
    # run_subdir: `zoo.rebuild` re-runs the recipe and publishes this folder of it.
    write_text(
        path / "metrics.json",
        json.dumps({"recipe": run.recipe, "model": described, "run_subdir": "probe"}, indent=2),
    )
    return accuracy


def probe_report(accuracy, notes):
    """report.md of `probe/` (the zoo copies it beside the model)."""
    return "\n".join(
        [
            "# adco — the AdCo encoder with its linear probe",
            "",
            f"Test accuracy {100 * accuracy:.2f} %: the first seed's AdCo backbone (frozen) and a Dense head "
            "holding the logistic regression fitted on its standardised pooled features of the train split. "
            "The full comparison (AdCo, MoCo-queue, supervised, random init, raw pixels) is the parent "
            "run's report.md.",
            "",
            "## Data",
            "",
            *[f"- {note}" for note in notes],
            "",
        ]
    )


def _probe_weights(classifier, num_classes):
    """(C, D) weights and (C,) biases of a fitted LogisticRegression as
    softmax logits over all `num_classes`: a binary fit is softmax([0, z]);
    classes absent from the training features get a logit of −1e4."""
    coef, intercept = classifier.coef_, classifier.intercept_
    if len(classifier.classes_) == 2:
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    full_coef = np.zeros((num_classes, coef.shape[1]))
    full_intercept = np.full(num_classes, -1e4)
    full_coef[classifier.classes_], full_intercept[classifier.classes_] = coef, intercept
    return full_coef, full_intercept


def plot_curves(per_seed, path, dataset="", command=None):
    """Plot each method's probe accuracy over training (mean over seeds, the
    band ± std) to `path`; return False, plotting nothing, when no probe ran
    (a run shorter than `probe_every` epochs)."""
    series = []
    for method in next(iter(per_seed.values())):
        curves = [
            results[method].details["probe_curve"]
            for results in per_seed.values()
            if results[method].details["probe_curve"]
        ]
        if curves:
            values = 100 * np.array([[p[1] for p in c] for c in curves])
            series.append(([p[0] for p in curves[0]], values, METHODS[method].label))
    if not series:
        return False
    figure, ax = plots.plt.subplots(figsize=(6.5, 4))
    for epochs, values, label in series:
        mean = values.mean(0)
        (line,) = ax.plot(epochs, mean, marker="o", label=label)
        if len(values) > 1:
            std = values.std(0)
            ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel("linear probe test accuracy (%)")
    where = f"{dataset}: " if dataset else ""
    ax.set_title(f"{where}linear probe over training ({spread_label(len(per_seed))})")
    ax.grid(alpha=0.3)
    ax.legend()
    plots.save_figure(figure, path, command)
    return True


def report(config, run, per_seed):
    lines = []
    if config.probe_every and plot_curves(
        per_seed, run.path / "probe_curve.png", config.dataset, run.command
    ):
        lines += ["![linear probe accuracy over training](probe_curve.png)", ""]
    metrics_out = {}
    shipped = per_seed[config.seeds[0]].get(RECIPE.shipped)
    if shipped is not None and config.exports != "none":
        with run.timed("export of the linear probe as a classifier (probe/)"):
            accuracy = export_probe(config, run, shipped.model)
        metrics_out["probe_classifier_accuracy"] = accuracy
        lines += [
            f"The shipped encoder's linear probe as a classifier (`probe/`): test accuracy "
            f"{100 * accuracy:.2f} %.",
            "",
        ]
    steps = next(iter(next(iter(per_seed.values())).values())).details["steps"]
    lines += [
        f"Every trained encoder: {count(config.epochs, 'epoch')}, {count(steps, 'step')} of "
        f"{config.batch_size} images. "
        f"K = {config.bank_size}, τ = {config.temperature}, τ_m = {config.bank_temperature}, "
        f"m = {config.key_momentum}, bank start `{config.bank_init}`. Linear probe: logistic regression "
        f"on standardised pooled features; kNN: k = {config.knn_k}, cosine. Contrastive accuracy, bank "
        "loss and effective rank are the last epoch's means (the MoCo queue's rank is that of its keys; "
        "MoCo has no bank loss).",
        "",
        "## Data",
        "",
        *[f"- {note}" for note in run.data_notes],
    ]
    return Outcome("\n".join(lines), metrics=metrics_out)
