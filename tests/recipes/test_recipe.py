"""kerazoo.recipes.recipe: declarations that answer `--help` and config
errors without TensorFlow, and agree with the library they configure."""

import pathlib
import subprocess
import sys

import pytest

from kerazoo import backbones
from kerazoo.data.protocols import SPLIT_SHIFTS
from kerazoo.data.user_sources import IMAGE_FOLDERS
from kerazoo.incremental import METHODS as INCREMENTAL_METHODS
from kerazoo.layers.git_augment import RULES, STYLES
from kerazoo.recipes import bnm, git, lucir
from kerazoo.recipes.__main__ import recipes
from kerazoo.recipes.recipe import BACKBONES

RECIPES = [name for name, _ in recipes()]


def test_spelled_out_choices_agree_with_the_library():
    assert BACKBONES == tuple(backbones.available())
    assert git.RULES == RULES
    assert git.STYLES == STYLES
    assert set(lucir.METHODS) == set(INCREMENTAL_METHODS)
    assert bnm.FOLDERS == IMAGE_FOLDERS
    assert {(d, s) for s, d in bnm.SPLIT_SHIFTS.items()} == set(SPLIT_SHIFTS)


def _python(program):
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1]


@pytest.mark.parametrize("name", RECIPES)
def test_help_imports_no_tensorflow(name):
    # As `python -m kerazoo.recipes.<name> --help` (kerazoo/__init__ reads sys.orig_argv).
    printed = _python(
        "import contextlib, io, runpy, sys\n"
        f"sys.orig_argv = sys.argv = [sys.executable, '-m', 'kerazoo.recipes.{name}', '--help']\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):\n"
        f"    runpy.run_module('kerazoo.recipes.{name}', run_name='__main__')\n"
        "assert 'config fields' in out.getvalue(), out.getvalue()\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    assert printed == "[]"


# recipe, its arguments ({tmp}: a fresh folder), what the error says, whether
# answering it needs TensorFlow (LUCIR's phases need the dataset's class
# count, read from its tfds metadata).
ERRORS = {
    "bad value": ("git", ["--set", "epochs=0"], "'epochs' must be >= 1", False),
    "bad protocol": ("baseline", ["--set", "dataset=digits-xyz"], "Bad protocol name 'digits-xyz'", False),
    "upper case": ("baseline", ["--set", "dataset=Digits-rot"], "lower case; use 'digits-rot'", False),
    "streamed": ("bnm", ["--set", "dataset=imagenet_lt"], "'imagenet_lt' is too large for memory", False),
    "translator file": ("git", ["--set", "translator={tmp}/t.keras"], "no file", False),
    "zoo translator": ("git", ["--set", "translator=digits_baseline"], "has no translator.keras", False),
    "out is a file": ("baseline", ["--out", "{tmp}/config.json"], "is a file, not a directory", False),
    "out holds another run": ("bnm", ["--out", "{tmp}"], "not a 'bnm' run", False),
    "phases": ("lucir", ["--set", "num_base=20"], "Cannot split 10 classes into 20 base classes", True),
}


@pytest.mark.parametrize("case", ERRORS)
def test_config_and_run_directory_errors_are_answered_before_tensorflow_where_they_can(case, tmp_path):
    name, args, message, needs_tensorflow = ERRORS[case]
    (tmp_path / "config.json").write_text('{"recipe": "lucir", "config": {}}')
    args = [a.format(tmp=tmp_path) for a in args]
    printed = _python(
        "import contextlib, io, sys\n"
        f"from kerazoo.recipes.{name} import RECIPE\n"
        "with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.suppress(SystemExit):\n"
        f"    RECIPE.main({args!r})\n"
        f"assert {message!r} in err.getvalue(), err.getvalue()\n"
        "print('tensorflow' in sys.modules)"
    )
    assert printed == str(needs_tensorflow)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_experiments_leave_the_loop_seeding_and_caching_to_the_runner():
    root = pathlib.Path(__file__).resolve().parents[2] / "kerazoo" / "recipes"
    for path in sorted(root.glob("*/experiment.py")):
        text = path.read_text(encoding="utf-8")
        for owned_by_the_runner in (
            "set_random_seed",
            "lru_cache",
            "_CACHE",
            "for method in config.methods",
            "run_seed",
        ):
            assert owned_by_the_runner not in text, f"{path.parent.name}: {owned_by_the_runner}"
