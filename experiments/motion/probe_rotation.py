"""Which per-frame encoder lets a CNN-LSTM learn the sense of a rotation, quickly?

    python experiments/motion/probe_rotation.py [--encoders small,vgg,keypoints]
        [--steps 800] [--num_train 3000]

The motion benchmark's CNN-LSTM tells translations, growth and shrinking apart but
not rotate_cw from rotate_ccw (experiments/LOG.md, 2026-12-02). This trains
each candidate encoder (all with frame differences, into one LSTM) on the two rotation
classes alone, clips rendered in memory by keras_video.data.motion (64 x 64, 32
frames, a random 16-frame crop, INTER_AREA to 48 x 48, as the benchmark reads them;
no JPEG), and prints training and validation accuracy every 100 steps: a probe of
which encoder leaves chance at all, not a benchmark.

  small      the encoder of motion runs 5 and 8: 4 x (conv3x3-BN-ReLU, max-pool 2),
             flattened 3 x 3 x 32
  vgg        2 convs per stage before each pool, 16-32-64-64 channels, flattened
  keypoints  backbone small_hires (2 convs at full and 2 at half resolution) and
             readout "keypoints" (keras_video.layers.SpatialSoftArgmax): the (x, y)
             of 32 learnt keypoints per frame next to the globally max-pooled map
"""

import argparse
import os
import sys
import time

import cv2
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

import keras  # noqa: E402

from keras_video.data import motion  # noqa: E402
from keras_video.layers import FrameDifference, ImageNormalization  # noqa: E402
from keras_video.models import build_model  # noqa: E402
from keras_video.models.backbones import small_cnn  # noqa: E402

ENCODERS = {"small": dict(backbone="small"),
            "keypoints": dict(backbone="small_hires", readout="keypoints", keypoints=32)}
ROTATIONS = (motion.CLASSES.index("rotate_cw"), motion.CLASSES.index("rotate_ccw"))


def rotation_clips(num, seed, frames=16, size=48):
    """(clips uint8 [N, frames, size, size, 3], labels 0 = cw / 1 = ccw)."""
    spec = motion.MotionSpec()
    rng = np.random.default_rng(seed)
    labels = rng.integers(2, size=num)
    clips = np.empty((num, frames, size, size, 3), np.uint8)
    for i, label in enumerate(labels):
        video, _, _ = motion.render_clip(motion.sample_params(ROTATIONS[label], rng, spec))
        start = rng.integers(len(video) - frames + 1)
        for t in range(frames):
            clips[i, t] = cv2.resize(video[start + t], (size, size),
                                     interpolation=cv2.INTER_AREA)
    return clips, labels


def model(kind, clip_shape, lstm_units=64):
    """The CNN-LSTM of the motion benchmark (frame differences, one LSTM) with the
    encoder `kind`; "small" and "keypoints" are keras_video's own."""
    if kind == "vgg":
        clips = keras.Input(clip_shape)
        x = FrameDifference()(ImageNormalization("unit")(clips))
        vgg = small_cnn((*clip_shape[1:3], 6), (16, 32, 64, 64), convs_per_stage=2)
        encoder = keras.Sequential([vgg, keras.layers.Flatten()])
        x = keras.layers.TimeDistributed(encoder)(x)
        x = keras.layers.LSTM(lstm_units)(x)
        net = keras.Model(clips, keras.layers.Dense(2, activation="softmax")(x))
    elif kind in ENCODERS:
        net = build_model("cnn_lstm", input_shape=clip_shape, lstm_units=(lstm_units,),
                          frame_difference=True, task="classification", num_classes=2,
                          **ENCODERS[kind])
    else:
        raise SystemExit(f"unknown encoder {kind!r}")
    net.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                metrics=["accuracy"])
    return net


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoders", default="small,vgg,keypoints")
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--num_train", type=int, default=3000)
    parser.add_argument("--num_val", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()

    t0 = time.time()
    x_train, y_train = rotation_clips(args.num_train, seed=0)
    x_val, y_val = rotation_clips(args.num_val, seed=1)
    print(f"rendered {len(x_train)} + {len(x_val)} clips in {time.time() - t0:.0f} s",
          flush=True)
    for kind in args.encoders.split(","):
        keras.utils.set_random_seed(0)
        net = model(kind, x_train.shape[1:])
        rng = np.random.default_rng(0)
        t0, accs = time.time(), []
        for step in range(1, args.steps + 1):
            idx = rng.integers(len(x_train), size=args.batch)
            _, acc = net.train_on_batch(x_train[idx], y_train[idx])
            accs.append(acc)
            if step % 100 == 0:
                _, val = net.evaluate(x_val, y_val, batch_size=50, verbose=0)
                print(f"{kind:10s} step {step:5d}  train acc (last 100) "
                      f"{np.mean(accs[-100:]):.3f}  val acc {val:.3f}  "
                      f"{(time.time() - t0) / step * 1000:.0f} ms/step", flush=True)


if __name__ == "__main__":
    main()
