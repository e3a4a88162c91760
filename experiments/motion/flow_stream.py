"""The motion benchmark's r3d18 on optical flow instead of RGB: the flow stream of a
two-stream network (Simonyan & Zisserman 2014; I3D's flow stream), as a feasibility
check of what the RGB models miss.

    python experiments/motion/flow_stream.py --train DIR --val DIR --test DIR
        [--train_videos 4000] [--steps 1600]

The DIRs are motion folders written by `python -m keras_video.data.generate motion`
(`bash experiments/motion/run_all.sh` leaves them in runs/motion_data). Every video is
read the way the pipeline reads it (keras_video.data.decode, 48 x 48), and OpenCV's DIS
optical flow (medium preset) of each pair of consecutive frames is held in memory:
[videos, 31, 48, 48, 2] float16, in pixels. This is not a pipeline feature: the flow is
computed once, before training, and is not counted in the wall time.

Training as `motion_r3d18` (keras_video/configs.py): r3d18 at width 0.25 with a
3-frame conv1, random 16-frame crops, batch 16, Adam 1e-3 with cosine decay, no
normalisation layer (the flow, in pixels / 4, is fed as it is; BatchNorm follows
conv1). Held-out: video top-1 over two 16-flow clips of each video (flows 0-15 and
15-30), and the confusion matrix.
"""

import argparse
import concurrent.futures
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_video.data import decode, optical_flow, sources  # noqa: E402
from keras_video.models import build_model  # noqa: E402

SIZE, FRAMES, BATCH = 48, 16, 16
FLOW_SCALE = 4.0  # pixels per unit of the network's input


def video_flow(path):
    """DIS flow [T - 1, SIZE, SIZE, 2] float16 between consecutive frames of a video."""
    frames = decode.read_all_frames(path, size=(SIZE, SIZE))
    return optical_flow.consecutive_flow(frames).astype(np.float16)


def load(folder, limit=None):
    """(flows [N, T - 1, SIZE, SIZE, 2], labels [N], class names) of a motion folder."""
    samples = sources.from_spec(folder)
    paths = list(samples.paths)[:limit]
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        flows = np.stack(list(pool.map(video_flow, paths)))
    return flows, np.asarray(samples.labels[:len(paths)]), samples.class_names


def random_crops(flows, labels, seed=0):
    """Endless batches of random FRAMES-flow crops of random videos."""
    rng = np.random.default_rng(seed)
    while True:
        videos = rng.integers(len(flows), size=BATCH)
        starts = rng.integers(flows.shape[1] - FRAMES + 1, size=BATCH)
        clips = np.stack([flows[v, s:s + FRAMES] for v, s in zip(videos, starts)])
        yield clips.astype(np.float32) / FLOW_SCALE, labels[videos]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--val", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--train_videos", type=int, default=4000)
    parser.add_argument("--steps", type=int, default=1600)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)

    start = time.time()
    x_train, y_train, names = load(args.train, args.train_videos)
    x_val, y_val, _ = load(args.val)
    x_test, y_test, _ = load(args.test)
    print(f"flow of {len(x_train)} + {len(x_val)} + {len(x_test)} videos: "
          f"{time.time() - start:.0f} s", flush=True)

    train = tf.data.Dataset.from_generator(
        lambda: random_crops(x_train, y_train),
        output_signature=(tf.TensorSpec((BATCH, FRAMES, SIZE, SIZE, 2), tf.float32),
                          tf.TensorSpec((BATCH,), tf.int64))).prefetch(2)
    middle = (x_val.shape[1] - FRAMES) // 2
    val = (x_val[:, middle:middle + FRAMES].astype(np.float32) / FLOW_SCALE, y_val)
    model = build_model("r3d18", input_shape=(FRAMES, SIZE, SIZE, 2),
                        num_classes=len(names), width=0.25, conv1_t_size=3,
                        normalization="none")
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, args.steps)
    model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    start = time.time()
    model.fit(train, steps_per_epoch=100, epochs=args.steps // 100, validation_data=val,
              verbose=2)
    train_seconds = time.time() - start

    last = x_test.shape[1] - FRAMES
    scores = sum(model.predict(x_test[:, s:s + FRAMES].astype(np.float32) / FLOW_SCALE,
                               verbose=0) for s in (0, last))
    predicted = scores.argmax(1)
    confusion = np.zeros((len(names), len(names)), int)
    np.add.at(confusion, (y_test, predicted), 1)
    print(f"r3d18 on DIS flow: held-out video top-1 {np.mean(predicted == y_test):.3f} "
          f"({len(y_test)} videos), {args.steps} steps, training {train_seconds / 60:.1f} min")
    print("confusion (rows: true, columns: predicted):", ", ".join(names))
    print(confusion)


if __name__ == "__main__":
    main()
