"""`python -m kerazoo.recipes`: list the recipes, one line each.

A recipe is a module of this package that assigns `RECIPE =
runner.Recipe(...)` at its top level (the object its `__main__` block runs);
helper modules (runner, config, plots, ...) define no `RECIPE`. Modules are
parsed, not imported, so the listing needs no TensorFlow and takes a
fraction of a second.
"""

import argparse
import ast
import importlib.util
import pkgutil

import kerazoo.recipes


def _defines_recipe(tree):
    """True if the module's top level has `RECIPE = <...>Recipe(...)`."""
    return any(
        isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "RECIPE" for t in node.targets)
        and isinstance(node.value, ast.Call)
        and ast.unparse(node.value.func).split(".")[-1] == "Recipe"
        for node in tree.body
    )


def recipes():
    """`[(name, first line of its docstring), ...]` for every recipe, by name."""
    found = []
    for info in pkgutil.iter_modules(kerazoo.recipes.__path__):
        if info.ispkg:
            continue
        path = importlib.util.find_spec(f"kerazoo.recipes.{info.name}").origin
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
        if _defines_recipe(tree):
            summary = (ast.get_docstring(tree) or "(no description)").splitlines()[0]
            found.append((info.name, summary))
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
