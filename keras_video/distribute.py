"""Choosing a tf.distribute strategy by name."""

import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored")


def get_strategy(name="auto"):
    """auto: MirroredStrategy over all visible GPUs, the default strategy on a CPU.
    mirrored: all GPUs, or, with none, all logical CPU devices (as tests configure).
    """
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if name == "auto":
        return tf.distribute.MirroredStrategy(gpus) if gpus else tf.distribute.get_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    raise ValueError(f"strategy must be one of {STRATEGIES}, not {name!r}")
