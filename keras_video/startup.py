"""Quiet TensorFlow start-up, run by `import keras_video` before anything imports
TensorFlow, so that a command's output and its one-line errors (keras_video.cli) are
not buried under C++ start-up logs."""

import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

# TensorFlow 2.2x logs through absl before TF_CPP_MIN_LOG_LEVEL applies: on CPUs where
# oneDNN is on (e.g. AVX-512), every import writes these lines to stderr, twice.
_IMPORT_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written "
    r"to STDERR|I0000 .*\] oneDNN custom operations are on\b.*)$")


def import_tensorflow_quietly():
    """Imports TensorFlow with its start-up noise dropped from stderr (the file
    descriptor: the lines come from C++); any other line written meanwhile passes on."""
    if "tensorflow" in sys.modules:
        return
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if not _IMPORT_NOISE.match(line):
                    print(line, file=sys.stderr)
