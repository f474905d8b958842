"""Test set-up: two logical CPU devices, a private tfds data directory.

The logical devices must be configured before TensorFlow creates its
devices, hence at import time, before any test module imports TensorFlow.
"""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NO_GCE_CHECK", "true")
# One process per recipe run: a worker's start-up costs more than a toy run
# gains from it (tests/recipes/test_jobs.py asks for --jobs 2 itself).
os.environ.setdefault("KERAZOO_JOBS", "1")
# Subprocess tests (recipes, CLIs) inherit this and share one prepared digits.
if "KERAZOO_DATA_DIR" not in os.environ:
    os.environ["KERAZOO_DATA_DIR"] = tempfile.mkdtemp(prefix="kerazoo-tfds-")
    atexit.register(shutil.rmtree, os.environ["KERAZOO_DATA_DIR"], ignore_errors=True)

import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)


import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def cli():
    """Run `python -m MODULE ARGS...` (in `cwd`, default this one) in a process
    of its own (forked with TensorFlow imported: `helpers.processes`); return
    the completed process (text output)."""
    from helpers import processes

    def run(module, *args, cwd=None, timeout=900):
        return processes.run(["-m", module, *args], cwd=cwd, timeout=timeout)

    return run


def _numeric_gradient(f, x, eps=1e-6):
    """Central finite differences of a scalar NumPy function of `x`."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        grad[i] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad


@pytest.fixture
def numeric_gradient():
    """The finite-difference gradient the formula tests compare against."""
    return _numeric_gradient


@pytest.fixture(scope="session")
def small_glyphs(tmp_path_factory):
    """A tfds data directory holding every split of `glyphs` at
    helpers.glyphs.SMALL_GLYPHS' sizes, built once per session and shared by
    the xdist workers (tests/data/test_glyphs.py and the benchmark configs'
    runs in tests/recipes/test_glyphs_benchmarks.py)."""
    from helpers.glyphs import build_small_glyphs
    from helpers.shared import shared_directory

    return str(shared_directory(tmp_path_factory, "glyphs-small", build_small_glyphs))


def pytest_collection_modifyitems(config, items):
    """Each xdist worker's share of the tests begins with its share of the
    slow ones. `--dist worksteal` (pyproject.toml) first splits the tests
    into one contiguous share per worker, then an idle worker steals the
    back half of the longest queue: with the end-to-end runs at the front of
    every share, the workers end together on short tests instead of one
    waiting for the other's last minute-long run."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    slow = [item for item in items if item.get_closest_marker("slow")]
    fast = [item for item in items if not item.get_closest_marker("slow")]
    ordered = []
    for worker in range(workers):
        share = slow[worker::workers]
        take = max(0, len(items) // workers - len(share))
        ordered += share + fast[:take]
        fast = fast[take:]
    items[:] = ordered + fast
