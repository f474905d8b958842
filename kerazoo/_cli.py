"""Start-up hygiene for kerazoo's command-line entry points.

TensorFlow prints its start-up lines (oneDNN, missing CUDA drivers, cuInit)
straight to file descriptor 2 before its logging is initialised, so
`TF_CPP_MIN_LOG_LEVEL` cannot hide them. For `python -m kerazoo...` only, we
import TensorFlow with fd 2 pointed at a temporary file and replay that file
if the import fails. A user's own program that imports kerazoo keeps
TensorFlow's output untouched.
"""

import contextlib
import logging
import os
import sys
import tempfile
import warnings


def launched_as_cli():
    """True when the interpreter was started as `python -m kerazoo...`."""
    argv = getattr(sys, "orig_argv", sys.argv)
    for flag, module in zip(argv, argv[1:]):
        if flag == "-m":
            return module == "kerazoo" or module.startswith("kerazoo.")
    return False


@contextlib.contextmanager
def _stderr_to_tempfile():
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


def quiet_tensorflow():
    """Import TensorFlow and create its devices without start-up noise."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # tfds would otherwise probe the GCE metadata server (and log its failure).
    os.environ.setdefault("NO_GCE_CHECK", "true")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    with _stderr_to_tempfile():
        import tensorflow as tf

        tf.config.list_logical_devices()
    logging.getLogger("absl").setLevel(logging.ERROR)
    tf.get_logger().setLevel(logging.ERROR)
