"""README.md and docs/*.md: every Python example runs as written, every
command they name exists (its --help answers), and every relative link
reaches a file (and a heading, for a `#anchor`).

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


def _prose(page, inline_code=False):
    """A page's text without its code blocks (and inline code spans, unless
    asked: a heading's anchor keeps their text)."""
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    return text if inline_code else re.sub(r"`[^`\n]*`", "", text)


def _anchors(page):
    """The `#anchor` of every heading, as GitHub makes them: lower case,
    punctuation dropped, spaces to hyphens, `-1`, `-2`, ... on repeats."""
    seen, anchors = {}, set()
    for heading in re.findall(r"^#+ (.*)$", _prose(page, inline_code=True), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_reach_a_file_and_heading(page):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", _prose(page)):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and destination.suffix == ".md" and anchor not in _anchors(destination):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.name}: " + ", ".join(broken)
