"""Shared fixtures: small data sets the project generates itself, and the test videos."""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
VIDEOS = os.path.join(TESTS, "data", "videos")
SEED_CLIPS = os.path.join(TESTS, "data", "seed_clips")


def run_module(module, *args, timeout=600, env=None):
    """Runs `python -m module args` in a fresh process; returns CompletedProcess."""
    full_env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2",
                **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


def write_video(path, frames_rgb, fps=15, fourcc="MJPG"):
    h, w = frames_rgb.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), path
    for frame in frames_rgb:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()
    return str(path)


@pytest.fixture(scope="session")
def oscillation_videos(tmp_path_factory):
    """12 oscillation clips as MJPG videos + labels.csv."""
    from keras_video.data import generate

    out = tmp_path_factory.mktemp("osc_videos")
    return generate.write_oscillation(str(out / "set"), 12, seed=3, fmt="video",
                                      progress=False)


@pytest.fixture(scope="session")
def oscillation_frames(tmp_path_factory):
    """6 oscillation clips in the seed's frame-folder layout."""
    from keras_video.data import generate

    out = tmp_path_factory.mktemp("osc_frames")
    return generate.write_oscillation(str(out / "set"), 6, seed=4, fmt="frames",
                                      progress=False)


def _color_clip(color, num_frames=8, size=(24, 32)):
    clip = np.zeros((num_frames, *size, 3), np.uint8)
    clip[...] = color
    # a moving bright square so frames differ
    for t in range(num_frames):
        clip[t, 2:8, t:t + 6] = 255
    return clip


@pytest.fixture(scope="session")
def class_videos(tmp_path_factory):
    """Class sub-folders of videos: red/ (3 clips) and blue/ (2 clips)."""
    root = tmp_path_factory.mktemp("classes")
    for name, color, count in (("red", (200, 20, 20), 3), ("blue", (20, 20, 200), 2)):
        os.makedirs(root / name)
        for i in range(count):
            write_video(root / name / f"{name}_{i}.avi", _color_clip(color, 8 + i))
    return str(root)
