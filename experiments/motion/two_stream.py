"""Two-stream late fusion (Simonyan & Zisserman 2014): an RGB run and an optical-flow
run of the motion benchmark, their video-level softmax scores averaged.

    python experiments/motion/two_stream.py --rgb runs/motion_r3d18 \
        --flow runs/motion_r3d18_flow [--data DIR] [--flow_weights 1,1.5]

Each run reads the held-out videos its own way (its ClipSpec: RGB frames, or the DIS
flow of the pipeline's modality "flow") with the video protocol (every
non-overlapping clip, scores averaged: keras_video.tasks.evaluation.video_scores). Fused
score = (rgb + w * flow) / (1 + w) for each flow weight w (TSN weights flow 1.5).
Prints top-1 of each stream and of each fusion, and the confusion matrix of the first.
"""

import argparse
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from keras_video.commands import evaluate  # noqa: E402
from keras_video.tasks import evaluation


def scores(run_dir, data):
    """(labels, video scores, class names) of a run on `data` (None: its held-out data)."""
    model, samples, clip, run = evaluate.load_run(run_dir, data)
    labels, video_scores, _ = evaluation.video_scores(model, samples, clip, "video")
    return labels, video_scores, run["class_names"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rgb", required=True, help="RGB training run directory")
    parser.add_argument("--flow", required=True, help="flow training run directory")
    parser.add_argument("--data", default=None, help="held-out data; default: the RGB run's")
    parser.add_argument("--flow_weights", default="1,1.5")
    args = parser.parse_args()
    data = args.data or evaluate.load_run(args.rgb)[3]["eval_data"]
    labels, rgb, names = scores(args.rgb, data)
    flow_labels, flow, flow_names = scores(args.flow, data)
    if not (np.array_equal(labels, flow_labels) and names == flow_names):
        raise SystemExit("the two runs disagree on the videos or the class names")
    print(f"{len(labels)} held-out videos of {data}")
    print(f"RGB  {args.rgb}: video top-1 {np.mean(rgb.argmax(1) == labels):.3f}")
    print(f"flow {args.flow}: video top-1 {np.mean(flow.argmax(1) == labels):.3f}")
    for i, w in enumerate(float(w) for w in args.flow_weights.split(",")):
        predicted = ((rgb + w * flow) / (1 + w)).argmax(1)
        print(f"fused, flow weight {w:g}: video top-1 {np.mean(predicted == labels):.3f}")
        if i == 0:
            confusion = np.zeros((len(names), len(names)), int)
            np.add.at(confusion, (labels, predicted), 1)
            print("confusion (rows: true, columns: predicted):", ", ".join(names))
            print(confusion)


if __name__ == "__main__":
    main()
