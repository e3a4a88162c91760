"""What the machine computes fast, and which route each CPU-sensitive layer takes on it.

The one place that decides (every figure: experiments/RESULTS.md, "CPU routes"):

  Conv3D, strided     the stride-1 gradient detour only on a CPU whose TensorFlow runs
                      without oneDNN: there TensorFlow's Eigen gradient kernels of a
                      strided 3D conv were 2-10x slower than the detour; oneDNN's own
                      were 2-3x faster than it (AVX2 EPYC, AVX-512/AMX Xeon); cuDNN's
                      too (the detour cost up to 8x on a GPU).
  MaxPooling3D        two 2D max-pools only where oneDNN is off (4-7x faster than
                      Eigen's MaxPool3D there; with oneDNN 0.8-1.15x, so not taken).
  BatchNormalization  TensorFlow's fused kernel everywhere: 1.7-3.6x Keras's
                      element-wise ops on every CPU measured, with or without oneDNN.
  Conv3D, bfloat16    a bfloat16 conv on a CPU with fewer than MIN_BFLOAT16_POSITIONS
                      input positions computes in float32: TensorFlow's bfloat16 kernel
                      gradient was wrong there (keras_video.layers.conv3d).
  mixed precision     bfloat16 is fast only with AMX or AVX512-BF16 (emulated, a
                      training step was 9-20x slower).

`python -m keras_video.hardware` prints the CPU, TensorFlow's oneDNN state and every
route with its reason.
"""

import functools
import platform

MIN_BFLOAT16_POSITIONS = 144  # 4 x 6 x 6: the smallest input the bf16 gradient was right at


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The CPU's feature flags (Linux /proc/cpuinfo), or None where they cannot be read."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def cpu_model(cpuinfo="/proc/cpuinfo"):
    """The CPU's model name (Linux /proc/cpuinfo), else platform.processor()."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=None)
def _this_cpu():
    return cpu_flags()


def cpu_has_any(*names, cpuinfo=None):
    """Whether the CPU has any of the flags `names`; None where the flags are unknown."""
    flags = _this_cpu() if cpuinfo is None else cpu_flags(cpuinfo)
    return None if flags is None else bool(flags & set(names))


def cpu_has_bfloat16(cpuinfo=None):
    """bfloat16 in hardware: AMX or AVX512-BF16."""
    return cpu_has_any("amx_bf16", "avx512_bf16", cpuinfo=cpuinfo)


def cpu_class(flags=None):
    """'AMX', 'AVX-512', 'AVX2' or 'other': the classes RESULTS.md has speed tables for."""
    flags = _this_cpu() if flags is None else flags
    if not flags:
        return "other"
    if flags & {"amx_tile", "amx_bf16"}:
        return "AMX"
    if "avx512f" in flags:
        return "AVX-512"
    return "AVX2" if "avx2" in flags else "other"


@functools.lru_cache(maxsize=None)
def onednn_enabled():
    """Whether the imported TensorFlow runs its oneDNN CPU kernels (None: unknown). It is
    fixed when TensorFlow is imported (TF_ENABLE_ONEDNN_OPTS, keras_video.runtime)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def on_gpu():
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


def conv3d_stride1_gradient():
    """(take the stride-1 gradient detour for strided Conv3Ds, why)."""
    if on_gpu():
        return False, "a GPU: cuDNN's strided gradients are fast"
    if onednn_enabled() is not False:
        return False, "oneDNN's strided 3D conv gradients are 2-3x faster than the detour"
    return True, "TensorFlow without oneDNN: its strided 3D conv gradients are 2-10x slower"


def max_pool3d_as_2d():
    """(compute MaxPooling3D as two 2D max-pools, why)."""
    if on_gpu():
        return False, "a GPU: cuDNN's 3D max-pool"
    if onednn_enabled() is not False:
        return False, "oneDNN's 3D max-pool is as fast (0.8-1.15x the 2D route)"
    return True, "TensorFlow without oneDNN: its MaxPool3D and gradient are 4-7x slower"


def bfloat16_small_conv3d_in_float32():
    """(compute small bfloat16 Conv3Ds in float32, why)."""
    if on_gpu():
        return False, "a GPU"
    return True, (f"TensorFlow's bfloat16 3D conv kernel gradient was wrong for inputs "
                  f"under {MIN_BFLOAT16_POSITIONS} positions on a CPU")


def routes():
    """[(layer, route, why)] of the layers above on this machine (TensorFlow imported)."""
    detour, detour_why = conv3d_stride1_gradient()
    pool2d, pool_why = max_pool3d_as_2d()
    small, small_why = bfloat16_small_conv3d_in_float32()
    return [
        ("Conv3D, strided", "stride-1 gradient detour" if detour else "TensorFlow's kernels",
         detour_why),
        ("MaxPooling3D", "2D max-pools" if pool2d else "TensorFlow's MaxPool3D", pool_why),
        ("BatchNormalization", "fused kernel (FusedBatchNormV3)",
         "1.7-3.6x Keras's element-wise ops on every CPU measured"),
        ("Conv3D, bfloat16, small", "float32" if small else "bfloat16", small_why),
        ("mixed precision", "fast" if cpu_has_bfloat16() or on_gpu() else "emulated: slow",
         "bfloat16 hardware (AMX, AVX512-BF16)" if cpu_has_bfloat16() else
         ("a GPU" if on_gpu() else "no bfloat16 instructions: 9-20x slower a step")),
    ]


def describe():
    """Lines naming the CPU, TensorFlow's oneDNN state and every route."""
    state = {True: "on", False: "off", None: "unknown"}[onednn_enabled()]
    lines = [f"CPU: {cpu_model()} ({cpu_class()} class), oneDNN {state}"]
    lines += [f"{layer}: {route} ({why})" for layer, route, why in routes()]
    return lines


if __name__ == "__main__":
    from keras_video import runtime

    runtime.start()
    print("\n".join(describe()))
