"""`python -m kerazoo.recipes` lists the recipes."""

import importlib
import pkgutil
import subprocess
import sys

import kerazoo.recipes
from kerazoo.recipes.__main__ import recipes


def test_lists_each_recipe_with_the_first_line_of_its_docstring(cli):
    done = cli("kerazoo.recipes")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    listed = dict(line.split(maxsplit=1) for line in done.stdout.splitlines())
    assert {"baseline", "lucir"} <= set(listed)
    for name, summary in listed.items():
        module = importlib.import_module(f"kerazoo.recipes.{name}")
        assert summary == module.__doc__.splitlines()[0]


def test_every_recipe_package_is_listed_under_its_own_name():
    packages = {info.name for info in pkgutil.iter_modules(kerazoo.recipes.__path__) if info.ispkg}
    assert {name for name, _ in recipes()} == packages
    for name in packages:
        assert importlib.import_module(f"kerazoo.recipes.{name}").RECIPE.name == name


def test_listing_imports_no_tensorflow():
    # As `python -m kerazoo.recipes` (which kerazoo/__init__ recognises by
    # sys.orig_argv), then report whether TensorFlow got imported.
    program = (
        "import runpy, sys; sys.orig_argv = [sys.executable, '-m', 'kerazoo.recipes']; "
        "runpy.run_module('kerazoo.recipes', run_name='__main__'); "
        "print('tensorflow' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines()[-1] == "False", done.stderr
