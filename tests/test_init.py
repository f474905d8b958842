"""`import kerazoo` is cheap; `import kerazoo.models` registers every Keras class, in any import order."""

import ast
import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def python_process(body, env=None):
    """Run `body` in a fresh interpreter (with `env`, if given) that must succeed; return it."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(body)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def run_python(body):
    """Run `body` in a fresh interpreter; return what it printed last, as JSON."""
    return json.loads(python_process(body).stdout.splitlines()[-1])


# Every kind of `.keras` file kerazoo writes: a classifier with a cosine head
# and a compiled optimizer, a feature extractor, a translator (the zoo's), and
# a model compiled with a wrapped optimizer on a kerazoo schedule.
ZOO_KERAS_FILES = sorted(str(p) for p in (ROOT / "saved_models").glob("*/*.keras"))

# The orders a user may import in; each ends by importing `kerazoo.models`,
# the one documented import a `.keras` file needs.
IMPORT_ORDERS = {
    "top-level first": "import kerazoo; import kerazoo.models; import keras",
    "a submodule first": "from kerazoo.optimizers import with_weight_decay; import kerazoo.models",
    "keras first": "import keras; import kerazoo; import kerazoo.models",
    "a loss first": "import kerazoo; from kerazoo.losses import bnm_loss; import keras; import kerazoo.models",
    "a layer first": "from kerazoo.layers import BatchFormer; import kerazoo.models",
}


@pytest.fixture(scope="module")
def compiled_keras_file(tmp_path_factory):
    """A classifier compiled with `with_weight_decay(SGD)` on a warm-up
    cosine schedule, as the recipes compile theirs, saved as `.keras`."""
    import keras

    from kerazoo import optimizers, schedules
    from kerazoo.models import Classifier

    model = Classifier(keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten()]), num_classes=3)
    model(np.zeros((1, 4, 4, 1), "float32"))
    schedule = schedules.WarmupCosineDecay(0.05, 0.1, warmup_steps=2, decay_steps=10)
    model.compile(optimizer=optimizers.with_weight_decay(keras.optimizers.SGD(schedule), 1e-4))
    path = tmp_path_factory.mktemp("keras") / "compiled.keras"
    model.save(path)
    return str(path)


@pytest.mark.parametrize("order", IMPORT_ORDERS)
def test_every_keras_file_loads_in_every_import_order(order, compiled_keras_file):
    paths = [*ZOO_KERAS_FILES, compiled_keras_file]
    out = run_python(f"""
        import json, warnings
        warnings.simplefilter("error", RuntimeWarning)
        {IMPORT_ORDERS[order]}
        import keras
        print(json.dumps({{
            path: type(keras.saving.load_model(path)).__name__  # safe_mode stays on
            for path in {paths!r}
        }}))
    """)
    assert {type_ for type_ in out.values()} == {"Classifier", "FeatureExtractor", "MUNITGenerator"}
    assert len(out) == len(paths) and len(ZOO_KERAS_FILES) >= 8


def test_no_import_cycle_between_kerazoo_modules():
    """A cycle is what broke loading before: a module half-initialised when
    another needed one of its names. Reads the module-level imports and
    checks that they form no cycle (a package's `__init__` counts as a
    module imported before its submodules)."""
    graph = _module_import_graph()
    assert "kerazoo.models" in graph and "kerazoo.losses.bnm" in graph["kerazoo.models.adaptation"]
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _module_import_graph():
    """{module: the kerazoo modules its module-level imports execute}.

    Importing `a.b.c` first executes the packages `a` and `a.b`, except
    those the importer is inside (they are already being executed)."""
    modules = {}
    for path in (ROOT / "kerazoo").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        inside = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}
        if path.name != "__init__.py":
            inside.discard(name)
        targets = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:  # module level only
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets.add(node.module)
                # `from package import module` executes that module too.
                targets.update(f"{node.module}.{alias.name}" for alias in node.names)
        edges = set()
        for target in targets:
            parts = target.split(".")
            edges.update(
                prefix
                for i in range(1, len(parts) + 1)
                if (prefix := ".".join(parts[:i])) in modules and prefix not in inside
            )
        graph[name] = edges - {name}
    return graph


def _find_cycle(graph):
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state and (found := visit(target, [*stack, target])):
                return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [node])):
            return found
    return None


def test_import_kerazoo_imports_neither_tensorflow_nor_keras():
    out = run_python("""
        import json, sys
        import kerazoo
        from kerazoo.export import OnnxClassifier
        print(json.dumps(sorted(m for m in ("tensorflow", "keras") if m in sys.modules)))
    """)
    assert out == []


CONVOLVE = """
    import kerazoo
    import tensorflow as tf
    x = tf.ones((2, 8, 8, 4))
    tf.function(lambda x: tf.nn.conv2d(x, tf.ones((3, 3, 4, 4)), 1, "SAME"))(x).numpy()
"""


@pytest.mark.parametrize("user_value, onednn", [(None, True), ("0", False)])
def test_import_kerazoo_turns_on_onednn_unless_the_user_chose(user_value, onednn):
    # TensorFlow leaves oneDNN off on CPUs without AVX-512 VNNI/BF16; kerazoo
    # turns it on before TensorFlow's import, and a user's own value wins.
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if user_value is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = user_value
    done = python_process(CONVOLVE, env={**env, "ONEDNN_VERBOSE": "1"})
    assert ("exec,cpu,convolution" in done.stdout) == onednn, done.stdout[-3000:]


TENSORFLOW_FIRST = """
    import os, warnings
    import tensorflow
    # What TensorFlow decided at its import stays; the variable now reads as
    # a user who never set it.
    del os.environ["TF_ENABLE_ONEDNN_OPTS"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import kerazoo
    print([str(w.message) for w in caught])
"""


@pytest.mark.parametrize("onednn_at_tensorflow_import, warned", [("0", True), ("1", False)])
def test_import_kerazoo_after_tensorflow_warns_when_onednn_is_off(onednn_at_tensorflow_import, warned):
    # On an AVX2-only CPU TensorFlow's own default is oneDNN off; the
    # variable at TensorFlow's import makes that case here on any CPU.
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn_at_tensorflow_import}
    done = python_process(TENSORFLOW_FIRST, env=env)
    messages = ast.literal_eval(done.stdout.splitlines()[-1])
    onednn = [m for m in messages if "oneDNN" in m]
    assert bool(onednn) == warned, messages
    if warned:
        assert "Import kerazoo before TensorFlow" in onednn[0] and "TF_ENABLE_ONEDNN_OPTS=1" in onednn[0]


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
        import kerazoo.models
        print(json.dumps(sorted(m for m in sys.modules if m.startswith("kerazoo."))))
    """)
    assert defining <= set(loaded), f"import them in kerazoo/models/__init__.py: {defining - set(loaded)}"
