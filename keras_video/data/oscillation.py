"""The oscillation data set of the ResNet+LSTM seed (luoye2333/ResNetLSTM, MIT).

A quadrilateral whose left edge is a hinge swings its top and bottom edges up and
down; the label is the swing frequency in swings per second. The drawing rule is the
one decoded from the original generator (see tests/fixtures/seed_clips/README.md):

    a(t) = (pi / 6) * tri(f * t / 2 + phase),  tri(u) = min(frac(u), 1 - frac(u))

so the edges move linearly between 0 and 15 degrees and back, one swing (one
direction) taking 1 / f seconds. Every corner coordinate gets uniform jitter in
[-3, 3] px in every frame. 224x224, 15 fps, 30 frames, black 1-px lines on white.

The top and bottom edges are 149 px long, not the 148 px the decoded rule states:
measured on the two real clips (tests/test_oscillation.py), the right corners sit
1.0 +- 0.2 px further right than a 148 px edge puts them (L = 149.4 +- 0.2 with the
hinge at x = 20), while hinge, angles and jitter agree with the rule.
"""

import dataclasses
import math

import cv2
import numpy as np


@dataclasses.dataclass(frozen=True)
class OscillationSpec:
    """The original generator's settings; change them only for experiments."""

    size: int = 224
    fps: float = 15.0
    num_frames: int = 30
    hinge_top: tuple = (20.0, 20.0)
    hinge_bottom: tuple = (20.0, 120.0)
    edge_length: float = 149.0  # measured on the real clips; the decoded rule says 148
    max_angle: float = math.pi / 12  # tri() peaks at 1/2, times pi/6
    jitter: float = 3.0


def swing_angle(frequency, t, phase):
    """Edge angle in radians at time t (seconds) for a clip of `frequency`."""
    u = np.asarray(frequency * t / 2.0 + phase)
    frac = u - np.floor(u)
    return (math.pi / 6.0) * np.minimum(frac, 1.0 - frac)


def corners(frequency, phase, rng, spec=OscillationSpec()):
    """Corner coordinates, shape [num_frames, 4, 2] (x, y), jitter included.

    Order: top-left (hinge), top-right, bottom-right, bottom-left (hinge).
    """
    t = np.arange(spec.num_frames) / spec.fps
    a = swing_angle(frequency, t, phase)
    dx = spec.edge_length * np.cos(a)
    dy = spec.edge_length * np.sin(a)
    (x0, y0), (x1, y1) = spec.hinge_top, spec.hinge_bottom
    pts = np.stack(
        [
            np.stack([np.full_like(a, x0), np.full_like(a, y0)], -1),
            np.stack([x0 + dx, y0 + dy], -1),
            np.stack([x1 + dx, y1 + dy], -1),
            np.stack([np.full_like(a, x1), np.full_like(a, y1)], -1),
        ],
        axis=1,
    )
    return pts + rng.uniform(-spec.jitter, spec.jitter, size=pts.shape)


def render_clip(frequency, phase, rng, spec=OscillationSpec()):
    """One clip as uint8 RGB frames [num_frames, size, size, 3]."""
    frames = np.full((spec.num_frames, spec.size, spec.size, 3), 255, np.uint8)
    for frame, quad in zip(frames, corners(frequency, phase, rng, spec)):
        quad = np.round(quad).astype(np.int32)
        cv2.polylines(frame, [quad], isClosed=True, color=(0, 0, 0), thickness=1,
                      lineType=cv2.LINE_8)
    return frames


def sample_clips(num, seed, fmin=0.5, fmax=5.0, spec=OscillationSpec()):
    """Yields (frames, frequency) for `num` clips; clip k depends only on (seed, k)."""
    for child in np.random.SeedSequence(seed).spawn(num):
        rng = np.random.default_rng(child)
        frequency = float(rng.uniform(fmin, fmax))
        phase = float(rng.uniform(0.0, 1.0))
        yield render_clip(frequency, phase, rng, spec), frequency
