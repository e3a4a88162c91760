"""Multi-worker training speed: steps/s of 1 and 2 local workers and the overhead per step.

    python experiments/bench_multi_worker.py [--model r3d18] [--width 0.25] [--frames 16]
        [--size 64] [--batch 8] [--steps 20] [--warmup 5] [--rounds 3]

Three set-ups train the same model (keras_video.models.build_model, here the motion
benchmark's r3d18 at width 0.25 on 16 x 64 x 64 clips) on one in-memory batch per
replica (`--batch` clips; the input pipeline is measured elsewhere), each process
pinned to one core with one compute thread, so that two workers on a 2-core machine
each get what the single worker gets:

    A  1 process, the default strategy (no distribution)       global batch = batch
    B  1 process, --strategy=multi_worker without TF_CONFIG     global batch = batch
    C  2 processes, TF_CONFIG on 127.0.0.1, one per core        global batch = 2 x batch

C does twice A's work per step, each worker A's share; the rest of its step time is the
price of being distributed: the all-reduce of the gradients over loopback gRPC and
waiting for the slower worker. (Reading a finite data set, as training does by default,
adds a small cross-worker check for the end of the data to every step; the in-memory
input here repeats forever, so it is not included.)
Overhead per step = median step time of C - median step time of A. The set-ups
alternate round after round (each round starts fresh processes; their start-up and
the first --warmup steps, which trace the step, are not timed). Printed as a markdown
table.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from keras_video.training import distribute  # noqa: E402


def worker(args):
    """One training process: prints its step times (JSON) on the last line."""
    import keras
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    from keras_video.models import build_model

    strategy = distribute.get_strategy(args.strategy)
    global_batch = args.batch * strategy.num_replicas_in_sync
    shape = (args.frames, args.size, args.size, 3)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (global_batch, *shape)).astype(np.float32)
    y = rng.integers(0, 8, global_batch)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    with strategy.scope():
        model = build_model(args.model, num_classes=8, input_shape=shape, width=args.width)
        model.compile(keras.optimizers.SGD(1e-3, momentum=0.9),
                      keras.losses.SparseCategoricalCrossentropy())
    ends = []
    timer = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter()))
    model.fit(data, steps_per_epoch=args.warmup + args.steps, epochs=1, verbose=0,
              callbacks=[timer])
    steps = np.diff(ends[args.warmup - 1:])
    print(json.dumps({"step_seconds": steps.tolist(), "parameters": model.count_params()}))


def run_setup(args, strategy, workers):
    """Starts `workers` pinned processes; returns their (step seconds, parameters)."""
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    tf_configs = distribute.local_tf_configs(workers)
    procs = []
    for index in range(workers):
        if workers > 1:
            env = {**env, "TF_CONFIG": tf_configs[index]}
        command = ["taskset", "-c", str(index % os.cpu_count()), sys.executable,
                   os.path.abspath(__file__), "--worker", f"--strategy={strategy}",
                   *(f"--{k}={v}" for k, v in vars(args).items()
                     if k not in ("worker", "strategy", "rounds"))]
        procs.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    try:
        outputs = [p.communicate(timeout=1200) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outputs):
        if p.returncode:
            sys.exit(f"a worker failed:\n{err[-3000:]}")
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    # A distributed step ends when its slowest worker ends it.
    steps = [max(s) for s in zip(*(r["step_seconds"] for r in results))]
    return steps, results[0]["parameters"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="r3d18")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8, help="clips per replica")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--strategy", default="default", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    setups = {"A: 1 worker, default strategy": ("default", 1),
              "B: 1 worker, multi_worker": ("multi_worker", 1),
              "C: 2 workers, multi_worker": ("multi_worker", 2)}
    medians = {name: [] for name in setups}
    parameters = 0
    for round_index in range(args.rounds):
        for name, (strategy, workers) in setups.items():
            steps, parameters = run_setup(args, strategy, workers)
            medians[name].append(statistics.median(steps))
            print(f"  round {round_index} {name}: median step {medians[name][-1]:.3f} s",
                  file=sys.stderr, flush=True)
    step = {name: statistics.median(m) for name, m in medians.items()}
    base = step["A: 1 worker, default strategy"]
    print(f"# {datetime.date.today()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs")
    print(f"# python experiments/bench_multi_worker.py {shlex.join(sys.argv[1:])}")
    print(f"# {args.model} width {args.width}, {parameters:,} parameters "
          f"({4 * parameters / 2**20:.1f} MiB of float32 gradients to all-reduce), "
          f"{args.batch} clips of {args.frames}x{args.size}x{args.size} per replica, "
          f"{args.steps} timed steps x {args.rounds} rounds, 1 core and 1 thread each")
    print("| set-up | global batch | steps/s | clips/s | median step (s) | "
          "overhead per step vs A (s) | step medians of the rounds (s) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, (_, workers) in setups.items():
        clips = args.batch * workers
        print(f"| {name} | {clips} | {1 / step[name]:.3f} | {clips / step[name]:.2f} | "
              f"{step[name]:.3f} | {step[name] - base:+.3f} | "
              f"{', '.join(f'{m:.3f}' for m in medians[name])} |")


if __name__ == "__main__":
    main()
