"""How much of this CPU's arithmetic the plain ResNet-32 training step uses.

Three measurements in one run:

1. The machine's single-precision matmul rate: a large float32 matmul
   (`--matmul-size`, default 2048) in TensorFlow, and in NumPy twice, with
   the environment as it is and with `OPENBLAS_CORETYPE` and
   `OPENBLAS_L2_SIZE` unset in that process only (a machine that forces
   OpenBLAS' Haswell kernel on an AVX-512 CPU runs NumPy at about half its
   rate). The peak is the highest of them.
2. The FLOPs of one training step of the CIFAR ResNet-32 with a 100-way
   head at batch B, counted from the Keras model: a convolution's forward
   pass is 2·k_h·k_w·C_in·C_out·H_out·W_out per image and a dense layer's
   2·in·out; the backward pass costs the same again for the weight
   gradients and again for the input gradients (none for the first
   layer's input). BatchNorm, ReLU, the additions and the optimizer update
   are element-wise and not counted: they cost memory traffic, not FLOPs,
   which is exactly what makes a step fall short of the matmul rate.
3. The step itself (`benchmarks.resnet32_step`, a fresh process per
   setting) under each variant below, the variants taking turns for
   `--rounds` rounds so that a change in the machine's load hits them
   alike; a variant's images/s is the median over its rounds of each
   process' median step.

| variant | what changes |
|---|---|
| default | kerazoo as the recipes run it: channels last, fused BatchNorm, op determinism, oneDNN on, batch 128, a constant batch |
| keras BatchNorm | Keras 3's own (unfused) `BatchNormalization` |
| no BatchNorm | BatchNorm replaced by the identity: not a network to train; what is left is convolutions, ReLUs and additions |
| channels first | `keras.config.set_image_data_format("channels_first")` |
| oneDNN off | `TF_ENABLE_ONEDNN_OPTS=0` |
| 2 intra-op, 1 inter-op threads | `TF_NUM_INTRAOP_THREADS=2 TF_NUM_INTEROP_THREADS=1` |
| XLA | `compile(jit_compile=True)` (the recipes leave it off: a strategy cannot use it) |
| no determinism | `enable_op_determinism()` not called |
| batch 64, batch 256 | the batch size |
| tf.data map / map + cache | uint8 images through `map(scale)`, batch and prefetch, without or with `cache()` |
| mixed precision | `mixed_bfloat16` (the recipes' `precision = "mixed"`) |
| oneDNN capped at AVX2 (with either BatchNorm) | `ONEDNN_MAX_CPU_ISA=AVX2`: an AVX2-only CPU's code paths on an AVX-512 one |

Mixed precision runs only on a CPU with BF16 instructions, the AVX2 caps only
on an AVX-512 CPU, unless `--variants` names them (`NEEDS`).

Reported per variant: images/s, achieved GFLOP/s, its share of the peak,
and the ratio to the default. Writes benchmarks/results/efficiency.json.

Example:

    python -m benchmarks.efficiency                 # about 4 minutes on 2 idle cores (one round)
    python -m benchmarks.efficiency --rounds 3      # the variants take turns 3 times: three times as long
    python -m benchmarks.efficiency --variants default "keras BatchNorm"
"""

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from kerazoo import _cli

_cli.quiet_tensorflow()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import machine  # noqa: E402
from benchmarks.resnet32_step import add_round_arguments, measure  # noqa: E402
from kerazoo import backbones  # noqa: E402
from kerazoo.atomic import write_text  # noqa: E402

OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

# name -> (worker flags, environment to set)
VARIANTS = {
    "default": ((), {}),
    "keras BatchNorm": (("--batchnorm", "keras"), {}),
    "no BatchNorm": (("--batchnorm", "none"), {}),
    "channels first": (("--data-format", "channels_first"), {}),
    "oneDNN off": ((), {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    "2 intra-op, 1 inter-op threads": ((), {"TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "1"}),
    "XLA": (("--jit-compile",), {}),
    "no determinism": (("--no-deterministic",), {}),
    "batch 64": (("--batch", "64"), {}),
    "batch 256": (("--batch", "256"), {}),
    "tf.data map": (("--pipeline", "map"), {}),
    "tf.data map + cache": (("--pipeline", "map-cache"), {}),
    "mixed precision": (("--precision", "mixed"), {}),
    "oneDNN capped at AVX2": ((), {"ONEDNN_MAX_CPU_ISA": "AVX2"}),
    "oneDNN capped at AVX2, keras BatchNorm": (("--batchnorm", "keras"), {"ONEDNN_MAX_CPU_ISA": "AVX2"}),
}

# Variants that tell nothing on a CPU with none of these extensions, and
# that a run leaves out unless `--variants` names them: bfloat16 without
# BF16 instructions is emulated (on an AVX2-only EPYC one process took
# minutes), and capping an AVX2-only CPU at AVX2 is the default again.
NEEDS = {
    "mixed precision": ("avx512_bf16", "amx_bf16"),
    "oneDNN capped at AVX2": ("avx512f",),
    "oneDNN capped at AVX2, keras BatchNorm": ("avx512f",),
}

_MATMUL = """
import sys, time, json
import numpy as np
n, framework = int(sys.argv[1]), sys.argv[2]
a = np.random.default_rng(0).normal(size=(n, n)).astype("float32")
if framework == "tensorflow":
    from kerazoo import _cli
    _cli.quiet_tensorflow()
    import tensorflow as tf
    a = tf.constant(a)
    run = lambda: tf.linalg.matmul(a, a).numpy()
else:
    run = lambda: a @ a
run(); run()
times = []
for _ in range(7):
    start = time.perf_counter(); run(); times.append(time.perf_counter() - start)
print(json.dumps({"gflops": 2 * n**3 / min(times) / 1e9}))
"""


def matmul_gflops(framework, size, unset=()):
    """GFLOP/s of the best of 7 float32 (size x size) matmuls in a fresh process.

    Args:
        framework: "tensorflow" or "numpy".
        size: the matrices' side.
        unset: environment variables removed in that process only.

    Returns:
        GFLOP/s (float).

    Example:

    ```python
    from benchmarks.efficiency import matmul_gflops

    print(matmul_gflops("numpy", 512))
    ```
    """
    env = {k: v for k, v in os.environ.items() if k not in unset}
    done = subprocess.run(
        [sys.executable, "-c", _MATMUL, str(size), framework], env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"matmul in {framework} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["gflops"]


@functools.cache
def step_flops(batch):
    """FLOPs of one ResNet-32 (+ 100-way dense) training step at `batch`, counted as the docstring says.

    Example:

    ```python
    from benchmarks.efficiency import step_flops

    print(f"{step_flops(128) / 1e9:.1f} GFLOP")
    ```
    """
    backbone = backbones.resnet32((32, 32, 3))
    forward, first = 0, None
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            flops = 2 * kh * kw * cin * cout * h * w
            first = flops if first is None else first
            forward += flops
    forward += 2 * backbone.output_shape[-1] * 100
    return batch * (3 * forward - first)


def main():
    args = _parser().parse_args()
    started = time.perf_counter()
    size = args.matmul_size
    peaks = {"tensorflow": matmul_gflops("tensorflow", size), "numpy": matmul_gflops("numpy", size)}
    overridden = [name for name in OPENBLAS_OVERRIDES if name in os.environ]
    if overridden:
        peaks["numpy, " + " and ".join(overridden) + " unset"] = matmul_gflops("numpy", size, overridden)
    peak = max(peaks.values())
    for name, value in peaks.items():
        print(f"matmul {size}x{size} float32, {name}: {value:.0f} GFLOP/s", flush=True)

    names = args.variants or list(VARIANTS)
    if not args.variants:
        flags = set(machine.vector_flags())
        for name, needs in NEEDS.items():
            if not flags.intersection(needs):
                names.remove(name)
                print(f"skipped {name!r}: this CPU has none of {', '.join(needs)}", flush=True)
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    results = {name: [] for name in names}
    for round_ in range(args.rounds):
        for name in names:
            flags, env = VARIANTS[name]
            result = measure(*flags, "--steps", str(args.steps), env=env)
            results[name].append(result)
            print(f"round {round_ + 1}, {name}: {result['images_per_s']:.0f} img/s", flush=True)

    reference = float(np.median([r["images_per_s"] for r in results.get("default", [])] or [np.nan]))
    rows = []
    for name in names:
        rate = float(np.median([r["images_per_s"] for r in results[name]]))
        batch = results[name][0]["settings"]["batch"]
        gflops = step_flops(batch) / (batch / rate) / 1e9
        rows.append(
            {
                "variant": name,
                "flags": list(VARIANTS[name][0]),
                "env": VARIANTS[name][1],
                "images_per_s": round(rate, 1),
                "gflops": round(gflops, 1),
                "share_of_peak": round(gflops / peak, 3),
                "vs_default": round(rate / reference, 3),
                "rounds": [r["images_per_s"] for r in results[name]],
            }
        )
    host = machine.describe()
    print(f"\n{host['processor']}, {host['cpu_count']} CPU cores, TF {host['tensorflow']}")
    print(
        f"peak (best matmul): {peak:.0f} GFLOP/s; one step at batch 128: {step_flops(128) / 1e9:.2f} GFLOP\n"
    )
    print("| variant | img/s | GFLOP/s | share of peak | vs default |\n|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['variant']} | {r['images_per_s']:.0f} | {r['gflops']:.0f} "
            f"| {100 * r['share_of_peak']:.0f} % | {r['vs_default']:.2f} |"
        )
    report = {
        "machine": host,
        "cpu_flags": machine.vector_flags(),
        "matmul_size": size,
        "matmul_gflops": {k: round(v, 1) for k, v in peaks.items()},
        "peak_gflops": round(peak, 1),
        "step_gflop_at_128": round(step_flops(128) / 1e9, 3),
        "steps_per_process": args.steps,
        "rounds": args.rounds,
        "variants": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(f"\n{report['seconds']:.0f} s in all; wrote {args.out}")


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_round_arguments(parser, rounds=1, steps=12, what="variant")
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--variants", nargs="+", help=f"a subset of {list(VARIANTS)}")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "efficiency.json")
    return parser


if __name__ == "__main__":
    main()
