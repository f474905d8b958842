"""Can each recipe's input pipeline feed its model? tf.data throughput
against the training step's consumption, on the recipe's own datasets.

Runs a recipe (one seed, `--jobs 1`) in this process, but replaces the
training of each stage kind's first stage by two timings on the stage's own
`tf.data` stream and compiled model:

- **pipeline**: images/s of reading the stage's stream as `Run.fit` does
  (every epoch from one iterator, `kerazoo.data.pipeline.all_epochs`;
  iterator start-up included);
- **step**: images/s of the compiled training step on batches already in
  memory (`steps_per_execution` as the run sets it).

Every image a step reads counts: a DA step's source and target images,
AdCo's two views. The pipeline should deliver at least 10x what the step
consumes. Every stage then trains for one epoch only, so the run's own numbers are
meaningless and not reported.

Example:

    python -m benchmarks.input_pipeline                 # every recipe, about 3 minutes on 2 cores
    python -m benchmarks.input_pipeline lucir git
"""

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

from kerazoo import _cli

_cli.quiet_tensorflow()

import tensorflow as tf  # noqa: E402

from benchmarks import machine  # noqa: E402
from kerazoo.recipes import runner  # noqa: E402

RESULTS = Path(__file__).parent / "results"
RECIPES = ("baseline", "lucir", "bnm", "batchformer", "adco", "git")
_FIT = runner.Run.fit


def images_in(batch):
    """The images a batch holds: the leading sizes of its rank-4 tensors."""
    return sum(int(t.shape[0]) for t in tf.nest.flatten(batch) if t.shape.rank == 4)


def time_pipeline(dataset, steps):
    """Images/s of `steps` batches from a fresh iterator."""
    started = time.perf_counter()
    iterator, images = iter(dataset), 0
    for _ in range(steps):
        images += images_in(next(iterator))
    return images / (time.perf_counter() - started)


def time_step(model, dataset, calls):
    """Images/s of the compiled training step on batches in memory."""
    per_call = model.steps_per_execution
    batches = list(dataset.take(per_call))
    while len(batches) < per_call:
        batches += batches[: per_call - len(batches)]
    cached = tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(lambda *t: tf.stack(t), *batches))
    iterator = iter(cached.repeat())
    model.make_train_function()
    tf.nest.map_structure(lambda t: t.numpy(), model.train_function(iterator))  # trace and warm up
    started = time.perf_counter()
    for _ in range(calls):
        logs = model.train_function(iterator)
    tf.nest.map_structure(lambda t: t.numpy(), logs)
    return calls * per_call * images_in(batches[0]) / (time.perf_counter() - started)


def instrument(rows, steps, calls):
    """Replace `Run.fit`: time the first stage of each kind, then train every
    stage for one epoch only (what follows a stage may read its history)."""
    seen = set()

    def timed_fit(self, model, train_data, *, stage, epochs, **kwargs):
        kind = re.sub(r"^seed\d+-", "", stage)
        if kind not in seen:
            seen.add(kind)
            measure(self, model, train_data, kind)
        _FIT(self, model, train_data, stage=stage, epochs=1, **kwargs)

    def measure(self, model, train_data, kind):
        self._build_optimizers(model)
        stream, epoch_steps, per_call, endless = runner.training_stream(
            train_data, self.config.steps_per_execution
        )
        # Keras' own step loop, traced here (Run.fit then traces its StepLoop).
        model.steps_per_execution, model.train_function = per_call, None
        # A finite dataset (no endless stream) holds one epoch at most.
        steps_read = steps if endless or epoch_steps is None else min(steps, epoch_steps)
        pipeline = time_pipeline(stream, steps_read)
        step = time_step(model, train_data, calls)
        rows.append({"stage": kind, "pipeline_images_per_s": pipeline, "step_images_per_s": step})
        print(f"  {kind}: pipeline {pipeline:.0f} images/s, step {step:.0f} images/s, {pipeline / step:.1f}x")

    runner.Run.fit = timed_fit


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipes", nargs="*", default=list(RECIPES))
    parser.add_argument("--steps", type=int, default=100, help="batches read per pipeline timing")
    parser.add_argument("--calls", type=int, default=5, help="step calls per step timing")
    parser.add_argument("--out", default=str(RESULTS / "input_pipeline.json"))
    args = parser.parse_args()
    table = {}
    for name in args.recipes:
        recipe = __import__(f"kerazoo.recipes.{name}", fromlist=["RECIPE"]).RECIPE
        rows = table[name] = []
        instrument(rows, args.steps, args.calls)
        print(f"{name}:")
        with tempfile.TemporaryDirectory() as tmp:
            recipe.main(
                ["--set", "num_seeds=1", "--set", "exports=none", "--jobs", "1", "--out", f"{tmp}/run"]
            )
    print(
        "\n| recipe | stage | pipeline (images/s) | step (images/s) | pipeline ÷ step |\n|---|---|---|---|---|"
    )
    for name, rows in table.items():
        for r in rows:
            ratio = r["pipeline_images_per_s"] / r["step_images_per_s"]
            print(
                f"| {name} | {r['stage']} | {r['pipeline_images_per_s']:.0f} | "
                f"{r['step_images_per_s']:.0f} | {ratio:.1f}x |"
            )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"recipes": table, "machine": machine.describe()}, indent=2) + "\n")
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
