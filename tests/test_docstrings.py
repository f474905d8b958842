"""Every public definition of the library documents itself with an example
that runs, and every method cites its paper.

The ```python blocks of the docstrings of each in-scope module (its own
docstring and those of its public top-level functions and classes) run with
`exec`, each in a fresh namespace, in a temporary working directory. A
second test lists the public definitions with no `Example:` section, and
those that implement a published method with no `References:` section.
"""

import ast
import importlib
import inspect
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "kerazoo"
# The library, less the recipes (own docs) and private modules.
SCOPE_DIRS = ("layers", "losses", "models", "data", "export")
SCOPE_FILES = (
    "optimizers",
    "schedules",
    "backbones",
    "metrics",
    "incremental",
    "ops",
    "inputs",
    "zoo",
    "atomic",
    "protocol_names",
)
# Definitions that implement or follow a published method: they cite it.
REFERENCED_DIRS = ("layers", "losses", "models")
REFERENCED = {
    "kerazoo.optimizers": {"GradientAscent"},
    "kerazoo.schedules": {"WarmupCosineDecay"},
    "kerazoo.incremental": None,  # every public definition
    "kerazoo.metrics": {"ekld"},
}
# In the referenced folders, the generic machinery follows no paper.
GENERIC = {
    "kerazoo.models.base": {"OptimizerGroup", "TrainingModel", "dtype_policy_scope"},
    "kerazoo.models.checked_predict": {"CheckedPredict"},
    "kerazoo.models.backbone_shapes": {"feature_size", "image_shape"},
    "kerazoo.models.classifier": {"Classifier"},
    "kerazoo.models.feature_extractor": {"FeatureExtractor"},
}
BLOCK = re.compile(r"^[ \t]*```python\n(.*?)^[ \t]*```", re.M | re.S)


def _module_names():
    names = []
    for directory in SCOPE_DIRS:
        for path in sorted((PACKAGE / directory).glob("*.py")):
            if path.name == "__init__.py":
                names.append(f"kerazoo.{directory}")
            elif not path.name.startswith("_"):
                names.append(f"kerazoo.{directory}.{path.stem}")
    names += [f"kerazoo.{name}" for name in SCOPE_FILES]
    return names


MODULES = _module_names()


def _source(module_name):
    path = PACKAGE / pathlib.Path(*module_name.split(".")[1:])
    return (path / "__init__.py") if path.is_dir() else path.with_suffix(".py")


def _public_definitions(module_name):
    """(name, docstring) of the module's public top-level functions and
    classes, in source order."""
    tree = ast.parse(_source(module_name).read_text(encoding="utf-8"))
    return [
        (node.name, ast.get_docstring(node) or "")
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and not node.name.startswith("_")
    ]


def _examples():
    cases = []
    for module_name in MODULES:
        tree = ast.parse(_source(module_name).read_text(encoding="utf-8"))
        documented = [("(module)", ast.get_docstring(tree) or ""), *_public_definitions(module_name)]
        for name, doc in documented:
            for number, block in enumerate(BLOCK.findall(doc), 1):
                suffix = f"#{number}" if number > 1 else ""
                cases.append(
                    pytest.param(module_name, inspect.cleandoc(block), id=f"{module_name}:{name}{suffix}")
                )
    return cases


def _run_example(module_name, code):
    """Run one example as a reader would: a fresh namespace, nothing imported
    that the block does not import itself. Whatever it raises, the test raises."""
    namespace = {"__name__": f"{module_name}.__docstring_example__"}
    exec(compile(code, f"<{module_name} docstring example>", "exec"), namespace)


@pytest.mark.parametrize(("module_name", "code"), _examples())
def test_docstring_example_runs(module_name, code, tmp_path, monkeypatch):
    import kerazoo.backbones

    importlib.import_module(module_name)
    monkeypatch.chdir(tmp_path)  # an example that writes a file leaves no trace
    # nor a backbone it registers (tests/recipes/test_recipe.py compares the
    # registry with the recipes' choices, maybe later in this process)
    monkeypatch.setattr(kerazoo.backbones, "_REGISTRY", dict(kerazoo.backbones._REGISTRY))
    _run_example(module_name, code)


def test_every_public_definition_has_example_and_references():
    missing = []
    for module_name in MODULES:
        parts = module_name.split(".")
        referenced = parts[1] in REFERENCED_DIRS
        wanted = REFERENCED.get(module_name, ...)
        for name, doc in _public_definitions(module_name):
            if not BLOCK.search(doc) or "Example:" not in doc:
                missing.append(f"{module_name}:{name} has no Example: with a ```python block")
            cites = (
                (referenced and name not in GENERIC.get(module_name, ()))
                or wanted is None
                or (wanted is not ... and name in wanted)
            )
            if cites and "References:" not in doc:
                missing.append(f"{module_name}:{name} has no References:")
    assert not missing, "\n".join(missing)


def test_no_docstring_points_outside_the_repository():
    outside = re.compile(r"research/|calibration\.md|DESIGN\.md|the issue's bar")
    found = []
    for module_name in MODULES:
        text = _source(module_name).read_text(encoding="utf-8")
        found += [f"{module_name}: {m.group(0)}" for m in outside.finditer(text)]
    assert not found, "\n".join(found)


def test_an_example_that_raises_or_assumes_a_name_fails():
    with pytest.raises(ZeroDivisionError):
        _run_example("kerazoo.ops", "1 / 0")
    with pytest.raises(NameError):  # a name the block does not import
        _run_example("kerazoo.ops", "l2_normalize([[3.0, 4.0]], axis=1)")
    # The collector finds fenced blocks in an indented docstring.
    doc = "Summary.\n\n    Example:\n\n    ```python\n    x = 1\n    ```\n"
    assert [inspect.cleandoc(b) for b in BLOCK.findall(doc)] == ["x = 1"]
