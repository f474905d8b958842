"""README.md and docs/*.md: every Python example runs as written, and every
command they name exists (its --help answers).

The Python blocks of a page run in order, each in a fresh interpreter, in
one temporary directory per page, so that a file an example writes is there
for the next. A block whose first line is `# file: PATH` is the content of
a file the page asks the reader to create: it is written to PATH (and
compiled) instead of run.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FILE_BLOCK = re.compile(r"# file: (\S+)\n")


def _blocks(page, language):
    text = page.read_text(encoding="utf-8")
    return [match.group(1) for match in re.finditer(rf"^```{language}\n(.*?)^```", text, re.M | re.S)]


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p, "python")], ids=lambda p: p.name)
def test_python_examples_run(page, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    for number, code in enumerate(_blocks(page, "python"), 1):
        declared = FILE_BLOCK.match(code)
        if declared:
            path = tmp_path / declared.group(1)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(code)
            compile(code, str(path), "exec")
            continue
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"{page.name}, Python block {number}:\n{code}\n{done.stderr[-3000:]}"


def _modules():
    modules = set()
    for page in PAGES:
        for code in _blocks(page, "bash"):
            modules.update(re.findall(r"python -m (kerazoo[\w.]*)", code))
    return sorted(modules)


@pytest.mark.parametrize("module", _modules())
def test_named_command_answers_help(module):
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and "usage:" in done.stdout, done.stderr[-2000:]
