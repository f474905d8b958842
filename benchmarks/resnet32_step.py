"""One process timing the plain CIFAR ResNet-32 training step, in Keras or PyTorch.

The unit that `benchmarks.efficiency` and `benchmarks.against_pytorch` run
in fresh processes, one per setting, so that an environment variable
(oneDNN's, a thread pool's) or a global Keras setting never leaks from one
measurement into the next. It builds the same network in either framework:
ResNet-32 (3 stages x 5 basic blocks, 16/32/64 channels, 1x1-conv
shortcuts where the shape changes, BatchNorm, global average pooling) and a
100-way linear head, cross-entropy, SGD with momentum 0.9; a batch of
random 32x32x3 images, the same batch every step (the input pipeline's
cost is a setting of its own, `--pipeline`).

Keras runs kerazoo's `Classifier(backbones.resnet32)` through its compiled
`train_function`, as `fit` calls it; PyTorch runs `zero_grad`, forward,
`backward`, `step` in eager mode, as its training loops do.

It prints one JSON line: images/s from the median step, every step's
seconds, the settings and the framework's thread counts.

Example:

    python -m benchmarks.resnet32_step --framework keras --batch 128
    python -m benchmarks.resnet32_step --framework torch
    python -m benchmarks.resnet32_step --batchnorm keras --data-format channels_first
"""

import argparse
import functools
import json
import os
import subprocess
import sys
import time

import numpy as np

FLAGS = ("batch", "data_format", "jit_compile", "batchnorm", "pipeline", "precision", "deterministic")


def measure(*flags, env=None, unset=()):
    """Run this module in a fresh process and return its JSON result.

    Args:
        *flags: command-line flags, e.g. `"--framework", "torch"`.
        env: environment variables to set in that process only.
        unset: environment variables to remove in that process only.

    Returns:
        The worker's result (a dict), with the environment it was given under `"env"`.

    Example:

    ```python
    from benchmarks.resnet32_step import measure

    print(measure("--steps", "3", "--warmup", "1")["images_per_s"])
    ```
    """
    child = {k: v for k, v in os.environ.items() if k not in unset}
    child.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.resnet32_step", *flags],
        env=child,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError(f"resnet32_step {' '.join(flags)} failed:\n{done.stderr[-2000:]}")
    result = json.loads(lines[-1])
    result["env"] = {**(env or {}), **{name: None for name in unset}}
    return result


def add_round_arguments(parser, rounds, steps, what):
    """`--rounds` and `--steps` for a driver whose settings take turns in fresh processes."""
    parser.add_argument(
        "--rounds", type=int, default=rounds, help=f"processes per {what}, taking turns (default {rounds})"
    )
    parser.add_argument("--steps", type=int, default=steps, help=f"timed steps per process (default {steps})")


def main():
    args = _parser().parse_args()
    if args.data_format is None:
        args.data_format = "channels_last" if args.framework == "keras" else "channels_first"
    flags = FLAGS if args.framework == "keras" else ("batch", "data_format")
    settings = {flag: getattr(args, flag) for flag in flags}
    if args.framework == "keras":
        step, threads = _keras_step(args)
    else:
        step, threads = _torch_step(args)
    for _ in range(args.warmup):
        step()
    seconds = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    median = float(np.median(seconds))
    result = dict(
        framework=args.framework,
        settings=settings,
        threads=threads,
        images_per_s=round(args.batch / median, 1),
        step_ms=round(1e3 * median, 1),
        step_seconds=[round(s, 5) for s in seconds],
    )
    print(json.dumps(result), flush=True)


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--framework", choices=("keras", "torch"), default="keras")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=4, help="untimed steps (the first traces)")
    parser.add_argument("--steps", type=int, default=15, help="timed steps")
    parser.add_argument(
        "--data-format",
        choices=("channels_last", "channels_first"),
        help="default: each framework's own (Keras channels_last, PyTorch channels_first)",
    )
    parser.add_argument("--jit-compile", action="store_true", help="Keras: compile the step with XLA")
    parser.add_argument(
        "--batchnorm",
        choices=("fused", "keras", "none"),
        default="fused",
        help="Keras: kerazoo's FusedBatchNormalization (its backbones' default), "
        "keras.layers.BatchNormalization (Keras 3's unfused ops), or none (identity: "
        "not a network to train, it shows what BatchNorm costs)",
    )
    parser.add_argument(
        "--pipeline",
        choices=("constant", "map", "map-cache"),
        default="constant",
        help="Keras: the same batch every step (constant), or uint8 images through tf.data "
        "map(scale)+batch+prefetch, with or without cache after the map",
    )
    parser.add_argument(
        "--precision", choices=("float32", "mixed"), default="float32", help="as the recipes' `precision`"
    )
    parser.add_argument(
        "--deterministic",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Keras: TensorFlow op determinism, as the recipes run (default on)",
    )
    return parser


def _keras_step(args):
    from kerazoo import _cli

    _cli.quiet_tensorflow()
    import keras
    import tensorflow as tf

    from kerazoo import backbones
    from kerazoo.models import Classifier
    from kerazoo.recipes.runner import PRECISION_POLICIES

    if args.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.config.set_image_data_format(args.data_format)
    keras.config.set_dtype_policy(PRECISION_POLICIES[args.precision])
    keras.utils.set_random_seed(0)
    shape = (32, 32, 3) if args.data_format == "channels_last" else (3, 32, 32)
    backbone = backbones.resnet32(shape)
    if args.batchnorm != "fused":
        replace = functools.partial(_replace_batchnorm, keep=args.batchnorm == "keras")
        backbone = keras.models.clone_model(backbone, clone_function=replace)
    model = Classifier(backbone, 100)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), jit_compile=args.jit_compile)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.batch * 8, *shape), dtype=np.uint8)
    labels = rng.integers(0, 100, args.batch * 8).astype("int32")
    if args.pipeline == "constant":
        batch = (images[: args.batch].astype("float32") / 255.0, labels[: args.batch])
        data = tf.data.Dataset.from_tensors(batch).repeat()
    else:
        data = tf.data.Dataset.from_tensor_slices((images, labels)).map(
            lambda x, y: (tf.cast(x, "float32") / 255.0, y), num_parallel_calls=tf.data.AUTOTUNE
        )
        if args.pipeline == "map-cache":
            data = data.cache()
        data = data.repeat().batch(args.batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    iterator = iter(data)
    model.make_train_function()

    def step():
        for value in model.train_function(iterator).values():
            np.asarray(value)  # synchronise

    threads = dict(
        intra_op=tf.config.threading.get_intra_op_parallelism_threads(),
        inter_op=tf.config.threading.get_inter_op_parallelism_threads(),
    )
    return step, threads


def _identity_class():
    import keras

    class Identity(keras.layers.Layer):
        """Passes its input through; takes BatchNorm's call arguments."""

        def call(self, inputs, training=None, mask=None):
            return inputs

    return Identity


def _replace_batchnorm(layer, keep):
    """A clone of `layer`; kerazoo's fused BatchNorm becomes Keras' own (`keep`) or an identity."""
    import keras

    from kerazoo.layers import FusedBatchNormalization

    if isinstance(layer, FusedBatchNormalization):
        if keep:
            return keras.layers.BatchNormalization.from_config(layer.get_config())
        return _identity_class()(name=layer.name)
    return layer.__class__.from_config(layer.get_config())


def _torch_step(args):
    import torch
    from torch import nn
    from torch.nn import functional

    torch.manual_seed(0)

    def conv_bn(cin, cout, kernel, stride):
        return nn.Sequential(
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)
        )

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.first = conv_bn(cin, cout, 3, stride)
            self.second = conv_bn(cout, cout, 3, 1)
            self.shortcut = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

        def forward(self, x):
            y = self.second(functional.relu(self.first(x)))
            return functional.relu(y + self.shortcut(x))

    blocks, cin = [conv_bn(3, 16, 3, 1), nn.ReLU()], 16
    for stage, cout in enumerate((16, 32, 64)):
        for b in range(5):
            blocks.append(Block(cin, cout, 2 if b == 0 and stage > 0 else 1))
            cin = cout
    model = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 100))
    if args.data_format == "channels_last":
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.rand(args.batch, 3, 32, 32)
    if args.data_format == "channels_last":
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 100, (args.batch,))

    def step():
        optimizer.zero_grad()
        functional.cross_entropy(model(images), labels).backward()
        optimizer.step()

    threads = dict(intra_op=torch.get_num_threads(), inter_op=torch.get_num_interop_threads())
    return step, threads


if __name__ == "__main__":
    main()
