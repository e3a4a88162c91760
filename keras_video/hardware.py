"""What the CPU computes fast: its instruction-set flags, where the OS tells them.

Some choices of this project depend on them (measured in experiments/RESULTS.md):
bfloat16 compute is fast only with AMX or AVX512-BF16 (emulated, it made a training step
9-20x slower), and TensorFlow's CPU gradient kernels for strided 3D convolutions were
slow on an AVX2 CPU but fast on one with AVX-512 (keras_video.layers.Conv3D).
"""

import functools


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
