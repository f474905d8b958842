"""Every recipe's metrics on one seed, to show that a refactor changed no number.

    python -m benchmarks.recipe_fingerprint --label before [--recipes lucir,bnm] [--set epochs=2 ...]
    python -m benchmarks.recipe_fingerprint --compare before after

The first form runs `python -m kerazoo.recipes.<name> --set num_seeds=1
--set exports=keras [--set ...]` for each recipe in a fresh process and
writes benchmarks/results/fingerprint-<label>.json: each recipe's
`metrics.json` results (per method label, per metric) and its wall time. The recipes are deterministic (op determinism, seeded data), so the
same code gives the same numbers; `--compare` lists every number that
differs between two labels and exits 1 if any does.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
RECIPES = ("baseline", "lucir", "bnm", "batchformer", "adco", "git")


def fingerprint(recipes, sets):
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in recipes:
            out = os.path.join(tmp, name)
            command = [
                sys.executable,
                "-m",
                f"kerazoo.recipes.{name}",
                "--set",
                "num_seeds=1",
                "--set",
                "exports=keras",
                *[a for s in sets for a in ("--set", s)],
                "--out",
                out,
            ]
            started = time.time()
            done = subprocess.run(command, capture_output=True, text=True)
            seconds = time.time() - started
            if done.returncode != 0:
                sys.exit(f"{name} failed:\n{done.stderr[-3000:]}")
            with open(os.path.join(out, "metrics.json")) as f:
                metrics = json.load(f)
            # Results by label: the ids of today's metrics.json ("methods" maps
            # them), the labels themselves in older ones, compare alike.
            labels = metrics.get("methods") or {}
            found[name] = {
                "results": {labels.get(k, k): v for k, v in metrics["results"].items()},
                "seconds": round(seconds, 1),
            }
            print(f"{name}: {seconds:.0f} s", flush=True)
    return found


def differences(before, after, path=""):
    """Paths of the leaves (numbers, strings, lists) that differ; wall times excluded."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(set(before) | set(after), key=str)
        return [
            d for k in keys if k != "seconds" for d in differences(before.get(k), after.get(k), f"{path}/{k}")
        ]
    return [] if before == after else [f"{path}: {before!r} -> {after!r}"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", help="name of the fingerprint to write")
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--set", action="append", default=[], help="config override for every recipe")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args(argv)
    if args.compare:
        loaded = []
        for label in args.compare:
            with open(os.path.join(RESULTS, f"fingerprint-{label}.json")) as f:
                loaded.append(json.load(f))
        before, after = loaded
        shared = sorted(set(before["recipes"]) & set(after["recipes"]))
        diff = differences(
            {k: before["recipes"][k] for k in shared}, {k: after["recipes"][k] for k in shared}
        )
        print("\n".join(diff) if diff else f"identical: {', '.join(shared)}")
        return 1 if diff else 0
    if not args.label:
        parser.error("give --label (or --compare)")
    found = fingerprint(args.recipes.split(","), args.set)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"fingerprint-{args.label}.json"), "w") as f:
        json.dump({"sets": args.set, "recipes": found}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
