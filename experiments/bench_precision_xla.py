"""Training speed of the 3D CNNs with mixed precision and XLA each on and off.

    python experiments/bench_precision_xla.py [--models c3d,r3d18] [--batch 8]
        [--frames 16] [--size 112] [--steps 2] [--rounds 3]

For each model, four Keras models are built and compiled as experiments/bench_models.py
builds them (its `keras_steps`: full width, 101 classes, SGD momentum, cross-entropy;
the same random batch): float32 or `--mixed_precision` (keras_video.train's
set_mixed_precision: bfloat16 compute on a CPU, float16 on a GPU), each with
`jit_compile` False or True (XLA). Their training steps are timed alternately, one
round after another (after a warm-up round that also pays XLA's compilation), so that
load from other processes hits all four alike. Printed as a markdown table: training
clips/s (median over rounds) and the ratio to float32 without XLA.

`--experiments motion_c3d,motion_cnn_lstm` times a recipe's own model instead, at its
sizes: `keras_video.training.configs.make_config(name)` gives the model (width, BatchNorm,
readout, ...), the clip shape, the batch size, the optimizer and the loss that
`python -m keras_video.train --experiment=name` trains with (8 classes, the motion
benchmark's). `--models` is then ignored; `--batch`, `--frames`, `--size` too.
"""

import datetime
import os
import platform
import shlex
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_models  # noqa: E402  (puts the repository on sys.path)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_video import optimizers  # noqa: E402
from keras_video.training import configs
from keras_video.training import trainer  # noqa: E402
from keras_video.models import build_model  # noqa: E402

VARIANTS = [(False, False), (False, True), (True, False), (True, True)]  # (mixed, xla)


RECIPE_CLASSES = 8  # synthetic:motion


def recipe_step(experiment, jit_compile):
    """The training step of an experiment's model, optimizer and loss, on one random
    batch of its batch size and clip shape."""
    config = configs.make_config(experiment)
    model = build_model(config.model.name, **config.model_config(RECIPE_CLASSES))
    model.compile(optimizers.make_optimizer(config.optimization,
                                            config.optimization.steps_per_epoch or 100),
                  keras.losses.SparseCategoricalCrossentropy(), jit_compile=jit_compile)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(0, 255, (config.optimization.batch_size,
                                         *config.data.clip_spec().shape)),
                    tf.float32)
    y = tf.constant(rng.integers(0, RECIPE_CLASSES, config.optimization.batch_size))
    return lambda: model.train_on_batch(x, y)


def training_step(name, batch, mixed_precision, jit_compile, recipe):
    if mixed_precision:
        trainer.set_mixed_precision()
    try:
        if recipe:
            return recipe_step(name, jit_compile)
        return bench_models.keras_steps(name, *batch, jit_compile)[1]
    finally:
        keras.mixed_precision.set_global_policy("float32")


def main():
    parser = bench_models.argument_parser(__doc__, "c3d,r3d18", steps=2)
    parser.add_argument("--experiments", default="",
                        help="time these recipes' models at their own sizes instead")
    args = parser.parse_args()
    batch = bench_models.random_batch(args)
    print(f"# {datetime.date.today()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, GPUs {len(tf.config.list_physical_devices('GPU'))}, "
          f"TF {tf.__version__}, Keras {keras.__version__}")
    print(f"# python experiments/bench_precision_xla.py {shlex.join(sys.argv[1:])}")
    print("| model | mixed precision | XLA | train clips/s | vs float32, no XLA | "
          "step seconds (rounds) |")
    print("|---|---|---|---:|---:|---|")
    names = (args.experiments or args.models).split(",")
    for name in names:
        steps = {v: training_step(name, batch, *v, recipe=bool(args.experiments))
                 for v in VARIANTS}
        clips = (configs.make_config(name).optimization.batch_size if args.experiments
                 else args.batch)
        times = {v: [] for v in VARIANTS}
        for round_index in range(args.rounds + 1):
            count = 1 if round_index == 0 else args.steps  # round 0 warms up
            for variant, step in steps.items():
                seconds = bench_models.timed(step, count)
                if round_index:
                    times[variant].append(seconds)
                print(f"  {name} round {round_index} mixed={variant[0]} xla={variant[1]}: "
                      f"{seconds:.2f} s/step", file=sys.stderr, flush=True)
        rate = {v: clips / statistics.median(t) for v, t in times.items()}
        for variant in VARIANTS:
            print(f"| {name} | {'on' if variant[0] else 'off'} | "
                  f"{'on' if variant[1] else 'off'} | {rate[variant]:.2f} | "
                  f"{rate[variant] / rate[(False, False)]:.2f} | "
                  f"{', '.join(f'{t:.2f}' for t in times[variant])} |", flush=True)
        del steps
        keras.backend.clear_session()


if __name__ == "__main__":
    main()
