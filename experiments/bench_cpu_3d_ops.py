"""How much keras_video.layers.Conv3D / MaxPooling3D / BatchNormalization speed up 3D CNN
training on a CPU.

    python experiments/bench_cpu_3d_ops.py [--rounds 3] [--steps 3]

Two tables, each measured by alternating the two variants in one process (medians of
--rounds rounds after a warm-up round), so machine noise hits both alike:

1. Layers: forward + gradients (with respect to the input and the weights) of one layer
   at the shapes it has in the motion-benchmark models (batch 16, 16 x 48 x 48 clips,
   width 0.25), the Keras layer (TensorFlow's kernels) against keras_video's CPU route,
   taken here or not: the stride-1 gradient detour of strided 3D convs (ResNet3D stage
   transitions, R(2+1)D's spatial and temporal convs, the RGB stem, which keeps
   TensorFlow's own gradient), 3D max-pools as 2D max-pools (ResNet3D's, C3D's) and
   BatchNorms (the fused kernel against Keras's element-wise ops). The last column says
   whether keras_video.hardware takes the route on this machine: a route should be
   taken exactly where its speed-up is above 1.
2. Models: seconds per training step (Adam, batch 16, 16 x 48 x 48, width 0.25, 8
   classes) of r3d18, r2plus1d18, c3d and c3d with BatchNorm built with the Keras
   layers against the same models built with ours (the registry's), with the routes
   this machine takes.

Run it with TF_ENABLE_ONEDNN_OPTS=0 and =1 to see both kinds of TensorFlow CPU kernels.
"""

import argparse
import contextlib
import datetime
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
from keras_video import runtime  # noqa: E402

RUNTIME = runtime.start()  # TensorFlow's CPU kernels as the commands choose them

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_video import hardware  # noqa: E402
from keras_video import layers as kv_layers  # noqa: E402
from keras_video.layers import conv3d as conv3d_module  # noqa: E402
from keras_video.models import build_model, c3d, resnet3d  # noqa: E402

# (label, layer kind, input shape, layer arguments)
LAYER_CASES = [
    ("r3d conv1 stem (3x7x7, stride 1,2,2, 3 ch)", "conv", (16, 18, 54, 54, 3),
     dict(filters=16, kernel_size=(3, 7, 7), strides=(1, 2, 2))),
    ("r3d layer2_0_conv1 (3x3x3, stride 2, 16 ch)", "conv", (16, 10, 14, 14, 16),
     dict(filters=32, kernel_size=3, strides=2)),
    ("r3d layer3_0_conv1 (3x3x3, stride 2, 32 ch)", "conv", (16, 6, 8, 8, 32),
     dict(filters=64, kernel_size=3, strides=2)),
    ("r3d layer2_0_downsample (1x1x1, stride 2)", "conv", (16, 8, 12, 12, 16),
     dict(filters=32, kernel_size=1, strides=2)),
    ("r2plus1d layer2_0_conv1_s (1x3x3, stride 1,2,2)", "conv", (16, 8, 14, 14, 16),
     dict(filters=28, kernel_size=(1, 3, 3), strides=(1, 2, 2))),
    ("r2plus1d layer2_0_conv1_t (3x1x1, stride 2,1,1)", "conv", (16, 10, 6, 6, 28),
     dict(filters=32, kernel_size=(3, 1, 1), strides=(2, 1, 1))),
    ("r3d maxpool (3, stride 2)", "pool", (16, 18, 26, 26, 16),
     dict(pool_size=3, strides=2)),
    ("c3d pool1 (1x2x2)", "pool", (16, 16, 48, 48, 16), dict(pool_size=(1, 2, 2))),
    ("c3d pool2 (2x2x2)", "pool", (16, 16, 24, 24, 32), dict(pool_size=2)),
    ("r3d bn1 (after the stem)", "bn", (16, 16, 24, 24, 16), dict(epsilon=1e-5)),
    ("c3d bn1 (batch_norm=True)", "bn", (16, 16, 48, 48, 16), dict(epsilon=1e-5)),
    ("r3d layer3 BatchNorm", "bn", (16, 4, 6, 6, 64), dict(epsilon=1e-5)),
]
LAYERS = {"conv": (keras.layers.Conv3D, kv_layers.Conv3D),
          "pool": (keras.layers.MaxPooling3D, kv_layers.MaxPooling3D),
          "bn": (keras.layers.BatchNormalization, kv_layers.BatchNormalization)}
# model label -> build_model name and options
MODELS = {"r3d18": ("r3d18", {}), "r2plus1d18": ("r2plus1d18", {}), "c3d": ("c3d", {}),
          "c3d, batch_norm": ("c3d", dict(batch_norm=True))}


def layer_step(layer_class, shape, kwargs):
    """A tf.function running forward + gradients of one fresh layer; and its input."""
    layer = layer_class(**kwargs)
    x = tf.random.stateless_normal(shape, seed=[0, 1])
    layer.build(shape)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)  # BatchNorm: batch statistics
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [x] + layer.trainable_weights)

    return lambda: step(x)


@contextlib.contextmanager
def cpu_routes_forced():
    """keras_video's Conv3D / MaxPooling3D take their CPU routes whatever the machine."""
    saved = conv3d_module.use_stride1_gradient, conv3d_module.use_2d_max_pools
    conv3d_module.use_stride1_gradient = conv3d_module.use_2d_max_pools = lambda: True
    try:
        yield
    finally:
        conv3d_module.use_stride1_gradient, conv3d_module.use_2d_max_pools = saved


TAKEN = {"conv": lambda: hardware.conv3d_stride1_gradient()[0],
         "pool": lambda: hardware.max_pool3d_as_2d()[0], "bn": lambda: True}


@contextlib.contextmanager
def keras_layers():
    """Builds the models with keras.layers.Conv3D / MaxPooling3D in place of ours."""
    replaced = [(module, name) for module in (resnet3d, c3d)
                for name in ("Conv3D", "MaxPooling3D", "BatchNormalization")
                if hasattr(module, name)]
    saved = [getattr(module, name) for module, name in replaced]
    for module, name in replaced:
        setattr(module, name, getattr(keras.layers, name))
    try:
        yield
    finally:
        for (module, name), value in zip(replaced, saved):
            setattr(module, name, value)


def model_step(name, steps, **options):
    config = dict(num_classes=8, input_shape=(16, 48, 48, 3), width=0.25, **options)
    if name != "c3d":
        config["conv1_t_size"] = 3  # as the motion benchmark's ResNets
    model = build_model(name, **config)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (16, 16, 48, 48, 3), dtype=np.uint8)
    y = rng.integers(0, 8, 16)

    def run():
        for _ in range(steps):
            model.train_on_batch(x, y)

    return run


def timed(fn, repeat=1):
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def alternate(variants, rounds, repeat=1):
    """{name: median seconds} of the callables in `variants`, alternated."""
    for fn in variants.values():
        fn()  # warm-up: tracing and the first run
    times = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            times[name].append(timed(fn, repeat))
    return {name: statistics.median(t) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="training steps a round")
    parser.add_argument("--repeat", type=int, default=5, help="layer runs a round")
    args = parser.parse_args()
    print(f"# {' '.join(sys.argv)}\n{datetime.date.today()}, {hardware.cpu_model()}, "
          f"{os.cpu_count()} CPUs, TensorFlow {tf.__version__}, Keras {keras.__version__}, "
          f"GPU visible: {bool(tf.config.list_logical_devices('GPU'))}\n# {RUNTIME}\n")

    print("| layer | input | Keras ms | keras_video route ms | speed-up | taken here |\n"
          "|---|---|---:|---:|---:|---|")
    for label, kind, shape, kwargs in LAYER_CASES:
        keras_class, ours = LAYERS[kind]
        with cpu_routes_forced():  # traced (on the warm-up call) with the route
            t = alternate({"keras": layer_step(keras_class, shape, kwargs),
                           "ours": layer_step(ours, shape, kwargs)}, args.rounds,
                          args.repeat)
        taken = "yes" if TAKEN[kind]() else "no"
        if (kind == "conv" and kwargs["kernel_size"] != 1
                and shape[-1] < conv3d_module.MIN_DETOUR_CHANNELS):
            taken = "no (RGB stem)"
        print(f"| {label} | {'x'.join(map(str, shape))} | {1000 * t['keras']:.1f} | "
              f"{1000 * t['ours']:.1f} | {t['keras'] / t['ours']:.2f}x | {taken} |",
              flush=True)

    print("\n| model (width 0.25, batch 16, 16x48x48) | Keras layers s/step | ours s/step "
          "| speed-up |\n|---|---:|---:|---:|")
    for label, (name, options) in MODELS.items():
        with keras_layers():
            before = model_step(name, args.steps, **options)
        after = model_step(name, args.steps, **options)
        t = alternate({"keras": before, "ours": after}, args.rounds)
        print(f"| {label} | {t['keras'] / args.steps:.3f} | {t['ours'] / args.steps:.3f} | "
              f"{t['keras'] / t['ours']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
