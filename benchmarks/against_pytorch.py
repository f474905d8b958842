"""kerazoo's plain ResNet-32 training step against PyTorch's, on this CPU.

The same network, batch, input size and optimizer in both frameworks
(`benchmarks.resnet32_step`: CIFAR ResNet-32 + 100-way head, batch 128 at
32x32, SGD with momentum 0.9, cross-entropy), each framework in its **own
process**, the two taking turns for `--rounds` rounds (which one starts
alternates), so that a change in the machine's load hits both alike.
Reported: each framework's images/s (median over rounds of each process'
median step), the ratio kerazoo / PyTorch from the medians, and the same
ratio per round (processes moments apart), with the CPU model and its SIMD
extensions.

`--isa AVX2` caps the vector extensions oneDNN may use in both frameworks
(`ONEDNN_MAX_CPU_ISA`, and `ATEN_CPU_CAPABILITY` for PyTorch's own
kernels), which reproduces an AVX2-only CPU's code paths on an AVX-512
one.

PyTorch is a benchmark-only dependency, not one of kerazoo's:
`pip install torch --index-url https://download.pytorch.org/whl/cpu`.

Example:

    python -m benchmarks.against_pytorch              # about 5 minutes on 2 cores
    python -m benchmarks.against_pytorch --isa AVX2 --rounds 3
"""

import argparse
import importlib.util
import json
import time
from pathlib import Path

from kerazoo import _cli

_cli.quiet_tensorflow()

import numpy as np  # noqa: E402

from benchmarks import machine  # noqa: E402
from benchmarks.resnet32_step import add_round_arguments, measure  # noqa: E402
from kerazoo.atomic import write_text  # noqa: E402

FRAMEWORKS = ("keras", "torch")


def _isa_env(isa):
    if isa is None:
        return {}
    return {"ONEDNN_MAX_CPU_ISA": isa, "ATEN_CPU_CAPABILITY": isa.lower()}


def main():
    args = _parser().parse_args()
    if importlib.util.find_spec("torch") is None:
        raise SystemExit(
            "PyTorch is not installed (a benchmark-only dependency): "
            "pip install torch --index-url https://download.pytorch.org/whl/cpu"
        )
    started = time.perf_counter()
    env = _isa_env(args.isa)
    results = {name: [] for name in FRAMEWORKS}
    for round_ in range(args.rounds):
        order = FRAMEWORKS if round_ % 2 == 0 else FRAMEWORKS[::-1]
        for name in order:
            result = measure(
                "--framework", name, "--batch", str(args.batch), "--steps", str(args.steps), env=env
            )
            results[name].append(result)
            print(f"round {round_ + 1}, {name}: {result['images_per_s']:.0f} img/s", flush=True)
    rates = {name: [r["images_per_s"] for r in results[name]] for name in FRAMEWORKS}
    medians = {name: float(np.median(rates[name])) for name in FRAMEWORKS}
    per_round = [k / t for k, t in zip(rates["keras"], rates["torch"])]
    import torch  # a benchmark-only dependency, checked above

    host = machine.describe()
    report = {
        "machine": host,
        "cpu_flags": machine.vector_flags(),
        "isa_cap": args.isa,
        "torch": torch.__version__,
        "batch": args.batch,
        "steps_per_process": args.steps,
        "rounds": args.rounds,
        "images_per_s": {name: round(v, 1) for name, v in medians.items()},
        "per_round_images_per_s": rates,
        "ratio": round(medians["keras"] / medians["torch"], 3),
        "ratio_per_round": [round(r, 3) for r in per_round],
        "ratio_paired_median": round(float(np.median(per_round)), 3),
        "threads": {name: results[name][0]["threads"] for name in FRAMEWORKS},
        "seconds": round(time.perf_counter() - started, 1),
    }
    cap = f", oneDNN capped at {args.isa}" if args.isa else ""
    print(
        f"\n{host['processor']} ({', '.join(report['cpu_flags'])}), {host['cpu_count']} cores{cap}; "
        f"TF {host['tensorflow']}, Keras {host['keras']}, PyTorch {torch.__version__}"
    )
    print(
        f"ResNet-32 training step, batch {args.batch} at 32x32: kerazoo {medians['keras']:.0f} img/s, "
        f"PyTorch {medians['torch']:.0f} img/s, ratio {report['ratio']:.2f} "
        f"(per round {', '.join(f'{r:.2f}' for r in per_round)})"
    )
    out = (
        args.out
        or Path(__file__).parent / "results" / f"against_pytorch{'-' + args.isa if args.isa else ''}.json"
    )
    write_text(out, json.dumps(report, indent=2) + "\n")
    print(f"{report['seconds']:.0f} s in all; wrote {out}")


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_round_arguments(parser, rounds=5, steps=15, what="framework")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--isa", choices=("AVX2", "AVX512_CORE"), help="cap oneDNN's vector extensions")
    parser.add_argument("--out", type=Path, help="default benchmarks/results/against_pytorch[-ISA].json")
    return parser


if __name__ == "__main__":
    main()
