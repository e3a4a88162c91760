"""A classical (no learning) frequency estimator for the oscillation clips.

Per frame, the angle of the swinging edges is measured from the black pixels: the first
(last) black pixel of every column between the left and right edges lies on the top
(bottom) edge; a least-squares line through each gives its slope, and the frame's angle
is the mean of the two. The frequency and phase of the drawing rule's triangle wave
`oscillation.swing_angle` are then fitted to the 30 angles by least squares: a grid
search over f in [fmin, fmax] (step 0.005) and phase in [0, 1) (step 0.01), refined on
a finer grid around the best point.

    python experiments/oscillation/classical_baseline.py --num 500 --seed 12345

renders fresh clips with `sample_clips`, estimates each, prints RMSE, MAE and wall time,
and the estimates for the two real seed clips in tests/fixtures/seed_clips.
"""

import argparse
import glob
import math
import os
import re
import sys
import time

import cv2
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from keras_video.data import oscillation  # noqa: E402

SPEC = oscillation.OscillationSpec()


def _fit_slope(u, v, iterations=3, cutoff=1.5):
    """Slope of the least-squares line v = m u + c, refitted without outliers."""
    keep = np.ones(len(u), bool)
    for _ in range(iterations):
        m, c = np.polyfit(u[keep], v[keep], 1)
        keep = np.abs(v - (m * u + c)) <= cutoff
        if keep.sum() < 10:
            break
    return np.polyfit(u[keep], v[keep], 1)[0]


def edge_angle(frame):
    """Angle in radians of the top and bottom edges (mean) of one frame."""
    mask = (frame.min(axis=-1) if frame.ndim == 3 else frame) < 128
    xs = np.nonzero(mask.any(axis=0))[0]
    if len(xs) < 40:
        return np.nan
    cols = np.arange(xs.min() + 8, xs.max() - 7)
    top = mask[:, cols].argmax(axis=0)
    bottom = mask.shape[0] - 1 - mask[::-1, cols].argmax(axis=0)
    return 0.5 * (math.atan(_fit_slope(cols, top)) + math.atan(_fit_slope(cols, bottom)))


def _grid_fit(angles, t, freqs, phases):
    """Best (sse, f, phase) of swing_angle over the grid."""
    model = oscillation.swing_angle(freqs[:, None, None], t[None, None, :],
                                    phases[None, :, None])
    sse = np.sum((model - angles) ** 2, axis=-1)
    i, j = np.unravel_index(np.argmin(sse), sse.shape)
    return sse[i, j], freqs[i], phases[j]


def estimate_frequency(frames_rgb_uint8, fmin=0.5, fmax=5.0, fps=SPEC.fps):
    """Frequency (swings per second) of one clip [T, H, W, 3] uint8 by least squares."""
    angles = np.array([edge_angle(f) for f in frames_rgb_uint8])
    t = np.arange(len(angles)) / fps
    ok = np.isfinite(angles)
    angles, t = angles[ok], t[ok]
    _, f, phase = _grid_fit(angles, t, np.arange(fmin, fmax + 1e-9, 0.005),
                            np.arange(0.0, 1.0, 0.01))
    # Refine: +-0.005 in f (step 0.0005) and +-0.01 in phase (step 0.0005).
    freqs = np.clip(f + np.arange(-10, 11) * 0.0005, fmin, fmax)
    phases = (phase + np.arange(-20, 21) * 0.0005) % 1.0
    _, f, _ = _grid_fit(angles, t, freqs, phases)
    return float(f)


def load_frame_folder(folder):
    def index(p):
        return int(re.search(r"\((\d+)\)\.[^.]+$", p).group(1))
    paths = sorted(glob.glob(os.path.join(folder, "o (*).jpg")), key=index)
    frames = np.stack([cv2.imread(p)[..., ::-1] for p in paths])
    with open(os.path.join(folder, "label.txt")) as f:
        return frames, float(f.read())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, default=500)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--fmin", type=float, default=0.5)
    parser.add_argument("--fmax", type=float, default=5.0)
    args = parser.parse_args()

    start = time.perf_counter()
    clips = list(oscillation.sample_clips(args.num, args.seed, args.fmin, args.fmax))
    render_s = time.perf_counter() - start
    start = time.perf_counter()
    est = np.array([estimate_frequency(frames, args.fmin, args.fmax) for frames,
                    _ in clips])
    estimate_s = time.perf_counter() - start
    true = np.array([label for _, label in clips])
    err = est - true
    print(f"clips: {args.num} (seed {args.seed}, f in [{args.fmin}, {args.fmax}])")
    print(f"RMSE {np.sqrt(np.mean(err ** 2)):.4f}  MAE {np.mean(np.abs(err)):.4f}  "
          f"median |err| {np.median(np.abs(err)):.4f}  max |err| {np.abs(err).max():.4f}")
    for tol in (0.05, 0.1, 0.5):
        print(f"  |err| > {tol}: {np.mean(np.abs(err) > tol) * 100:.1f} %")
    worst = np.argsort(-np.abs(err))[:5]
    print("  worst (true -> est): " + ", ".join(f"{true[i]:.3f}->{est[i]:.3f}" for i in worst))
    print(f"wall time: render {render_s:.1f} s, estimate {estimate_s:.1f} s "
          f"({estimate_s / args.num * 1000:.1f} ms/clip)")
    for folder in sorted(glob.glob(os.path.join(REPO, "tests", "data", "seed_clips",
                                                "*/"))):
        frames, label = load_frame_folder(folder)
        print(f"seed clip {os.path.basename(folder.rstrip('/'))}: label {label:.4f}  "
              f"estimate {estimate_frequency(frames, args.fmin, args.fmax):.4f}")


if __name__ == "__main__":
    main()
