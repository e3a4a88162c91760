"""Is the sense of rotation in the motion benchmark's videos, at the size the models
read them? A check without learning: optical flow, then its curl around the shape.

    python experiments/motion/rotation_sense.py --data DIR [--sizes 64,48,24]

DIR is a folder written by `python -m keras_video.data.generate motion` (its
generate.json gives the seed, so the generator's parameters of every clip are known).
Each rotate_cw / rotate_ccw video is read the way the pipeline reads it
(keras_video.data.decode: MJPEG decode, INTER_AREA resize to each size), OpenCV's DIS
optical flow is computed between consecutive frames, and the flow's curl is summed
over the disc of the shape's radius around its centre (the generator's centre:
this asks whether the frames carry the sense, not how to find the shape). A positive
sum is clockwise on screen (image y points down). The table gives, per shape and
size, the fraction of videos whose sign matches the label.

Every model of the motion benchmark confuses rotate_cw with rotate_ccw
(experiments/RESULTS.md); this says whether the data or the models are to blame.
"""

import argparse
import collections
import json
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from keras_video.data import decode, motion, optical_flow, sources  # noqa: E402

ROTATIONS = ("rotate_cw", "rotate_ccw")


def curl_sum(frames, centres, radii):
    """Sum over frame pairs of the curl r x v of the DIS flow, over the pixels within
    `radii[t]` of `centres[t]` (wrapped: the frame is a torus), in pixels of `frames`."""
    height, width = frames.shape[1:3]
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    total = 0.0
    for t, flow in enumerate(optical_flow.consecutive_flow(frames)):
        dx = (x - centres[t][0] + width / 2) % width - width / 2
        dy = (y - centres[t][1] + height / 2) % height - height / 2
        inside = dx ** 2 + dy ** 2 <= radii[t] ** 2
        total += float(np.sum(inside * (dx * flow[..., 1] - dy * flow[..., 0])))
    return total


def check(data, sizes):
    """{(shape, size): [matches]} over the rotation videos of `data`."""
    with open(os.path.join(data, "generate.json")) as f:
        args = json.load(f)["args"]
    if args["dataset"] != "motion":
        raise SystemExit(f"{data} holds {args['dataset']!r} clips, not motion")
    height, width = args["size"]
    spec = motion.MotionSpec(height=height, width=width, num_frames=args["frames"])
    params = motion.sample_params_list(args["num"], args["seed"], spec)
    samples = sources.from_spec(data)
    matches = collections.defaultdict(list)
    for path, p in zip(samples.paths, params):
        if p["class_name"] not in ROTATIONS:
            continue
        path_ = motion.trajectory(p, spec)
        for size in sizes:
            scale = size / width
            frames = decode.read_all_frames(path, size=(round(height * scale), size))
            centres = np.stack([path_["x"], path_["y"]], -1) * scale
            total = curl_sum(frames, centres, 1.2 * path_["radius"] * scale)
            said = "rotate_cw" if total > 0 else "rotate_ccw"
            matches[p["shape"], size].append(said == p["class_name"])
    return matches


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a generated motion folder")
    parser.add_argument("--sizes", default="64,48,24", help="frame widths to read at")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    matches = check(args.data, sizes)
    by_shape = {shape: {size: matches[shape, size] for size in sizes}
                for shape in sorted({shape for shape, _ in matches})}
    by_shape["all"] = {size: [v for (_, sz), vs in matches.items() if sz == size
                              for v in vs] for size in sizes}
    print(f"Flow-curl sign against the label, rotation videos of {args.data}")
    print()
    print("| shape | videos | " + " | ".join(f"{s} px" for s in sizes) + " |")
    print("|---|---:|" + "---:|" * len(sizes))
    for shape, per_size in by_shape.items():
        cells = " | ".join(f"{np.mean(per_size[size]):.3f}" for size in sizes)
        print(f"| {shape} | {len(per_size[sizes[0]])} | {cells} |")

if __name__ == "__main__":
    main()
