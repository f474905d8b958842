"""Where a recipe's wall time goes: its training steps, and everything else.

Runs one recipe (its defaults, or `--set`/`--config` as on its command line)
in this process with `--jobs 1`, timing every call of each stage's compiled
training step (`model.train_function`: up to `steps_per_execution` batches
a call, an epoch's last call the rest) from the Keras batch hooks.
Reported, as seconds and shares of the wall time:

- **training steps**: the step calls, less each stage's first call beyond
  its median call (that excess is tracing);
- **tracing**: what the first step call of each stage took beyond a
  typical one (graph construction and autograph);
- **rest of fit**: `model.fit` outside the step calls (an iterator per
  epoch, callbacks, backups, the per-epoch test pass of some recipes);
- **outside fit**: data preparation, model building, evaluation and
  `predict` calls, NME means, probes, eKLD, exports and plots.

The step calls are the run's own, on its own batches; nothing is re-run.
Input waits inside a step call count as step time (`benchmarks/
input_pipeline.py` checks the pipelines separately).

Example:

    python -m benchmarks.recipe_overhead lucir            # the main job, one process
    python -m benchmarks.recipe_overhead bnm --set num_seeds=1
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from kerazoo import _cli

_cli.quiet_tensorflow()

import keras  # noqa: E402

from benchmarks import machine  # noqa: E402
from kerazoo.recipes import runner  # noqa: E402

RESULTS = Path(__file__).parent / "results"


class StepTimer(keras.callbacks.Callback):
    """The duration of every training-step call of one `fit`."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def on_train_batch_begin(self, batch, logs=None):
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(time.perf_counter() - self.started)


def instrument(stages):
    """Wrap `Run.fit` so that each stage appends (name, fit seconds, step
    call seconds) to `stages`."""
    fit = runner.Run.fit

    def timed_fit(self, model, train_data, *, stage, epochs, callbacks=(), **kwargs):
        timer = StepTimer()
        started = time.perf_counter()
        fit(self, model, train_data, stage=stage, epochs=epochs, callbacks=(*callbacks, timer), **kwargs)
        stages.append({"stage": stage, "fit_seconds": time.perf_counter() - started, "calls": timer.calls})

    runner.Run.fit = timed_fit


def summarise(stages, wall):
    steps = tracing = fit_total = calls = 0.0
    for s in stages:
        fit_total += s["fit_seconds"]
        if not s["calls"]:
            continue
        typical = statistics.median(s["calls"])
        excess = max(0.0, s["calls"][0] - typical)
        tracing += excess
        steps += sum(s["calls"]) - excess
        calls += len(s["calls"])
    parts = {
        "training steps": steps,
        "tracing": tracing,
        "rest of fit": fit_total - steps - tracing,
        "outside fit": wall - fit_total,
    }
    return parts, int(calls)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", help="baseline, lucir, bnm, batchformer, adco or git")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--config", action="append", default=[], metavar="FILE.toml")
    parser.add_argument("--out", help="JSON file (default benchmarks/results/recipe_overhead-<recipe>.json)")
    args = parser.parse_args()
    recipe = __import__(f"kerazoo.recipes.{args.recipe}", fromlist=["RECIPE"]).RECIPE
    stages = []
    instrument(stages)
    argv = [a for f in args.config for a in ("--config", f)] + [a for s in args.set for a in ("--set", s)]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        recipe.main([*argv, "--jobs", "1", "--out", str(Path(tmp) / "run")])
        wall = time.perf_counter() - started
    parts, calls = summarise(stages, wall)
    print(f"\n{args.recipe} {' '.join(argv)}: {wall:.0f} s wall, {len(stages)} stages, {calls} step calls\n")
    print("| part | seconds | share of wall |\n|---|---|---|")
    for name, seconds in parts.items():
        print(f"| {name} | {seconds:.1f} | {100 * seconds / wall:.0f} % |")
    result = {
        "recipe": args.recipe,
        "arguments": argv,
        "wall_seconds": round(wall, 1),
        "parts_seconds": {k: round(v, 2) for k, v in parts.items()},
        "training_step_share": round(parts["training steps"] / wall, 3),
        "stages": [
            {"stage": s["stage"], "fit_seconds": round(s["fit_seconds"], 2), "step_calls": len(s["calls"])}
            for s in stages
        ],
        "machine": machine.describe(),
    }
    out = Path(args.out) if args.out else RESULTS / f"recipe_overhead-{args.recipe}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
