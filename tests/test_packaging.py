"""The wheel carries the zoo (saved_models/, export/) and the recipe configs,
and kerazoo installed from it finds and loads them from any directory."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kerazoo import zoo

REPO = Path(__file__).resolve().parents[1]
# What building the wheel reads.
SOURCES = ("pyproject.toml", "README.md", "kerazoo", "saved_models", "export", "recipes")
BUNDLED = f"kerazoo/{zoo.BUNDLED}/"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel, built offline from a copy of the sources (a build in the
    work tree would leave build/ behind and could pick up its stale files)."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (path,) = out.glob("kerazoo-*.whl")
    return path


def _files(wheel):
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}


def test_the_wheel_carries_every_file_of_every_model(wheel):
    files = _files(wheel)
    manifest = json.loads(files[BUNDLED + "saved_models/manifest.json"])
    assert manifest == json.loads((REPO / zoo.MANIFEST).read_text())
    assert manifest["models"]
    for name, entry in manifest["models"].items():
        assert any(p.endswith(".onnx") for p in entry["files"]), name
        assert any(p.endswith("/model/saved_model.pb") for p in entry["files"]), name
        for relative, digest in entry["files"].items():
            assert hashlib.sha256(files[BUNDLED + relative]).hexdigest() == digest, relative


def test_the_wheel_carries_the_recipe_configs_and_every_module(wheel):
    files = set(_files(wheel))
    tomls = {f"{BUNDLED}recipes/{p.name}" for p in (REPO / "recipes").glob("*.toml")}
    assert tomls and tomls <= files
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "kerazoo").rglob("*.py")}
    packaged = {f for f in files if f.endswith(".py")}
    # A subpackage missing from pyproject's `packages` list would be missing here.
    assert packaged == modules
    assert all(f.startswith(("kerazoo/", "kerazoo-")) for f in files), sorted(files)


def test_an_installed_wheel_loads_the_zoo_from_another_directory(wheel, tmp_path):
    # A wheel install is the wheel unpacked on sys.path, away from the clone.
    site = tmp_path / "site-packages"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    code = """
import numpy as np
import kerazoo
from kerazoo import zoo
root = zoo.default_root()
assert root == __import__("pathlib").Path(kerazoo.__file__).parent / "_bundled", root
for name in zoo.available():
    info = zoo.info(name)
    images = np.full((2, *info["input"]["shape"][1:]), 0.5, np.float32)
    zoo.verify(name)
    width = len(info["classes"]) if info["kind"] == "classifier" else None  # features: the encoder's width
    onnx_out = zoo.load(name, "onnx").predict(images)
    served = zoo.load(name).serve(images)[info["outputs"][-1]]
    assert onnx_out.shape == served.shape == (2, width or onnx_out.shape[1]), (name, onnx_out.shape)
    np.testing.assert_allclose(zoo.load(name, "keras").predict(images), onnx_out, atol=1e-4)
assert (root / "recipes" / "digits_lucir.toml").is_file()
print(kerazoo.__file__)
"""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "KERAZOO_ZOO_DIR"}
    env["PYTHONPATH"] = str(site)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(site / "kerazoo" / "__init__.py")


def test_a_clone_or_editable_install_reads_the_zoo_in_place(monkeypatch):
    monkeypatch.delenv("KERAZOO_ZOO_DIR", raising=False)
    assert zoo.default_root() == REPO
