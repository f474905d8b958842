"""README.md and docs/*.md: every Python example runs as written, and every
command they name exists (its --help answers)."""

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks(language):
    """(page, first line, code) of every fenced block in `language`."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(rf"^```{language}\n(.*?)^```", text, re.M | re.S):
            line = text[: match.start()].count("\n") + 1
            found.append(pytest.param(match.group(1), id=f"{page.name}:{line}"))
    return found


@pytest.mark.parametrize("code", _blocks("python"))
def test_python_example_runs(code):
    # From the repository root, as a reader in a clone would; a fresh
    # interpreter, so that each example stands on its own.
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _modules():
    modules = set()
    for param in _blocks("bash"):
        modules.update(re.findall(r"python -m (kerazoo[\w.]*)", param.values[0]))
    return sorted(modules)


@pytest.mark.parametrize("module", _modules())
def test_named_command_answers_help(module):
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and "usage:" in done.stdout, done.stderr[-2000:]
