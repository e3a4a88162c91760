"""Where the default run's training step goes: the per-frame CNN, the LSTM, the input.

    python experiments/oscillation/profile_step.py [--steps 5] [--rounds 3]

The default run (`python -m keras_video.train --model=cnn_lstm`, the experiment
oscillation_cnn_lstm) trains a small CNN on every frame of 30-frame 64 x 64 gray clips
and an LSTM on the per-frame features, 32 clips a step. This script times, on one
batch of those clips and alternately in one process (medians of --rounds rounds of
--steps steps after a warm-up round), a whole training step (Adam, RMSE) and its
parts trained alone: the frame encoder on the batch's 960 frames, and the temporal
head (LSTM 100 x 2) on their features. It also times the input pipeline of the run
(decode of MJPG videos into the memory cache, then cached epochs) in batches/s.

Which TensorFlow kernels run is the process's: compare runs with
TF_ENABLE_ONEDNN_OPTS=0 and =1 (keras_video.runtime prints what runs).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from keras_video import runtime  # noqa: E402

runtime.start()  # TensorFlow's CPU kernels as the commands choose them

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_video.training import configs  # noqa: E402
from keras_video.data import generate, sources  # noqa: E402
from keras_video.data.pipeline import make_dataset  # noqa: E402
from keras_video.losses import RootMeanSquaredError  # noqa: E402
from keras_video.models import build_model  # noqa: E402



def timed(fn, steps):
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def trainer(model, x, y, loss):
    model.compile(keras.optimizers.Adam(1e-3), loss)
    x, y = tf.constant(x), tf.constant(y)
    return lambda: model.train_on_batch(x, y)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clips", type=int, default=320, help="clips of the input test")
    args = parser.parse_args()

    config = configs.make_config("oscillation_cnn_lstm")
    clip = config.data.clip_spec()
    batch = config.optimization.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        folder = generate.write_oscillation(os.path.join(tmp, "train"), args.clips, seed=0,
                                            fmt="video", progress=False)
        samples = sources.from_spec(folder)
        ds = make_dataset(samples, clip, batch, training=True, seed=0, cache="memory")
        rates = []
        for epoch in range(3):  # epoch 0 decodes into the cache
            start = time.perf_counter()
            count = sum(1 for _ in ds)
            rates.append(count / (time.perf_counter() - start))
        x, y = next(iter(ds))
        x, y = x.numpy(), y.numpy()
    print(f"input pipeline: {rates[0]:.1f} batches/s decoding, "
          f"{statistics.median(rates[1:]):.1f} batches/s from the memory cache "
          f"(batch {batch} of {clip.shape})")

    model = build_model("cnn_lstm", **config.model_config())
    encoder = model.get_layer("frame_features").layer
    head = model.get_layer("temporal_head")
    frames = x.reshape(-1, *x.shape[2:]).astype(np.float32)
    features = np.asarray(encoder.predict(frames, batch_size=256, verbose=0))
    parts = {
        "whole step": trainer(model, x.astype(np.float32), y.astype(np.float32),
                              RootMeanSquaredError()),
        "frame encoder on B*T frames": trainer(
            keras.models.clone_model(encoder), frames,
            np.zeros_like(features), "mse"),
        "temporal head (LSTM)": trainer(
            keras.models.clone_model(head), features.reshape(batch, clip.num_frames, -1),
            y.astype(np.float32), "mse"),
    }
    times = {name: [] for name in parts}
    for round_index in range(args.rounds + 1):
        for name, fn in parts.items():
            seconds = timed(fn, 1 if round_index == 0 else args.steps)
            if round_index:
                times[name].append(seconds)
    print("| part | ms / step |\n|---|---:|")
    for name, values in times.items():
        print(f"| {name} | {1000 * statistics.median(values):.0f} |")


if __name__ == "__main__":
    main()
