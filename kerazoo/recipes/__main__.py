"""`python -m kerazoo.recipes`: list the recipes, one line each.

A recipe is a subpackage of `kerazoo.recipes` whose `__init__` declares
`RECIPE` (`kerazoo.recipes.recipe.Recipe`); declarations import no
TensorFlow, so the listing takes a fraction of a second.
"""

import argparse
import importlib
import pkgutil

import kerazoo.recipes
from kerazoo.recipes.recipe import Recipe


def recipes():
    """`[(name, first line of its docstring), ...]` for every recipe, by name."""
    found = []
    for info in pkgutil.iter_modules(kerazoo.recipes.__path__):
        if not info.ispkg:
            continue
        declared = getattr(importlib.import_module(f"kerazoo.recipes.{info.name}"), "RECIPE", None)
        if isinstance(declared, Recipe):
            found.append((info.name, (declared.description or "(no description)").splitlines()[0]))
    return sorted(found)


def main(argv=None):
    argparse.ArgumentParser(
        prog="python -m kerazoo.recipes",
        description="List the recipes. Run one with `python -m kerazoo.recipes.<name>`; "
        "its --help lists every config field.",
    ).parse_args(argv)
    found = recipes()
    width = max((len(name) for name, _ in found), default=0)
    for name, summary in found:
        print(f"{name:<{width}}  {summary}")


if __name__ == "__main__":
    main()
