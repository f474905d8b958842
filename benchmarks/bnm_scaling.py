"""How BNM's cost grows with the batch and the class count (CPU).

BNM (`kerazoo.losses.bnm_loss`) takes the singular values of the B x C
batch prediction matrix, an SVD costing O(B·C·min(B, C)); fast BNM
(`fbnm_loss`) approximates the nuclear norm by the column norms of the
top-min(B, C) columns, O(B·C + C log C). For every B in {32, 64, 128, 256,
512} and C in {10, 100, 1000}, this times the forward and backward pass of
each loss on softmax probabilities (a compiled function returning the
gradient with respect to the logits), against the same pass of the softmax
cross-entropy on the same logits, and reports milliseconds and the ratio to
cross-entropy. Then the share of a training step: each loss's time at
B = 128 against the plain ResNet-32 training step at 32x32, batch 128, C
classes (`benchmarks/train_step.py`'s plain row).

Each function runs `--warmup` untimed calls (the first traces it), then
the functions take turns for `--repeats` rounds; the median call is
reported. Writes benchmarks/results/bnm_scaling.json.

Example:

    python -m benchmarks.bnm_scaling              # about 2 minutes on 2 cores
    python -m benchmarks.bnm_scaling --repeats 50
"""

import argparse
import dataclasses
import json
import time
from pathlib import Path

from kerazoo import _cli

_cli.quiet_tensorflow()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import machine, train_step  # noqa: E402
from kerazoo.atomic import write_text  # noqa: E402
from kerazoo.losses import bnm_loss, fbnm_loss  # noqa: E402

BATCHES = (32, 64, 128, 256, 512)
CLASSES = (10, 100, 1000)
SHARE_BATCH = 128


def _cross_entropy(logits_labels):
    logits, labels = logits_labels
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))


LOSSES = {
    "ce": _cross_entropy,
    "bnm": lambda x: bnm_loss(tf.nn.softmax(x[0])),
    "fbnm": lambda x: fbnm_loss(tf.nn.softmax(x[0])),
}


def _pass(loss):
    """A compiled forward + backward pass of `loss` with respect to the logits."""

    @tf.function
    def run(logits, labels):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            value = loss((logits, labels))
        return value, tape.gradient(value, logits)

    return run


def _timed(function, *args):
    start = time.perf_counter()
    value, grad = function(*args)
    value.numpy(), grad.numpy()  # synchronise
    return time.perf_counter() - start


def _loss_rows(warmup, repeats):
    rng = np.random.default_rng(0)
    rows = []
    for classes in CLASSES:
        for batch in BATCHES:
            logits = tf.constant(rng.normal(size=(batch, classes)).astype("float32"))
            labels = tf.constant(rng.integers(0, classes, batch).astype("int32"))
            passes = {name: _pass(loss) for name, loss in LOSSES.items()}
            calls = {name: [] for name in passes}
            for function in passes.values():
                for _ in range(warmup):
                    _timed(function, logits, labels)
            for _ in range(repeats):
                for name, function in passes.items():
                    calls[name].append(_timed(function, logits, labels))
            ms = {name: 1e3 * float(np.median(c)) for name, c in calls.items()}
            rows.append(
                {
                    "batch": batch,
                    "classes": classes,
                    **{f"{name}_ms": round(value, 4) for name, value in ms.items()},
                    "bnm_vs_ce": round(ms["bnm"] / ms["ce"], 2),
                    "fbnm_vs_ce": round(ms["fbnm"] / ms["ce"], 2),
                }
            )
            print(
                f"B={batch:4d} C={classes:5d}: CE {ms['ce']:.3f} ms, BNM {ms['bnm']:.3f} ms, "
                f"FBNM {ms['fbnm']:.3f} ms",
                flush=True,
            )
    return rows


def _step_ms(classes, warmup, repeats):
    """Milliseconds of the plain ResNet-32 step at batch 128 with `classes` classes."""
    setting = dataclasses.replace(train_step.SETTINGS["resnet32"], num_classes=classes, batch=SHARE_BATCH)
    model, batch, _, _ = train_step.plain(setting, np.random.default_rng(0))
    iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
    model.make_train_function()
    for _ in range(warmup):
        train_step.time_call(model, iterator)
    return 1e3 * float(np.median([train_step.time_call(model, iterator) for _ in range(repeats)]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per loss (default 20)")
    parser.add_argument("--step-repeats", type=int, default=5, help="timed ResNet-32 steps per class count")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bnm_scaling.json"))
    args = parser.parse_args()
    tf.config.experimental.enable_op_determinism()  # as the recipes run
    started = time.perf_counter()
    rows = _loss_rows(args.warmup, args.repeats)
    shares = []
    for classes in CLASSES:
        step = _step_ms(classes, args.warmup, args.step_repeats)
        loss = next(r for r in rows if r["batch"] == SHARE_BATCH and r["classes"] == classes)
        shares.append(
            {
                "classes": classes,
                "resnet32_step_ms": round(step, 1),
                "bnm_share": round(loss["bnm_ms"] / step, 4),
                "fbnm_share": round(loss["fbnm_ms"] / step, 4),
            }
        )
        print(f"ResNet-32 step, batch {SHARE_BATCH}, C={classes}: {step:.0f} ms", flush=True)
    host = machine.describe()
    print(f"\n{host['processor']}, {host['cpu_count']} CPU cores, TF {host['tensorflow']}\n")
    print("| B | C | CE (ms) | BNM (ms) | FBNM (ms) | BNM ÷ CE | FBNM ÷ CE |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['batch']} | {r['classes']} | {r['ce_ms']:.3f} | {r['bnm_ms']:.3f} | {r['fbnm_ms']:.3f} "
            f"| {r['bnm_vs_ce']:.1f} | {r['fbnm_vs_ce']:.1f} |"
        )
    print(f"\nShare of the plain ResNet-32 step (32x32, batch {SHARE_BATCH}):\n")
    print("| C | step (ms) | BNM | FBNM |\n|---|---|---|---|")
    for s in shares:
        print(
            f"| {s['classes']} | {s['resnet32_step_ms']:.0f} | {100 * s['bnm_share']:.2f} % "
            f"| {100 * s['fbnm_share']:.2f} % |"
        )
    report = {
        "machine": host,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "losses": rows,
        "share_of_resnet32_step": shares,
        "seconds": round(time.perf_counter() - started, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(f"\n{report['seconds']:.0f} s in all; wrote {args.out}")


if __name__ == "__main__":
    main()
