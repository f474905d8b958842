"""Inference throughput and latency: Keras vs SavedModel vs ONNX Runtime (CPU).

Times one model, on the same inputs, through four paths:

- `keras predict_on_batch`: `model.predict_on_batch(x)`;
- `keras model(x)`: an eager call, `model(x, training=False)`;
- `SavedModel serve`: the `serve` signature written by `export_savedmodel`;
- `ONNX Runtime CPU`: `OnnxClassifier.predict` (input validation included)
  on the file written by `export_onnx`.

Each (path, batch size) pair runs `--warmup` untimed calls, then `--repeats`
timed ones; every call ends with the outputs as NumPy arrays. Reported:
throughput (images / median latency) and p50 / p99 latency in ms. From
the default 50 repeats p99 is about the second-slowest call: raise
`--repeats` for stable tails.

The default model is a freshly built Classifier on the CIFAR ResNet-32 at
32x32x3 with 100 classes. Its weights are random: the cost of a forward
pass does not depend on them. `--model path.keras` times a trained one.

`--zoo` times every model in the zoo instead (classifiers and feature
extractors), each as a user loads it: `kerazoo.zoo.load(name, format)` for
the formats `keras`, `savedmodel` and `onnx` (ONNX Runtime, CPU provider),
timing their common `predict(images)`, input checks included.

Example:

    python -m benchmarks.inference                      # about 1 minute on 2 cores
    python -m benchmarks.inference --model runs/x/model.keras --batch-sizes 1,32
    python -m benchmarks.inference --zoo                # every zoo model, about 3 minutes
"""

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from kerazoo import _cli

_cli.quiet_tensorflow()

import keras  # noqa: E402  (after TensorFlow's start-up noise is silenced)
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tensorflow as tf  # noqa: E402

import kerazoo  # noqa: E402
from benchmarks import machine  # noqa: E402
from kerazoo import backbones  # noqa: E402
from kerazoo.atomic import write_text  # noqa: E402
from kerazoo.export import OnnxClassifier, export_onnx, export_savedmodel  # noqa: E402
from kerazoo.models import Classifier  # noqa: E402

DEFAULT_JSON = Path(__file__).parent / "results" / "inference.json"


ZOO_FORMATS = {"keras": "Keras", "savedmodel": "SavedModel", "onnx": "ONNX Runtime CPU"}


def main():
    args = _parser().parse_args()
    if args.zoo:
        return _zoo(args)
    model, description = _model(args.model)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        export_savedmodel(model, scratch / "saved")
        export_onnx(model, scratch / "model.onnx")
        serve = tf.saved_model.load(str(scratch / "saved")).signatures["serve"]
        onnx = OnnxClassifier(scratch / "model.onnx", providers=["CPUExecutionProvider"])
        input_shape = onnx.input_shape[1:]
        paths = {
            "keras predict_on_batch": lambda x: np.asarray(model.predict_on_batch(x)),
            "keras model(x)": lambda x: np.asarray(model(x, training=False)),
            "SavedModel serve": lambda x: serve(images=tf.constant(x))["probabilities"].numpy(),
            "ONNX Runtime CPU": onnx.predict,
        }
        rng = np.random.default_rng(0)
        rows = []
        for batch in args.batch_sizes:
            x = rng.uniform(0, 1, (batch, *input_shape)).astype(np.float32)
            for name, run in paths.items():
                latencies = _time(run, x, args.warmup, args.repeats)
                rows.append(_summary(name, batch, latencies))

    print(f"\n{description}, input {input_shape}, {os.cpu_count()} CPU cores\n")
    print(_markdown(rows))
    report = {
        "model": description,
        "input_shape": list(input_shape),
        "warmup": args.warmup,
        "repeats": args.repeats,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "versions": {
            "kerazoo": kerazoo.__version__,
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            "onnxruntime": ort.__version__,
        },
        "results": rows,
    }
    write_text(args.json, json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json}")


def _zoo(args):
    from kerazoo import zoo

    rng = np.random.default_rng(0)
    rows = []
    for name in zoo.available():
        entry = zoo.info(name)
        input_shape = tuple(entry["input"]["shape"][1:])
        for format, runtime in ZOO_FORMATS.items():
            providers = ["CPUExecutionProvider"] if format == "onnx" else None
            model = zoo.load(name, format, providers=providers)
            for batch in args.batch_sizes:
                x = rng.uniform(0, 1, (batch, *input_shape)).astype(np.float32)
                latencies = _time(model.predict, x, args.warmup, args.repeats)
                rows.append(
                    {
                        "model": name,
                        "kind": entry.get("kind", "classifier"),
                        **_summary(runtime, batch, latencies),
                    }
                )
            print(f"{name}: {runtime} timed", flush=True)
    print(f"\nevery zoo model, {os.cpu_count()} CPU cores\n")
    print(_markdown(rows))
    report = {
        "zoo": True,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "machine": machine.describe(),
        "results": rows,
    }
    out = args.json if args.json != DEFAULT_JSON else DEFAULT_JSON.with_name("inference_zoo.json")
    write_text(out, json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out}")


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a .keras file (default: random-weight ResNet-32 Classifier)")
    parser.add_argument("--zoo", action="store_true", help="time every zoo model in its three formats")
    parser.add_argument(
        "--batch-sizes",
        type=lambda s: [int(b) for b in s.split(",")],
        default=[1, 128],
        help="comma-separated batch sizes (default 1,128)",
    )
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls per measurement")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per measurement")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    return parser


def _model(path):
    if path is not None:
        return keras.saving.load_model(path), str(path)
    keras.utils.set_random_seed(0)
    model = Classifier(backbones.get("resnet32", input_shape=(32, 32, 3)), 100)
    model(np.zeros((1, 32, 32, 3), np.float32))
    return model, "Classifier(resnet32, 100 classes), random weights"


def _time(run, x, warmup, repeats):
    for _ in range(warmup):
        run(x)
    latencies = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(x)
        latencies.append(time.perf_counter() - start)
    return np.array(latencies)


def _summary(name, batch, latencies):
    p50, p99 = np.percentile(latencies, [50, 99])
    return {
        "runtime": name,
        "batch": batch,
        "images_per_s": round(batch / p50, 1),
        "p50_ms": round(p50 * 1e3, 3),
        "p99_ms": round(p99 * 1e3, 3),
    }


def _markdown(rows):
    named = "model" in rows[0]
    head = "| model | kind " * named + "| runtime | batch | img/s | p50 ms | p99 ms |"
    lines = [head, "|---|---" * named + "|---|---:|---:|---:|---:|"]
    lines += [
        (f"| {r['model']} | {r['kind']} " if named else "")
        + f"| {r['runtime']} | {r['batch']} | {r['images_per_s']:,.0f} "
        f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |"
        for r in rows
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
