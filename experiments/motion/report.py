"""The motion benchmark table from the runs of experiments/motion/run_all.sh.

    python experiments/motion/report.py [--runs runs]

For each runs/motion_<model> (RGB) and runs/motion_<model>_flow (optical flow, the
pipeline's modality "flow"): video-level top-1 on the held-out videos, clip top-1,
parameters, forward GFLOPs per clip (keras_video.models.flops), training steps and wall time
(training + evaluation + export, from metrics.json).
"""

import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

import keras  # noqa: E402

from keras_video.models import flops  # noqa: E402

MODELS = ("c3d", "r3d18", "r2plus1d18", "cnn_lstm", "frame_cnn")


def row(run_dir):
    with open(os.path.join(run_dir, "metrics.json")) as f:
        done = json.load(f)
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    model = keras.saving.load_model(os.path.join(run_dir, "best.keras"), compile=False)
    m = done["metrics"]
    train = config["train"]
    steps = train["epochs"] * train["steps_per_epoch"]
    return (f"| {train['model']} | {train.get('modality', 'rgb')} | {train['width']} | "
            f"{steps} | "
            f"**{m['video_top1']:.3f}** | {m['clip_top1']:.3f} | {m['video_num_videos']} | "
            f"{model.count_params():,} | {flops.gflops_per_example(model):.2f} | "
            f"{done['total_seconds'] / 60:.1f} min |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", default="runs")
    args = parser.parse_args()
    print("| model | input | width | steps | video top-1 | clip top-1 | videos | "
          "parameters | GFLOPs / clip | wall time |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for suffix in ("", "_flow"):
        for name in MODELS:
            run_dir = os.path.join(args.runs, f"motion_{name}{suffix}")
            if os.path.isfile(os.path.join(run_dir, "metrics.json")):
                print(row(run_dir))


if __name__ == "__main__":
    main()
