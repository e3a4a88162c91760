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
import tensorflow as tf  # noqa: E402

from keras_video import train  # noqa: E402

VARIANTS = [(False, False), (False, True), (True, False), (True, True)]  # (mixed, xla)


def training_step(name, x, y, mixed_precision, jit_compile):
    if mixed_precision:
        train.set_mixed_precision()
    try:
        _, step, _ = bench_models.keras_steps(name, x, y, jit_compile)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return step


def main():
    args = bench_models.argument_parser(__doc__, "c3d,r3d18", steps=2).parse_args()
    x, y = bench_models.random_batch(args)
    print(f"# {datetime.date.today()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, GPUs {len(tf.config.list_physical_devices('GPU'))}, "
          f"TF {tf.__version__}, Keras {keras.__version__}")
    print(f"# python experiments/bench_precision_xla.py {shlex.join(sys.argv[1:])}")
    print("| model | mixed precision | XLA | train clips/s | vs float32, no XLA | "
          "step seconds (rounds) |")
    print("|---|---|---|---:|---:|---|")
    for name in args.models.split(","):
        steps = {v: training_step(name, x, y, *v) for v in VARIANTS}
        times = {v: [] for v in VARIANTS}
        for round_index in range(args.rounds + 1):
            count = 1 if round_index == 0 else args.steps  # round 0 warms up
            for variant, step in steps.items():
                seconds = bench_models.timed(step, count)
                if round_index:
                    times[variant].append(seconds)
                print(f"  {name} round {round_index} mixed={variant[0]} xla={variant[1]}: "
                      f"{seconds:.2f} s/step", file=sys.stderr, flush=True)
        rate = {v: args.batch / statistics.median(t) for v, t in times.items()}
        for variant in VARIANTS:
            print(f"| {name} | {'on' if variant[0] else 'off'} | "
                  f"{'on' if variant[1] else 'off'} | {rate[variant]:.2f} | "
                  f"{rate[variant] / rate[(False, False)]:.2f} | "
                  f"{', '.join(f'{t:.2f}' for t in times[variant])} |", flush=True)
        del steps
        keras.backend.clear_session()


if __name__ == "__main__":
    main()
