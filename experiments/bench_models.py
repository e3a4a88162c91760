"""Training and inference speed of our Keras 3D CNNs against the PyTorch references.

    python experiments/bench_models.py [--models c3d,r3d18,r3d50] [--batch 8]
        [--frames 16] [--size 112] [--steps 3] [--rounds 3] [--jit_compile]

For each model: the Keras model (keras_video.models.build_model) and the PyTorch
reference definition of the same architecture (tests/torch_reference_3d.py, the
definitions our parity tests prove equal to ours to 1e-4) are timed on the same random
batch, alternately (keras train, torch train, keras infer, torch infer, repeated
--rounds times after one warm-up round) so that load from other processes hits both
alike. A training step is forward + cross-entropy + backward + SGD (momentum 0.9); an
inference step is a forward pass in inference mode. Both frameworks use every core.

Printed as a markdown table: clips/s (medians), the ratio Keras / PyTorch, and the
achieved GFLOP/s (forward FLOPs per clip from keras_video.models.flops, x3 for a training
step) against the GFLOP/s of a large float32 matrix product on the same machine.
"""

import argparse
import datetime
import os
import shlex
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))
from keras_video import runtime  # noqa: E402

RUNTIME = runtime.start()  # TensorFlow's CPU kernels as the commands choose them

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

import torch_reference_3d as ref  # noqa: E402
from keras_video import hardware  # noqa: E402
from keras_video.models import flops
from keras_video.models import build_model  # noqa: E402

NUM_CLASSES = 101


def torch_model(name, keras_model):
    if name == "c3d":  # fc6's input is 8192 at 112x112, less on smaller frames
        return ref.C3D(NUM_CLASSES, flat_features=keras_model.get_layer("fc6").kernel.shape[0])
    depth = int(name.removeprefix("r2plus1d").removeprefix("r3d"))
    return ref.ResNet(depth, factorised=name.startswith("r2plus1d"), n_classes=NUM_CLASSES)


def keras_steps(name, x, y, jit_compile):
    model = build_model(name, num_classes=NUM_CLASSES, input_shape=x.shape[1:],
                        classifier_activation=None)
    model.compile(keras.optimizers.SGD(1e-3, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit_compile)
    x, y = tf.constant(x), tf.constant(y)
    return (model, lambda: model.train_on_batch(x, y),
            lambda: model.predict_on_batch(x))


def torch_steps(name, keras_model, x, y):
    model = torch_model(name, keras_model)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 4, 1, 2, 3)))
    yt = torch.from_numpy(y)

    def train():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(xt), yt).backward()
        optimizer.step()

    def infer():
        model.eval()
        with torch.inference_mode():
            model(xt)

    return train, infer


def timed(fn, steps):
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def matmul_gflops(n=4096, repeats=5):
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    tf.linalg.matmul(a, b).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        tf.linalg.matmul(a, b).numpy()
    tf_rate = 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9
    ta, tb = torch.randn(n, n), torch.randn(n, n)
    ta @ tb
    start = time.perf_counter()
    for _ in range(repeats):
        ta @ tb
    return tf_rate, 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


def argument_parser(doc, models, steps):
    """The flags of this benchmark, shared with experiments/bench_precision_xla.py."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--models", default=models)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--rounds", type=int, default=3)
    return parser


def random_batch(args):
    """(clips, labels): the one random batch every timed step reads."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (args.batch, args.frames, args.size, args.size, 3))
    return x.astype(np.float32), rng.integers(0, NUM_CLASSES, args.batch)


def main():
    parser = argument_parser(__doc__, "c3d,r3d18,r3d50", steps=3)
    parser.add_argument("--jit_compile", action="store_true")
    args = parser.parse_args()

    x, y = random_batch(args)
    tf_peak, torch_peak = matmul_gflops()
    print(f"# {datetime.date.today()} {hardware.cpu_model()} ({hardware.cpu_class()}), "
          f"{os.cpu_count()} CPUs, TF {tf.__version__}, Keras {keras.__version__}, "
          f"torch {torch.__version__} (threads {torch.get_num_threads()})")
    print(f"# python experiments/bench_models.py {shlex.join(sys.argv[1:])}")
    print(f"# {RUNTIME}")
    print(f"# 4096^2 float32 matmul: TF {tf_peak:.0f} GFLOP/s, torch {torch_peak:.0f} "
          "GFLOP/s")
    print("| model | GFLOPs/clip | Keras train clips/s | PyTorch train clips/s | "
          "train Keras/PyTorch | Keras infer clips/s | PyTorch infer clips/s | "
          "infer Keras/PyTorch | Keras train GFLOP/s (% of matmul) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.models.split(","):
        model, k_train, k_infer = keras_steps(name, x, y, args.jit_compile)
        gflops = flops.gflops_per_example(model)
        t_train, t_infer = torch_steps(name, model, x, y)
        times = {k: [] for k in ("kt", "tt", "ki", "ti")}
        for round_index in range(args.rounds + 1):
            steps = 1 if round_index == 0 else args.steps  # round 0 warms up
            measured = {"kt": timed(k_train, steps), "tt": timed(t_train, steps),
                        "ki": timed(k_infer, steps), "ti": timed(t_infer, steps)}
            if round_index:
                for k, v in measured.items():
                    times[k].append(v)
            print(f"  {name} round {round_index}: " + ", ".join(
                f"{k} {v:.2f}s" for k, v in measured.items()), file=sys.stderr, flush=True)
        rate = {k: args.batch / statistics.median(v) for k, v in times.items()}
        achieved = rate["kt"] * gflops * 3
        print(f"| {name} | {gflops:.1f} | {rate['kt']:.2f} | {rate['tt']:.2f} | "
              f"**{rate['kt'] / rate['tt']:.2f}** | {rate['ki']:.2f} | {rate['ti']:.2f} | "
              f"{rate['ki'] / rate['ti']:.2f} | {achieved:.0f} "
              f"({100 * achieved / tf_peak:.0f}%) |", flush=True)
        del model, k_train, k_infer, t_train, t_infer
        keras.backend.clear_session()


if __name__ == "__main__":
    main()
