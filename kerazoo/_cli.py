"""Start-up and logging hygiene for kerazoo's command-line entry points.

Everything here applies to `python -m kerazoo...` only (and to scripts that
call `quiet_tensorflow()` themselves), except `import_tensorflow_quietly`,
which the zoo API (`kerazoo.zoo.load`) calls in a user's own program: it
drops only TensorFlow's start-up lines (item 3), and only when kerazoo is
the first to start TensorFlow.

1. TensorFlow prints its start-up lines straight to file descriptor 2
   before its logging is initialised, so `TF_CPP_MIN_LOG_LEVEL` cannot hide
   them: absl's "log messages before absl::InitializeLog()" notice, INFO
   lines (oneDNN, "Could not find cuda drivers", the CPU-instructions
   notice and its second line), and "failed call to cuInit", harmless when
   the machine has no NVIDIA device (with one, that line explains why the
   GPU is unused, and is kept).

2. While running, TensorFlow logs two harmless messages at ERROR level.
   The first comes over and over (86 times in the default LUCIR run):

       E0000 ... node_def_util.cc:682] NodeDef mentions attribute
       use_unbounded_threadpool which is not in the op definition:
       Op<name=MapDataset; ...> ... Unknown attributes will be ignored.

   Cause: with op determinism enabled (our recipes' default), tf.data's
   `make_deterministic` graph rewrite turns a `ParallelMapDatasetV2` whose
   function is stateful (Keras' `predict` on NumPy arrays builds one) into a
   sequential `MapDataset`, deleting the attributes `MapDataset` lacks
   except the newer `use_unbounded_threadpool`; `ValidateNodeDef` in
   tensorflow/core/framework/node_def_util.cc then logs the unknown
   attribute with LOG_EVERY_N_SEC(ERROR, 5) and ignores it. Nothing is wrong
   with the run.

   The second comes once, when the step of a MUNIT translator (GIT) is first
   traced:

       E0000 ... meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT:
       Mutation::Apply error: fanout '.../LeakyRelu/LeakyReluGrad' exist for
       missing node '.../conv0_1/BiasAdd'.

   Cause: Grappler's remapper fuses the discriminator's convolution, bias
   and LeakyReLU into one op, although LeakyReLU's gradient still reads the
   bias' output (ReLU's reads its own output, which the fusion keeps); the
   graph check catches it and Grappler runs the step without the remapper's
   rewrites. The arithmetic is unchanged, and so is the speed: the glyphs
   configs' translator step took 121-125 ms with it, 115-129 ms with the
   remapper off and 128 ms with a LeakyReLU the remapper fuses without
   error (one process each, 2 cores).

   Raising TF_CPP_MIN_LOG_LEVEL to 3 would hide it, but also every other C++
   ERROR line, and some of those are the only explanation of a failure: the
   Python exception for a cuDNN/driver mismatch, for instance, just says
   "look at the errors above". So instead fd 2 goes through a small child
   process that drops exactly those messages (the start-up lines of 1 and
   these two) and passes everything else on unchanged. TensorFlow is not
   imported here: a command that needs none (`--help`, `zoo list`) starts
   in a fraction of a second, and one that does is quiet whenever it
   imports it. It is a separate process, not a thread, so that it still
   passes on the last words of a process that crashes (a C++ FATAL check,
   a segfault report), and it runs in its own session so that Ctrl-C does
   not kill it before it has passed on the KeyboardInterrupt traceback.
   `TF_CPP_MIN_LOG_LEVEL=0` (show everything) turns the filter off.

3. In a user's program (`kerazoo.zoo.load`), nothing is rerouted for good
   and no environment variable is set: `import_tensorflow_quietly` imports
   TensorFlow and creates its devices with fd 2 pointed at a temporary
   file, then writes back every captured line except the start-up lines of
   1. Warnings, other errors and an import's traceback get through.
"""

import atexit
import contextlib
import logging
import os
import re
import subprocess
import sys
import tempfile
import warnings

# TensorFlow's start-up lines that say nothing is wrong on a machine without
# a GPU: absl's notice, INFO lines (oneDNN, no CUDA drivers, the CPU
# instructions notice and its second line).
_STARTUP_LINE = re.compile(
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|I\d{4} "
    rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\."
)
# Harmless only without an NVIDIA device: with one, it says why the GPU goes unused.
_CUINIT_LINE = re.compile(rb"E\d{4} \S+ +\d+ cuda_platform\.cc:\d+\] failed call to cuInit")
# The harmless ERROR lines of 2. in the module docstring.
_THREADPOOL_LINE = re.compile(
    rb"\S+ .*node_def_util\.cc:\d+\] NodeDef mentions attribute "
    rb"use_unbounded_threadpool which is not in the op definition: Op<name=MapDataset;"
)
_LEAKY_RELU_FUSION_LINE = re.compile(
    rb"E\d{4} \S+ +\d+ meta_optimizer\.cc:\d+\] remapper failed: INVALID_ARGUMENT: "
    rb"Mutation::Apply error: fanout '[^']*/LeakyRelu/LeakyReluGrad' exist for missing node "
    rb"'[^']*/BiasAdd'\.$"
)


def _harmless(line, has_gpu):
    """Whether `line` (bytes) is one of the messages this module drops."""
    return bool(
        _STARTUP_LINE.match(line)
        or _THREADPOOL_LINE.match(line)
        or _LEAKY_RELU_FUSION_LINE.match(line)
        or (not has_gpu and _CUINIT_LINE.match(line))
    )


# Text without its newline yet that may still become a dropped line (they
# start "E0000 ", "I0000 ", "WARNING: " or "To enable"): held back until its
# line is complete.
_MAYBE_LOG_LINE = re.compile(rb"[EIWT]")


def cli_module():
    """The module run as `python -m kerazoo...`, else None."""
    # Only the interpreter's own options (before a script, -c or -m) count:
    # a user's `python script.py -m kerazoo.zoo` is not a kerazoo CLI.
    args = iter(sys.orig_argv[1:])
    for arg in args:
        if arg.startswith("-m"):
            module = arg[2:] or next(args, "")
            return module if module == "kerazoo" or module.startswith("kerazoo.") else None
        if arg in ("-W", "-X"):  # options whose value is the next argument
            next(args, None)
        elif not arg.startswith("-") or arg.startswith("-c") or arg == "-":
            return None
    return None


def setup():
    """Quiet TensorFlow when a kerazoo module runs as a program."""
    if cli_module() is not None:
        quiet_tensorflow()


def quiet_tensorflow():
    """Keep TensorFlow's start-up lines and its two harmless ERROR
    messages (the module docstring's 2.) off the terminal from now on,
    whenever TensorFlow is imported; everything else it writes passes."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] != "0":
        _filter_stderr()
    # tfds would otherwise probe the GCE metadata server (and log its failure).
    os.environ.setdefault("NO_GCE_CHECK", "true")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # tf.get_logger() is the "tensorflow" logger; setting it by name needs no import.
    for name in ("absl", "tensorflow"):
        logging.getLogger(name).setLevel(logging.ERROR)


def import_tensorflow_quietly():
    """Import TensorFlow and create its devices, printing none of its
    start-up lines but every other line it writes (item 3 of the module
    docstring). A no-op once TensorFlow's devices exist.

    Returns:
        the `tensorflow` module.

    Example:

    ```python
    from kerazoo._cli import import_tensorflow_quietly
    tf = import_tensorflow_quietly()   # nothing on stderr on a CPU-only machine
    ```
    """
    with _stderr_to_tempfile() as sink:
        import tensorflow as tf

        tf.config.list_logical_devices()
        sink.seek(0)
        captured = sink.read()
    kept = _drop_startup_lines(captured, has_gpu=_has_nvidia_device())
    if kept:
        sys.stderr.write(kept.decode(errors="replace"))
        sys.stderr.flush()
    return tf


def _drop_startup_lines(text, has_gpu):
    """`text` (bytes) without the lines `_harmless` matches."""
    return b"".join(line for line in text.splitlines(keepends=True) if not _harmless(line, has_gpu))


@contextlib.contextmanager
def _stderr_to_tempfile():
    """Point fd 2 at a temporary file (yielded) for the block; on an
    exception, replay what it caught first."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield sink
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def exit_with(main):
    """`sys.exit(main())`, quietly when the reader of a pipe stops early
    (`python -m kerazoo.zoo list | head -1`), as a shell tool ends."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # Python's documented recipe: stdout to devnull, or the interpreter's
        # last flush at exit raises again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    sys.exit(code)


def _has_nvidia_device():
    return any(os.path.exists(f"/dev/nvidia{i}") for i in range(8)) or os.path.exists("/dev/dxg")


def _filter_stderr():
    """Send fd 2 through a child process running `_drop_harmless_lines`."""
    read_end, write_end = os.pipe()
    sys.stderr.flush()
    original = os.dup(2)
    child = subprocess.Popen(
        # -I: the child imports nothing but the standard library.
        [sys.executable, "-I", __file__],
        stdin=read_end,
        stdout=original,
        start_new_session=True,
    )
    os.close(read_end)
    os.dup2(write_end, 2)
    os.close(write_end)

    def restore():
        # Closing our last write end lets the child drain the pipe and exit;
        # wait for it so its output precedes the shell's next prompt.
        sys.stderr.flush()
        os.dup2(original, 2)
        os.close(original)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=10)

    atexit.register(restore)


def _drop_harmless_lines(source, sink):
    """Copy fd `source` to fd `sink` until end of file, leaving out the lines
    `_harmless` matches. Text without a newline yet (a progress bar
    redrawn with "\\r") is passed on at once unless it may be a log line."""
    has_gpu = _has_nvidia_device()
    pending = b""
    while chunk := os.read(source, 1 << 16):
        *lines, pending = (pending + chunk).split(b"\n")
        out = b"".join(line + b"\n" for line in lines if not _harmless(line, has_gpu))
        if not _MAYBE_LOG_LINE.match(pending):
            out, pending = out + pending, b""
        _write_all(sink, out)
    _write_all(sink, pending)


def _write_all(fd, data):
    while data:
        data = data[os.write(fd, data) :]


if __name__ == "__main__":
    # The filter process started by `_filter_stderr`.
    try:
        _drop_harmless_lines(0, 1)
    except BrokenPipeError:  # nobody reads our stderr any more
        pass
