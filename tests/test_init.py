"""`import kerazoo`: cheap, and enough for Keras to load zoo `.keras` files."""

import json
import pathlib
import re
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
ZOO_KERAS_FILE = ROOT / "saved_models" / "digits_lucir" / "digits_lucir.keras"


def run_python(body):
    """Run `body` in a fresh interpreter; return what it printed last, as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(body)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize(
    "imports",
    ["import kerazoo; import keras", "import keras; import kerazoo", "import kerazoo; import tensorflow"],
)
def test_import_kerazoo_is_enough_to_load_a_zoo_keras_file(imports):
    out = run_python(f"""
        import json, sys
        {imports}
        import keras
        model = keras.saving.load_model({str(ZOO_KERAS_FILE)!r})  # safe_mode stays on
        print(json.dumps({{
            "class": type(model).__module__ + "." + type(model).__name__,
            "hooks": [type(f).__name__ for f in sys.meta_path if type(f).__module__.startswith("kerazoo")],
            "keras_loader": type(keras.__loader__).__name__,
        }}))
    """)
    assert out["class"] == "kerazoo.models.classifier.Classifier"
    # The import hook is gone and Keras' module has its own loader back.
    assert out == {**out, "hooks": [], "keras_loader": "SourceFileLoader"}


def test_import_kerazoo_imports_neither_tensorflow_nor_keras():
    out = run_python("""
        import json, sys
        import kerazoo
        from kerazoo.export import OnnxClassifier
        print(json.dumps(sorted(m for m in ("tensorflow", "keras") if m in sys.modules)))
    """)
    assert out == []


def test_every_serializable_class_is_registered():
    decorated = re.compile(r"^\s*@(keras\.saving\.)?register_keras_serializable", re.M)
    defining = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in (ROOT / "kerazoo").rglob("*.py")
        if decorated.search(path.read_text(encoding="utf-8"))
    }
    assert defining, "no @register_keras_serializable found: is the pattern out of date?"
    loaded = run_python("""
        import json, sys
        import kerazoo, keras
        print(json.dumps(sorted(m for m in sys.modules if m.startswith("kerazoo."))))
    """)
    assert defining <= set(loaded), f"add their subpackages to kerazoo._SERIALIZABLE: {defining - set(loaded)}"


def test_a_failing_registration_warns_instead_of_breaking_import_keras():
    out = run_python("""
        import json, warnings
        from kerazoo import _keras_registration

        def register():
            raise ImportError("no module named 'missing'")

        _keras_registration.when_keras_ready(register)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import keras
        print(json.dumps([str(w.message) for w in caught if w.category is RuntimeWarning]))
    """)
    assert out == ["register failed: ImportError(\"no module named 'missing'\")"]
