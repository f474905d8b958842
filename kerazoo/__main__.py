"""`python -m kerazoo`: what there is to run, in a second.

Lists the recipes (`python -m kerazoo.recipes.<name>`), the pretrained
models of the zoo (`python -m kerazoo.zoo`) and the exporter
(`python -m kerazoo.export`); none of it imports TensorFlow.
"""

import argparse

import kerazoo
from kerazoo import zoo
from kerazoo._cli import exit_with
from kerazoo.recipes.__main__ import recipes


def main(argv=None):
    argparse.ArgumentParser(prog="python -m kerazoo", description=__doc__.split("\n\n")[1]).parse_args(argv)
    print(f"kerazoo {kerazoo.__version__}\n")
    found = recipes()
    width = max(len(name) for name, _ in found)
    print("Recipes: python -m kerazoo.recipes.<name> [--help]")
    for name, summary in found:
        print(f"  {name:<{width}}  {summary}")
    try:
        models = zoo.available()
    except zoo.ZooError as error:
        models, missing = [], str(error)
    print("\nPretrained models: python -m kerazoo.zoo list | info | verify | publish | rebuild")
    if not models:
        print(f"  none found ({missing})")
    width = max((len(name) for name in models), default=0)
    for name in models:
        print(f"  {name:<{width}}  {zoo.summary(name)}")
    print("\nExport a trained run: python -m kerazoo.export RUN_DIR --out DIR  (SavedModel + ONNX)")


if __name__ == "__main__":
    exit_with(main)
