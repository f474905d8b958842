"""kerazoo._cli: command-line entry points keep TensorFlow's noise, and only
its noise, off the terminal."""

import os
import subprocess
import sys
import textwrap

import pytest

from helpers.recipes import GIT_TOY_TRANSLATOR
from kerazoo import _cli

# The line TensorFlow 2.21 logs (rate-limited, every 5 s) while a recipe runs.
HARMLESS = (
    "E0000 00:00:1795393459.793165    3986 node_def_util.cc:682] NodeDef mentions "
    "attribute use_unbounded_threadpool which is not in the op definition: "
    "Op<name=MapDataset; signature=input_dataset:variant, other_arguments: -> "
    "handle:variant; attr=f:func> This may be expected if your graph generating "
    "binary is newer  than this binary. Unknown attributes will be ignored. "
    "NodeDef: {{node ParallelMapDatasetV2/_14}}"
)
# The line Grappler logs once when a MUNIT translator's step is traced.
HARMLESS_REMAPPER = (
    "E0000 00:00:1796521270.925909   23587 meta_optimizer.cc:967] remapper failed: "
    "INVALID_ARGUMENT: Mutation::Apply error: fanout 'while/body/_1/while/cond/then/_1947/"
    "while/cond/StatefulPartitionedCall/gradient_tape/discriminator_9/leaky_re_lu_1/LeakyRelu/"
    "LeakyReluGrad' exist for missing node 'while/body/_1/while/cond/then/_1947/while/cond/"
    "StatefulPartitionedCall/discriminator_9/conv0_1/BiasAdd'."
)
# The remapper failing on another pattern is news: it is passed on.
OTHER_REMAPPER_ERROR = (
    "E0000 00:00:1796521270.925909   23587 meta_optimizer.cc:967] remapper failed: "
    "INVALID_ARGUMENT: Mutation::Apply error: fanout 'gradient_tape/model/Relu/ReluGrad' "
    "exist for missing node 'model/conv/BiasAdd'."
)
REAL_ERROR = (
    "E0000 00:00:1795393460.000001    3986 cuda_dnn.cc:522] Loaded runtime CuDNN "
    "library: 8.1.0 but source was compiled with: 8.9.4."
)


def run_with_filter(body):
    """Run `body` in a fresh interpreter whose fd 2 goes through the filter;
    return (stderr bytes, exit code)."""
    program = "import os\nfrom kerazoo import _cli\n_cli._filter_stderr()\n" + textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=60)
    return done.stderr, done.returncode


def test_filter_drops_only_the_harmless_lines():
    stderr, code = run_with_filter(f"""
        os.write(2, b"before\\n")
        os.write(2, {HARMLESS!r}.encode() + b"\\n")
        os.write(2, {HARMLESS_REMAPPER!r}.encode() + b"\\n")
        os.write(2, {OTHER_REMAPPER_ERROR!r}.encode() + b"\\n")
        os.write(2, {REAL_ERROR!r}.encode() + b"\\n")
        os.write(2, b"\\r 50%|#####     |")  # a progress bar, no newline
        os.write(2, b"\\r100%|##########|\\n")
        raise SystemExit("error: the end")
    """)
    assert code == 1
    assert stderr == (
        b"before\n"
        + OTHER_REMAPPER_ERROR.encode()
        + b"\n"
        + REAL_ERROR.encode()
        + b"\n\r 50%|#####     |\r100%|##########|\nerror: the end\n"
    )


def test_filter_passes_on_the_last_words_of_a_crash():
    # A separate process, not a thread: what a dying process wrote still
    # reaches the terminal.
    stderr, code = run_with_filter(f"""
        os.write(2, {HARMLESS!r}.encode() + b"\\n" + b"F0000 check failed: x == y\\n")
        os.abort()
    """)
    assert code < 0
    assert stderr == b"F0000 check failed: x == y\n"


def test_log_level_zero_turns_the_filter_off(monkeypatch):
    started = []
    monkeypatch.setattr(_cli, "_filter_stderr", lambda: started.append(True))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    _cli.quiet_tensorflow()
    assert not started
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    _cli.quiet_tensorflow()
    assert started


def test_cli_module_names_only_kerazoo_modules(monkeypatch):
    for argv, expected in [
        (["python", "-m", "kerazoo.recipes.lucir", "--help"], "kerazoo.recipes.lucir"),
        (["python", "-m", "kerazoo"], "kerazoo"),
        (["python", "-m", "pytest", "kerazoo"], None),
        (["python", "-X", "importtime", "-mkerazoo.zoo"], "kerazoo.zoo"),
        (["python", "script.py", "-m", "kerazoo.zoo"], None),
        (["python", "-c", "pass", "-m", "kerazoo.zoo"], None),
    ]:
        monkeypatch.setattr(sys, "orig_argv", argv)
        assert _cli.cli_module() == expected


@pytest.mark.slow
@pytest.mark.parametrize(
    "recipe, settings",
    [
        # Op determinism (the default) and Keras' predict on NumPy arrays make
        # TensorFlow log the threadpool line after each phase.
        ("lucir", ["epochs=1", "num_seeds=1", "num_phases=1", "methods=lucir"]),
        # Tracing the translator's step makes Grappler log the remapper line
        # (the toy translator's too, checked with TF_CPP_MIN_LOG_LEVEL=0).
        (
            "git",
            [
                "translator_epochs=1",
                "translator_batch_size=16",
                *GIT_TOY_TRANSLATOR,
                "diagnostic_styles=2",
                "epochs=1",
                "drs_epoch=0",
                "num_seeds=1",
                "methods=ce_drs_git",
                "ekld_images=2",
                "ekld_transforms=2",
            ],
        ),
    ],
)
def test_recipe_run_prints_no_tensorflow_error_lines(tmp_path, recipe, settings):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            f"kerazoo.recipes.{recipe}",
            "--out",
            tmp_path / "run",
            *[arg for setting in settings for arg in ("--set", setting)],
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "E0000" not in done.stderr, done.stderr


@pytest.mark.parametrize(
    "module, args, expected",
    [
        ("kerazoo", [], "Recipes: python -m kerazoo.recipes.<name>"),
        ("kerazoo.zoo", ["list"], "digits_lucir: lucir on digits, 10 classes"),
        # GIT's protocol with the nuisance of its config (`transform=bg`).
        ("kerazoo.zoo", ["list"], "digits_git: git on digits-bg-lt, 10 classes"),
        # Where the metrics were measured: BNM's on its target domain.
        (
            "kerazoo.zoo",
            ["list"],
            "test_accuracy 0.9833 on the digits test split under the bg shift (the target domain)",
        ),
        # A deployment's facts, e.g. the preprocessing to write out on a server.
        ("kerazoo.zoo", ["info", "glyphs_baseline"], '"raw_format": "uint8"'),
        ("kerazoo", [], "digits_git          git on digits-bg-lt, 10 classes"),
        ("kerazoo.recipes", [], "lucir "),
    ],
)
def test_discovery_commands_import_no_tensorflow(module, args, expected):
    # As `python -m MODULE ARGS` (kerazoo/__init__ reads sys.orig_argv).
    program = textwrap.dedent(f"""
        import contextlib, io, runpy, sys
        sys.orig_argv = [sys.executable, "-m", {module!r}, *{args!r}]
        sys.argv = [{module!r}, *{args!r}]
        with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
            runpy.run_module({module!r}, run_name="__main__")
        print(repr(out.getvalue()))
        print(sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    printed, imported = done.stdout.splitlines()[-2:]
    assert expected in eval(printed) and imported == "[]"


@pytest.mark.parametrize("command", [["kerazoo"], ["kerazoo.zoo", "list"]])
def test_a_listing_piped_into_a_reader_that_stops_ends_quietly(command):
    # As `python -m kerazoo.zoo list | head -1`: the reader is gone before
    # the first line, and Python's BrokenPipeError traceback used to follow.
    read, write = os.pipe()
    os.close(read)
    done = subprocess.run(
        [sys.executable, "-m", *command], stdout=write, stderr=subprocess.PIPE, text=True, timeout=120
    )
    os.close(write)
    assert done.returncode == 1 and done.stderr == "", done.stderr


def test_tensorflow_start_up_lines_are_dropped_by_the_filter():
    stderr, code = run_with_filter("""
        import tensorflow as tf
        tf.config.list_logical_devices()
        os.write(2, b"after\\n")
    """)
    assert code == 0 and stderr == b"after\n", stderr.decode()


# What TensorFlow 2.21 writes while it starts on a machine without a GPU.
STARTUP = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    b"I0000 00:00:1796265976.383342    4104 port.cc:153] oneDNN custom operations are on. You may "
    b"see slightly different numerical results due to floating-point round-off errors from "
    b"different computation orders. To turn them off, set the environment variable "
    b"`TF_ENABLE_ONEDNN_OPTS=0`.\n"
    b"I0000 00:00:1796265976.383696    4104 cudart_stub.cc:31] Could not find cuda drivers on your "
    b"machine, GPU will not be used.\n"
    b"I0000 00:00:1796265976.423773    4104 cpu_feature_guard.cc:227] This TensorFlow binary is "
    b"optimized to use available CPU instructions in performance-critical operations.\n"
    b"To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 AVX_VNNI FMA, in "
    b"other operations, rebuild TensorFlow with the appropriate compiler flags.\n"
)
CUINIT = (
    b"E0000 00:00:1796265979.579279    4104 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    b"CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n"
)


def test_the_library_drops_only_tensorflows_start_up_lines():
    warning = b"W0000 00:00:1796265979.6 1 gpu_device.cc:2342] Cannot dlopen some GPU libraries.\n"
    text = STARTUP + CUINIT + REAL_ERROR.encode() + b"\n" + warning + b"Traceback (most recent call last):\n"
    kept = _cli._drop_startup_lines(text, has_gpu=False)
    assert kept == REAL_ERROR.encode() + b"\n" + warning + b"Traceback (most recent call last):\n"
    # With a GPU, a failing cuInit is why it goes unused: kept.
    assert _cli._drop_startup_lines(STARTUP + CUINIT, has_gpu=True) == CUINIT


def test_the_library_passes_on_what_tensorflow_writes_besides_its_start_up():
    # import_tensorflow_quietly in a fresh interpreter: its start-up lines
    # vanish, a line written to fd 2 during the import (a real problem would
    # be one) is passed on.
    code = textwrap.dedent("""
        import os, sys
        class Noisy:  # runs inside the quiet import, as TensorFlow's own C++ logging would
            def find_spec(self, name, path=None, target=None):
                if name == "tensorflow":
                    os.write(2, b"E0000 something real went wrong\\n")
                return None
        sys.meta_path.insert(0, Noisy())
        from kerazoo._cli import import_tensorflow_quietly
        import_tensorflow_quietly()
        import tensorflow as tf
        tf.constant(1.0) + 1
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "E0000 something real went wrong\n"
