"""Live CNN-LSTM from a file read as live: the whole window through the SavedModel
against CnnLstmStreamer (one CNN pass and one LSTM step a frame), in one run.

    PYTHONPATH=. python experiments/bench_live_cnn_lstm.py [--frames 300] [--fps 25]

For each CNN-LSTM recipe (keras_video.training.configs; untrained weights: the cost
does not depend on them) the model is built at its size and exported as training
exports it; a generated video (--frames frames of 320 x 240 at --fps, MJPG) is read as
live by keras_video.serving.live (`predict --source=FILE`), scored every --stride
frames (default: every frame, 1, and the default half window) by:

    SavedModel   `predict --source` as it serves a run: each window's T frames through
                 the exported model
    streamer     `predict --source --cache_features`: live.CnnLstmStreamer on the Keras
                 model

and the summary line of each run is printed and written to
experiments/bench_live_cnn_lstm.json: mean latency a window, frames dropped, frames/s
sustained, and the scorer's own frames/s (stride / latency). Ratios are within one run.
"""

import argparse
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from keras_video import runtime  # noqa: E402

runtime.start()

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from keras_video.models import build_model  # noqa: E402
from keras_video.serving import export, live  # noqa: E402
from keras_video.training import configs  # noqa: E402

EXPERIMENTS = ("oscillation_cnn_lstm", "oscillation_seed000")


def write_video(path, frames, fps):
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, (320, 240))
    for t in range(frames):  # a texture panning, so every frame differs
        x, y = int(100 + 60 * np.sin(t / 7)), int(80 + 40 * np.cos(t / 11))
        writer.write(np.ascontiguousarray(texture[y:y + 240, x:x + 320]))
    writer.release()
    return path


def run_live(scorer, meta, video, stride):
    recognizer = live.LiveRecognizer.from_meta(scorer, meta, stride=stride)
    run = recognizer.run(video)
    for _ in run:
        pass
    return run.summary()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiments", default=",".join(EXPERIMENTS))
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--out", default=os.path.join(ROOT, "experiments",
                                                      "bench_live_cnn_lstm.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        video = write_video(os.path.join(folder, "live.avi"), args.frames, args.fps)
        for name in args.experiments.split(","):
            config = configs.make_config(name)
            clip = config.data.clip_spec()
            model = build_model("cnn_lstm", **config.model_config())
            export_dir = export.export_saved_model(
                model, clip, os.path.join(folder, name), "regression", None)
            saved, meta = live.load_scorer(export_dir)
            streamer = live.CnnLstmStreamer(model, live.eval_clip(meta))
            for stride in (1, live.default_stride(live.eval_clip(meta))):
                for method, scorer in (("SavedModel", saved), ("streamer", streamer)):
                    summary = run_live(scorer, meta, video, stride)
                    row = {"experiment": name, "method": method, "stride": stride,
                           "frames_per_window": clip.num_frames, **summary}
                    rows.append(row)
                    print(f"{name:22s} stride {stride:2d} {method:10s}: latency "
                          f"{summary['mean_latency_ms']} ms a window, dropped "
                          f"{summary['dropped']} of {summary['frames']}, "
                          f"{summary['fps']} frames/s sustained, scorer "
                          f"{summary['scorer_fps']} frames/s", flush=True)
    with open(args.out, "w") as f:
        json.dump({"fps": args.fps, "frames": args.frames, "rows": rows}, f, indent=2)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
