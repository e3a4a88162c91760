"""How TensorFlow runs on the CPU a command finds, decided before TensorFlow is imported.

TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once, when it is imported: "1" runs its
oneDNN kernels (convolutions, matrix products, pooling, batch norm) on a CPU, "0" its
Eigen kernels. Left unset, TensorFlow turns oneDNN on only on x86 CPUs with
neural-network instructions (AVX512_VNNI, AVX512_BF16, AVX_VNNI, AMX); on an AVX2
CPU without them it stays off, although there it doubled the float32 matrix product
and made 3D CNN training 2x faster (experiments/RESULTS.md, speed against PyTorch).

The commands (`python -m keras_video.train`, ...) call `configure()` first: oneDNN on
for every x86 CPU with AVX2 and FMA, where it was measured faster; the user's own
setting of the variable wins, and anything else keeps TensorFlow's default. `import
keras_video` changes nothing: a library leaves its host's environment alone.
"""

import os
import platform
import re
import sys

from keras_video import hardware

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
# TensorFlow's own rule for oneDNN on by default (x86 CPUs with these instructions).
TENSORFLOW_ONEDNN_FLAGS = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16",
                           "amx_int8", "amx_tile")
# The CPUs this project measured oneDNN faster on: AVX2 + FMA (AVX-512 ones have both).
ONEDNN_FASTER_FLAGS = ("avx2", "fma")


def onednn_choice(environ=None, flags=None, machine=None):
    """(value for TF_ENABLE_ONEDNN_OPTS or None to leave it, why), for an environment,
    a set of CPU flags and a machine name (this process's by default)."""
    environ = os.environ if environ is None else environ
    flags = hardware.cpu_flags() if flags is None else flags
    machine = (machine or platform.machine()).lower()
    if environ.get(ONEDNN_VARIABLE, "") != "":
        return None, f"{ONEDNN_VARIABLE}={environ[ONEDNN_VARIABLE]} set by you"
    if machine not in ("x86_64", "amd64") or not flags:
        return None, f"TensorFlow's default ({machine} CPU)"
    if flags & set(TENSORFLOW_ONEDNN_FLAGS):
        return None, "TensorFlow's default (a CPU with AVX512_VNNI / BF16 / AMX)"
    if set(ONEDNN_FASTER_FLAGS) <= flags:
        return "1", ("set by keras_video: an AVX2 CPU, where it trains 3D CNNs about 2x "
                     f"faster; {ONEDNN_VARIABLE}=0 turns it off")
    return None, "TensorFlow's default (a CPU without AVX2)"


def configure(environ=None):
    """Sets TF_ENABLE_ONEDNN_OPTS for this CPU (see the module docstring) unless
    TensorFlow is imported already; returns why oneDNN is on or off."""
    if "tensorflow" in sys.modules:
        return "TensorFlow was imported before keras_video could choose"
    environ = os.environ if environ is None else environ
    value, why = onednn_choice(environ)
    if value is not None:
        environ[ONEDNN_VARIABLE] = value
    return why


# TensorFlow 2.2x logs through absl before TF_CPP_MIN_LOG_LEVEL applies: where oneDNN
# is on, every import writes these lines to stderr, twice.
_IMPORT_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written "
    r"to STDERR|I0000 .*\] oneDNN custom operations are on\b.*)$")


def _import_tensorflow_quietly():
    """Imports TensorFlow with its start-up noise dropped from stderr (the file
    descriptor: the lines come from C++); any other line written meanwhile passes on."""
    import tempfile

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
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


def start():
    """A command's start-up, before it imports TensorFlow: chooses oneDNN, imports
    TensorFlow without its C++ start-up lines, and prints once to stderr what runs.
    Returns that line."""
    imported = "tensorflow" in sys.modules
    why = configure()
    if not imported:
        _import_tensorflow_quietly()
    import tensorflow as tf

    state = {True: "on", False: "off", None: "unknown"}[hardware.onednn_enabled()]
    line = f"TensorFlow {tf.__version__}: oneDNN CPU kernels {state} ({why})"
    print(line, file=sys.stderr, flush=True)
    return line
