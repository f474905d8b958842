"""Training-step throughput of every method against plain cross-entropy (CPU).

For each method, the images per second of its real training step (the
model's compiled `train_function`, as `fit` calls it) against those of the
plain cross-entropy step of the SAME backbone, batch and input size, and
the overhead ratio

    overhead = plain images/s / method images/s   (time per image relative to plain)

with a floor per method (the performance budget it should stay within):

| row | model | images per step | floor |
|---|---|---|---:|
| plain CE | `Classifier`, SGD | B | – |
| BNM, FBNM | `DomainAdapter(method=...)`, batches `((x_s, y_s), x_t)` | B/2 source + B/2 target | 1.05 |
| BatchFormer | `BatchFormerClassifier` + `BatchFormer()` (CE) | B | 1.10 |
| LUCIR | `LUCIRClassifier` in its last phase: frozen old backbone (`snapshot`), grown `CosineLinear` | B | 1.40 |
| AdCo | `AdCo` + `GradientAscent` bank, two views of B images | 2B | 1.40 |
| AdCo symmetric | the same, `symmetric=True` | 2B | 2.80 |
| GIT | `GITClassifier` + `GITAugment(MUNITGenerator)`, every class a tail class | B (B/2 translated) | 1.50 |
| MUNIT | the translator's own step (`MUNIT`, batch B) | B | – |

A domain-adaptation step's source and target images both count as images
processed, and so do both of AdCo's views. Two settings:

- `resnet32`: the CIFAR ResNet-32 at 32x32x3, batch 128, 100 classes,
  `steps_per_execution` 1; LUCIR has 90 old + 10 new classes (the last
  phase of the 50 + 5x10 CIFAR-100 protocol); AdCo the model's (the
  paper's) bank of 65,536 negatives and 128-d projection.
- `convnet`: the digits convnet at 8x8x1, batch 32, 10 classes,
  `steps_per_execution` 8; LUCIR 8 old + 2 new classes (the digits
  protocol's last phase); AdCo the digits recipe's bank of 1,024 and 32-d
  projection (hidden 64).

Everywhere: SGD (learning rate 0.01, momentum 0.9, no weight decay) for the
classifier parts, accuracy as the compiled metric where the recipes compile
one, the recipes' other settings (BatchFormer: 4 heads, dropout 0.5, its
optimiser at 0.1x; LUCIR: λ_base 5, margin 0.5, K 2; AdCo: key momentum
0.99, 2 shuffle-BN groups, bank SGD lr 3 with coupled decay 1e-4; GIT and
MUNIT: the digits recipe's translator widths, dim 16, 2 residual blocks,
2 down-samplings, style MLP 128, discriminator 16 x 3 layers, Adam 1e-4
with coupled decay 1e-4) and TensorFlow op determinism on, as the recipes
run (`--no-deterministic` turns it off). The inputs are one random batch
per model, repeated by `tf.data` with autotuning off (no input-pipeline
cost, no tuning thread); the weights are random: a step's cost does not
depend on them.

Each model runs `--warmup` untimed calls of its train function (the first
traces it), then the models take turns for `--repeats` rounds, one timed
call each per round, so that a change in the machine's load hits every row
alike; a call runs `steps_per_execution` steps (the same for every row of a
setting, so the per-call Python cost is too) and ends with its logs as
NumPy. Reported per row: images/s from the median call, the overhead from
the medians, pass/fail against the floor. The JSON also keeps every call's
time, the first (tracing) call's, the 1-minute load average at the start
and the end, and `overhead_paired`: the median over rounds of the same
ratio from calls moments apart, less sensitive to a slow drift in load.

`--parts batchformer` times BatchFormer's step with one piece taken away
per row (its dropouts; all but one attention head; the whole transformer
layer, leaving the shared head on 2B rows and the second optimizer) against
the same plain step, to show where its overhead goes.

TensorFlow's Grappler prints one harmless line while tracing MUNIT's step
("remapper failed: ... fanout ... LeakyReluGrad"; `kerazoo._cli` says why):
the step then runs without the remapper's rewrites, as fast as with them.

Example:

    python -m benchmarks.train_step                     # 90 s on 2 idle cores; 5 min on
                                                        # cores shared with other jobs
    python -m benchmarks.train_step --setting convnet --repeats 50
    python -m benchmarks.train_step --parts batchformer  # where BatchFormer's overhead goes
"""

import argparse
import dataclasses
import gc
import json
import os
import time
from pathlib import Path

from kerazoo import _cli

_cli.quiet_tensorflow()

import keras  # noqa: E402  (after TensorFlow's start-up noise is silenced)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import kerazoo  # noqa: E402
from benchmarks import machine  # noqa: E402
from kerazoo import backbones  # noqa: E402
from kerazoo.atomic import write_text  # noqa: E402
from kerazoo.incremental import METHODS as INCREMENTAL_METHODS  # noqa: E402
from kerazoo.incremental import Settings, grow_head, snapshot  # noqa: E402
from kerazoo.layers import BatchFormer, CosineLinear, GITAugment  # noqa: E402
from kerazoo.models import (  # noqa: E402
    MUNIT,
    AdCo,
    BatchFormerClassifier,
    Classifier,
    DomainAdapter,
    GITClassifier,
    LUCIRClassifier,
    MUNITGenerator,
)
from kerazoo.optimizers import GradientAscent, with_weight_decay  # noqa: E402

DEFAULT_JSON = Path(__file__).parent / "results" / "train_step.json"


@dataclasses.dataclass(frozen=True)
class Setting:
    backbone: str
    input_shape: tuple
    batch: int
    num_classes: int
    steps_per_execution: int
    warmup: int
    repeats: int
    num_old_classes: int  # LUCIR's old classes (the rest are the phase's new ones)
    adco: dict  # AdCo's bank_size, dim, hidden_dim


SETTINGS = {
    "resnet32": Setting(
        "resnet32",
        (32, 32, 3),
        batch=128,
        num_classes=100,
        steps_per_execution=1,
        warmup=3,
        repeats=7,
        num_old_classes=90,
        adco=dict(bank_size=65536, dim=128, hidden_dim=None),
    ),
    "convnet": Setting(
        "convnet",
        (8, 8, 1),
        batch=32,
        num_classes=10,
        steps_per_execution=8,
        warmup=5,
        repeats=30,
        num_old_classes=8,
        adco=dict(bank_size=1024, dim=32, hidden_dim=64),
    ),
}

# The digits recipe's translator (kerazoo/recipes/git, `build_translator`).
TRANSLATOR = dict(dim=16, style_dim=8, n_downsample=2, n_res=2, mlp_dim=128)
DISCRIMINATOR = dict(disc_dim=16, disc_layers=3)


def main():
    args = _parser().parse_args()
    if args.deterministic:
        tf.config.experimental.enable_op_determinism()
    names = list(SETTINGS) if args.setting == "both" else [args.setting]
    start = time.perf_counter()
    report = {
        "machine": machine.describe(),
        "kerazoo": kerazoo.__version__,
        "load_average_at_start": _load(),
        "deterministic": args.deterministic,
        "parts": args.parts,
        "settings": {},
    }
    tables = []
    for name in names:
        setting = SETTINGS[name]
        warmup = setting.warmup if args.warmup is None else args.warmup
        repeats = setting.repeats if args.repeats is None else args.repeats
        rows = _measure(setting, warmup, repeats, PARTS[args.parts] if args.parts else ROWS)
        report["settings"][name] = {
            "backbone": setting.backbone,
            "input_shape": list(setting.input_shape),
            "batch": setting.batch,
            "num_classes": setting.num_classes,
            "steps_per_execution": setting.steps_per_execution,
            "warmup": warmup,
            "repeats": repeats,
            "rows": rows,
        }
        title = (
            f"{setting.backbone} at {'x'.join(map(str, setting.input_shape))}, batch {setting.batch}, "
            f"{setting.num_classes} classes, steps_per_execution {setting.steps_per_execution}, "
            f"median of {repeats} calls"
        )
        tables.append(f"### {title}\n\n{_markdown(rows)}")
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["load_average_at_end"] = _load()
    host = report["machine"]
    print(
        f"\n{host['processor']}, {host['cpu_count']} CPU cores, TF {host['tensorflow']}, "
        f"Keras {host['keras']}; load average {report['load_average_at_start']} at the start\n"
    )
    print("\n\n".join(tables))
    print(f"\n{report['seconds']:.0f} s in all")
    out = args.out or (
        DEFAULT_JSON.with_name(f"train_step-{args.parts}.json") if args.parts else DEFAULT_JSON
    )
    write_text(out, json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setting", choices=[*SETTINGS, "both"], default="both", help="default both")
    parser.add_argument(
        "--warmup",
        type=int,
        help="untimed calls per model (default: resnet32 3, convnet 5; the first traces)",
    )
    parser.add_argument("--repeats", type=int, help="timed calls per model (default: resnet32 7, convnet 30)")
    parser.add_argument(
        "--deterministic",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="TensorFlow op determinism, as the recipes (default on)",
    )
    parser.add_argument(
        "--parts",
        choices=list(PARTS),
        help="instead of every method: one method's step with its pieces taken away one at a time",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="where to write the results (default results/train_step.json, results/train_step-PARTS.json)",
    )
    return parser


def _load():
    """The 1-minute load average (other processes share the cores), or None."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


# Each builder returns (compiled and built model, one batch of its training
# data, images processed per step, what the row runs).


def _sgd():
    return keras.optimizers.SGD(0.01, momentum=0.9)


def _accuracy():
    return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]


def _images(rng, s, n=None):
    return rng.uniform(0, 1, (n or s.batch, *s.input_shape)).astype("float32")


def _labels(rng, s, n=None):
    return rng.integers(0, s.num_classes, n or s.batch).astype("int32")


def _built(model, s):
    model(np.zeros((1, *s.input_shape), "float32"))
    return model


def plain(s, rng):
    model = Classifier(backbones.get(s.backbone, input_shape=s.input_shape), s.num_classes)
    model.compile(optimizer=_sgd(), metrics=_accuracy(), steps_per_execution=s.steps_per_execution)
    return _built(model, s), (_images(rng, s), _labels(rng, s)), s.batch, "Classifier, CE"


def _domain_adapter(method):
    def build(s, rng):
        model = DomainAdapter(
            backbones.get(s.backbone, input_shape=s.input_shape), s.num_classes, method=method
        )
        model.compile(optimizer=_sgd(), metrics=_accuracy(), steps_per_execution=s.steps_per_execution)
        half = s.batch // 2
        data = ((_images(rng, s, half), _labels(rng, s, half)), _images(rng, s, half))
        return _built(model, s), data, 2 * half, f"DomainAdapter({method!r}), {half} source + {half} target"

    return build


def _batchformer(layer, what="BatchFormerClassifier, CE"):
    """A BatchFormerClassifier step whose batch-axis layer is `layer()`."""

    def build(s, rng):
        model = BatchFormerClassifier(
            backbones.get(s.backbone, input_shape=s.input_shape), s.num_classes, layer(), loss="ce"
        )
        model.compile(
            optimizer=_sgd(),
            batchformer_lr_scale=0.1,
            metrics=_accuracy(),
            steps_per_execution=s.steps_per_execution,
        )
        return _built(model, s), (_images(rng, s), _labels(rng, s)), s.batch, what

    return build


class _OneWeight(keras.layers.Layer):
    """A stand-in for BatchFormer that only scales the features by one
    trainable scalar: what is left is the rest of BatchFormer's step (the
    shared head and loss on 2B rows, the second optimizer)."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(), initializer="ones")

    def call(self, features, training=False):
        return features * self.scale if training else features


def lucir(s, rng):
    """The last incremental phase as `ClassIncremental.run` builds it: the
    previous phase's backbone (frozen copy) and head grown by the new classes."""
    num_old, num_new = s.num_old_classes, s.num_classes - s.num_old_classes
    backbone = backbones.get(s.backbone, input_shape=s.input_shape, last_relu=False)
    old_head = CosineLinear(num_old)
    old_head.build(backbone.output_shape)
    head = grow_head(old_head, num_new, freeze_old=True)
    method = INCREMENTAL_METHODS["lucir"]
    model = LUCIRClassifier(backbone, head, snapshot(backbone), None, num_old, Settings().loss(method))
    model.compile(optimizer=_sgd(), metrics=_accuracy(), steps_per_execution=s.steps_per_execution)
    what = f"LUCIRClassifier, {num_old} old + {num_new} new classes"
    return _built(model, s), (_images(rng, s), _labels(rng, s)), s.batch, what


def _adco(symmetric):
    def build(s, rng):
        model = AdCo(
            backbones.get(s.backbone, input_shape=s.input_shape),
            **s.adco,
            momentum=0.99,
            symmetric=symmetric,
            shuffle_groups=2,
        )
        bank_optimizer = GradientAscent(keras.optimizers.SGD(3.0, momentum=0.9), weight_decay=1e-4)
        model.compile(
            optimizer=_sgd(), bank_optimizer=bank_optimizer, steps_per_execution=s.steps_per_execution
        )
        what = f"AdCo, K {s.adco['bank_size']}, dim {s.adco['dim']}, {s.batch} x 2 views"
        return _built(model, s), (_images(rng, s), _images(rng, s)), 2 * s.batch, what

    return build


def _generator(s):
    return MUNITGenerator(s.input_shape, **TRANSLATOR, seed=0)


def git(s, rng):
    # Every class below the threshold: all the batch's last half (fraction
    # 0.5) is translated.
    augment = GITAugment(
        _generator(s), [10] * s.num_classes, threshold=20, fraction=0.5, rule="threshold", seed=0
    )
    model = GITClassifier(
        backbones.get(s.backbone, input_shape=s.input_shape), s.num_classes, augment=augment
    )
    model.compile(optimizer=_sgd(), metrics=_accuracy(), steps_per_execution=s.steps_per_execution)
    what = f"GITClassifier, {s.batch // 2} of {s.batch} translated"
    return _built(model, s), (_images(rng, s), _labels(rng, s)), s.batch, what


def munit(s, rng):
    model = MUNIT(_generator(s), **DISCRIMINATOR, seed=0)
    adam = keras.optimizers.Adam(1e-4, beta_1=0.5, beta_2=0.999)
    model.compile(optimizer=with_weight_decay(adam, 1e-4), steps_per_execution=s.steps_per_execution)
    return model, _images(rng, s), s.batch, "MUNIT (D then G update)"


ROWS = [
    # (key, label, floor, builder); the first is the reference.
    ("plain", "plain CE", None, plain),
    ("bnm", "BNM", 1.05, _domain_adapter("bnm")),
    ("fbnm", "FBNM", 1.05, _domain_adapter("fbnm")),
    ("batchformer", "BatchFormer", 1.10, _batchformer(lambda: BatchFormer(num_heads=4, dropout=0.5))),
    ("lucir", "LUCIR (phase > 0)", 1.40, lucir),
    ("adco", "AdCo", 1.40, _adco(symmetric=False)),
    ("adco_symmetric", "AdCo symmetric", 2.80, _adco(symmetric=True)),
    ("git", "GIT-augmented CE", 1.50, git),
    ("munit", "MUNIT translator", None, munit),
]
NO_RATIO = {"munit"}  # its step is not a classifier's: images/s only

# `--parts NAME`: where one method's overhead goes, each row taking away a
# piece of its step (overheads against the same plain step).
_ROW = {row[0]: row for row in ROWS}
PARTS = {
    "batchformer": [
        _ROW["plain"],
        _ROW["batchformer"],
        (
            "batchformer_no_dropout",
            "BatchFormer, dropout 0",
            None,
            _batchformer(lambda: BatchFormer(num_heads=4, dropout=0.0), "its 4 dropouts off"),
        ),
        (
            "batchformer_one_head",
            "BatchFormer, 1 head",
            None,
            _batchformer(
                lambda: BatchFormer(num_heads=1, dropout=0.5), "one attention head of the full width"
            ),
        ),
        (
            "batchformer_head_only",
            "BatchFormer's head and optimizer only",
            None,
            _batchformer(
                lambda: _OneWeight(name="one_weight"), "one scalar weight instead of the transformer layer"
            ),
        ),
    ],
}


# The same batch over and over needs no tuning: without autotuning, no
# background thread competes with the steps, and deleting an iterator does
# not wait seconds for one to stop.
_QUIET_PIPELINE = tf.data.Options()
_QUIET_PIPELINE.autotune.enabled = False
_QUIET_PIPELINE.experimental_optimization.inject_prefetch = False


def time_call(model, iterator):
    """Seconds of one call of `model.train_function` on `iterator`, to its logs as NumPy."""
    start = time.perf_counter()
    logs = model.train_function(iterator)
    for value in logs.values():
        np.asarray(value)  # synchronise
    return time.perf_counter() - start


def _measure(s, warmup, repeats, builders=ROWS):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    runs = []
    for key, label, floor, build in builders:
        t0 = time.perf_counter()
        model, batch, images, what = build(s, rng)
        iterator = iter(tf.data.Dataset.from_tensors(batch).repeat().with_options(_QUIET_PIPELINE))
        model.make_train_function()
        first = time_call(model, iterator)  # traces
        for _ in range(warmup - 1):
            time_call(model, iterator)
        runs.append(
            dict(
                key=key,
                label=label,
                floor=floor,
                model=model,
                iterator=iterator,
                images=images,
                what=what,
                first_call_s=first,
                calls=[],
            )
        )
        print(f"{s.backbone}: {label} built and warm ({time.perf_counter() - t0:.1f} s)", flush=True)
    for _ in range(repeats):
        for run in runs:
            run["calls"].append(time_call(run["model"], run["iterator"]))
    for run in runs:  # free the models now, in one collection (each one takes ~0.5 s)
        del run["model"], run["iterator"]
    gc.collect()
    steps = s.steps_per_execution
    reference = runs[0]
    rows = []
    for run in runs:
        median = float(np.median(run["calls"]))
        rate = run["images"] * steps / median
        plain_rate = reference["images"] * steps / float(np.median(reference["calls"]))
        overhead, paired = None, None
        if run["key"] not in NO_RATIO:
            overhead = plain_rate / rate
            # The same ratio per round (calls moments apart), then the median.
            per_round = np.array(run["calls"]) / np.array(reference["calls"])
            paired = float(np.median(per_round * reference["images"] / run["images"]))
        floor = run["floor"]
        rows.append(
            {
                "key": run["key"],
                "method": run["label"],
                "model": run["what"],
                "images_per_step": run["images"],
                "images_per_s": round(rate, 1),
                "step_ms": round(1e3 * median / steps, 2),
                "overhead": None if overhead is None else round(overhead, 3),
                "overhead_paired": None if paired is None else round(paired, 3),
                "floor": floor,
                "passed": None if floor is None or overhead is None else bool(overhead <= floor),
                "first_call_s": round(run["first_call_s"], 2),
                "call_seconds": [round(c, 5) for c in run["calls"]],
            }
        )
    return rows


def _markdown(rows):
    lines = [
        "| method | model | img/step | img/s | ms/step | overhead | floor | result |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        overhead = (
            "1.00 (ref)"
            if r["key"] == "plain"
            else ("–" if r["overhead"] is None else f"{r['overhead']:.2f}")
        )
        floor = "–" if r["floor"] is None else f"≤ {r['floor']:.2f}"
        result = "–" if r["passed"] is None else ("pass" if r["passed"] else "**FAIL**")
        lines.append(
            f"| {r['method']} | {r['model']} | {r['images_per_step']} | {r['images_per_s']:,.0f} "
            f"| {r['step_ms']:.1f} | {overhead} | {floor} | {result} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
