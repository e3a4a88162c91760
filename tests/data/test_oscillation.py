"""The oscillation renderer against the two real clips of the ResNet+LSTM seed, and the
`generate` command (layout, determinism, re-runs, CLI).

The comparison with the real clips is statistical, not by eye: the same measuring code
(least-squares fits of the four edges of every frame) runs on the real JPEG frames and
on frames rendered with the original settings (JPEG-encoded the same way), and the
hinge position, edge length, angle range and corner jitter must agree within the
tolerances stated next to each check.
"""

import csv
import glob
import json
import math
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT, SEED_CLIPS
from keras_video.data import generate
from keras_video.data import oscillation
from tree_utils import read_tree  # noqa: E402

REAL_CLIPS = ("eval_2p549", "sample_1")
SPEC = oscillation.OscillationSpec()
NOISELESS = oscillation.OscillationSpec(jitter=0.0)
NUM_SIM = 24  # rendered clips per real clip


# ---------------------------------------------------------------- measuring helpers


def frame_index(path):
    return int(re.search(r"\((\d+)\)\.jpg$", path).group(1))


def load_frame_folder(folder):
    """RGB frames [T, H, W, 3] in natural order and the label of a seed-layout folder."""
    paths = sorted(glob.glob(os.path.join(folder, "o (*).jpg")), key=frame_index)
    frames = np.stack([cv2.imread(p)[..., ::-1] for p in paths])
    with open(os.path.join(folder, "label.txt")) as f:
        return frames, float(f.read())


def jpeg_roundtrip(frames_rgb):
    """What the original's JPEG files do to a rendered frame."""
    return np.stack([cv2.imdecode(cv2.imencode(".jpg", f)[1], cv2.IMREAD_COLOR)
                     for f in frames_rgb])


def fit_line(u, v, iterations=3, cutoff=1.5):
    """Least-squares v = m u + c, refitted without the points more than `cutoff` off
    (pixels of the neighbouring edges near the corners)."""
    keep = np.ones(len(u), bool)
    for _ in range(iterations):
        m, c = np.polyfit(u[keep], v[keep], 1)
        keep = np.abs(v - (m * u + c)) <= cutoff
    return np.polyfit(u[keep], v[keep], 1)


def measure_corners(frame):
    """Corners [4, 2] (x, y) of the quadrilateral in one frame, order as `corners()`:
    top-left, top-right, bottom-right, bottom-left; each the intersection of two
    least-squares edge lines fitted to the black pixels."""
    mask = (frame.min(axis=-1) if frame.ndim == 3 else frame) < 128
    xs = np.nonzero(mask.any(axis=0))[0]
    x0, x1 = xs.min(), xs.max()
    # Top / bottom edges: the first / last black pixel of every column away from the
    # (near-vertical) left and right edges; slopes < 1, so one pixel per column.
    cols = np.arange(x0 + 8, x1 - 7)
    top = mask[:, cols].argmax(axis=0)
    bottom = mask.shape[0] - 1 - mask[::-1, cols].argmax(axis=0)
    mt, ct = fit_line(cols, top)
    mb, cb = fit_line(cols, bottom)
    # Left / right edges: first / last black pixel of every row strictly between the
    # top and bottom edges; fitted as x = m y + c.
    lo = int(max(mt * x0 + ct, mt * x1 + ct)) + 5
    hi = int(min(mb * x0 + cb, mb * x1 + cb)) - 4
    rows = np.arange(lo, hi)
    left = mask[rows].argmax(axis=1)
    right = mask.shape[1] - 1 - mask[rows, ::-1].argmax(axis=1)
    ml, cl = fit_line(rows, left)
    mr, cr = fit_line(rows, right)

    def meet(m, c, mv, cv):  # y = m x + c  and  x = mv y + cv
        y = (m * cv + c) / (1.0 - m * mv)
        return mv * y + cv, y

    return np.array([meet(mt, ct, ml, cl), meet(mt, ct, mr, cr),
                     meet(mb, cb, mr, cr), meet(mb, cb, ml, cl)])


def edge_angles(q):
    """Per frame, the mean angle (degrees) of the top and bottom edges; q [T, 4, 2]."""
    top = np.arctan2(q[:, 1, 1] - q[:, 0, 1], q[:, 1, 0] - q[:, 0, 0])
    bottom = np.arctan2(q[:, 2, 1] - q[:, 3, 1], q[:, 2, 0] - q[:, 3, 0])
    return np.degrees((top + bottom) / 2.0)


def fit_phase(q, frequency, num=1000):
    """Grid search of the phase of the noiseless model; returns (phase, model [T,4,2])."""
    best = None
    for phase in np.arange(num) / num:
        model = oscillation.corners(frequency, phase, np.random.default_rng(0), NOISELESS)
        err = np.sum((q - model) ** 2)
        if best is None or err < best[0]:
            best = (err, phase, model)
    return best[1], best[2]


def clip_stats(frames, frequency):
    q = np.stack([measure_corners(f) for f in frames])
    _, model = fit_phase(q, frequency)
    angle = edge_angles(q)
    length = np.concatenate([np.linalg.norm(q[:, 1] - q[:, 0], axis=-1),
                             np.linalg.norm(q[:, 2] - q[:, 3], axis=-1)])
    return {
        "hinge_x": q[:, [0, 3], 0].mean(),
        "hinge_top_y": q[:, 0, 1].mean(),
        "hinge_bottom_y": q[:, 3, 1].mean(),
        "edge_length": length.mean(),
        "angle_min": angle.min(),
        "angle_max": angle.max(),
        "jitter_std": (q - model).std(),
    }


@pytest.fixture(scope="module", params=REAL_CLIPS)
def real_vs_rendered(request):
    frames, label = load_frame_folder(os.path.join(SEED_CLIPS, request.param))
    real = clip_stats(frames, label)
    rng = np.random.default_rng(20190829)
    sims = []
    for _ in range(NUM_SIM):
        phase = rng.uniform()
        clip = jpeg_roundtrip(oscillation.render_clip(label, phase, rng, SPEC))
        sims.append(clip_stats(clip, label))
    sim = {k: np.array([s[k] for s in sims]) for k in sims[0]}
    return request.param, real, sim


# ---------------------------------------------------------------- real vs rendered


def test_seed_clips_present():
    for name in REAL_CLIPS:
        paths = glob.glob(os.path.join(SEED_CLIPS, name, "o (*).jpg"))
        assert sorted(frame_index(p) for p in paths) == list(range(1, 31))
        assert os.path.isfile(os.path.join(SEED_CLIPS, name, "label.txt"))


def test_measuring_recovers_noiseless_corners():
    # The helper itself: on jitter-free frames the corners come back within 0.75 px.
    rng = np.random.default_rng(3)
    frames = oscillation.render_clip(2.0, 0.3, rng, NOISELESS)
    want = oscillation.corners(2.0, 0.3, rng, NOISELESS)
    got = np.stack([measure_corners(f) for f in jpeg_roundtrip(frames)])
    assert np.abs(got - want).max() < 0.75


def test_hinge_matches(real_vs_rendered):
    # Per clip the hinge x is the mean of 60 jittered corners: std ~ 1.8 / sqrt(60)
    # ~ 0.25 px (rendered: see sim std); 1 px is about 4 of those.
    name, real, sim = real_vs_rendered
    for key in ("hinge_x", "hinge_top_y", "hinge_bottom_y"):
        assert abs(real[key] - sim[key].mean()) < 1.0, (name, key, real[key], sim[key])
    assert abs(real["hinge_x"] - SPEC.hinge_top[0]) < 1.0
    assert abs(real["hinge_top_y"] - SPEC.hinge_top[1]) < 1.0
    assert abs(real["hinge_bottom_y"] - SPEC.hinge_bottom[1]) < 1.0


def test_edge_length_matches(real_vs_rendered):
    # Mean of 60 edge lengths, std ~ 0.3 px per clip; a 1 px tolerance tells 148 from
    # 149 only with both clips, so the two clips' mean must also be within 0.6 px.
    name, real, sim = real_vs_rendered
    assert abs(real["edge_length"] - sim["edge_length"].mean()) < 1.0, (
        name, real["edge_length"], sim["edge_length"].mean())


def test_edge_length_both_clips():
    lengths = []
    for name in REAL_CLIPS:
        frames, _ = load_frame_folder(os.path.join(SEED_CLIPS, name))
        q = np.stack([measure_corners(f) for f in frames])
        lengths.append(np.linalg.norm(q[:, [1, 2]] - q[:, [0, 3]], axis=-1).mean())
    # Rendered clips measure ~0.05 px above edge_length (jitter lengthens on average).
    assert abs(np.mean(lengths) - (SPEC.edge_length + 0.05)) < 0.6, lengths


def test_angle_range_matches(real_vs_rendered):
    # The edges swing between 0 and 15 degrees; the per-frame angle has ~0.7 degree
    # noise from the jitter, so the extremes of 30 frames scatter by ~0.6 degrees.
    name, real, sim = real_vs_rendered
    for key in ("angle_min", "angle_max"):
        assert abs(real[key] - sim[key].mean()) < 1.5, (name, key, real[key], sim[key])
    assert abs(real["angle_min"] - 0.0) < 2.0
    assert abs(real["angle_max"] - math.degrees(SPEC.max_angle)) < 2.0


def test_jitter_matches(real_vs_rendered):
    # Uniform [-3, 3] jitter + rounding: std sqrt(3 + 1/12) = 1.76 px per coordinate.
    # Jitter [-2, 2] would give 1.19, [-4, 4] 2.32: a factor 1.25 tells them apart.
    name, real, sim = real_vs_rendered
    ratio = real["jitter_std"] / sim["jitter_std"].mean()
    assert 0.8 < ratio < 1.25, (name, real["jitter_std"], sim["jitter_std"])
    assert 1.4 < real["jitter_std"] < 2.2


def test_real_clip_follows_swing_angle():
    frames, label = load_frame_folder(os.path.join(SEED_CLIPS, "eval_2p549"))
    assert label == pytest.approx(2.54909590295262)
    q = np.stack([measure_corners(f) for f in frames])
    angle = edge_angles(q)
    t = np.arange(SPEC.num_frames) / SPEC.fps

    def rms(frequency):
        phases = np.arange(1000) / 1000
        model = np.degrees(oscillation.swing_angle(frequency, t[None], phases[:, None]))
        return np.sqrt(np.mean((model - angle) ** 2, axis=1)).min()

    # Angle noise: two corners of +-3 px (std 1.76) over 149 px, top and bottom averaged:
    # std ~ degrees(1.76 * sqrt(2) / 149 / sqrt(2)) ~ 0.7 degrees.
    assert rms(label) < 1.2
    # A 10 % wrong frequency fits clearly worse.
    assert rms(label * 1.1) > 1.5 * rms(label)
    assert rms(label / 1.1) > 1.5 * rms(label)


# ---------------------------------------------------------------- sample_clips


def test_labels_within_range_and_deterministic():
    a = list(oscillation.sample_clips(40, seed=7, fmin=1.0, fmax=2.0))
    labels = np.array([f for _, f in a])
    assert labels.min() >= 1.0 and labels.max() <= 2.0
    b = list(oscillation.sample_clips(3, seed=7, fmin=1.0, fmax=2.0))
    for (fa, la), (fb, lb) in zip(a, b):
        assert la == lb and np.array_equal(fa, fb)
    c = next(oscillation.sample_clips(1, seed=8, fmin=1.0, fmax=2.0))
    assert not np.array_equal(a[0][0], c[0])
    assert a[0][0].shape == (30, 224, 224, 3) and a[0][0].dtype == np.uint8


# ---------------------------------------------------------------- generate


@pytest.mark.parametrize("fmt", ["frames", "video"])
def test_same_seed_same_bytes(tmp_path, fmt):
    a = generate.write_oscillation(str(tmp_path / "a"), 2, 5, fmt=fmt, progress=False)
    b = generate.write_oscillation(str(tmp_path / "b"), 2, 5, fmt=fmt, progress=False)
    c = generate.write_oscillation(str(tmp_path / "c"), 2, 6, fmt=fmt, progress=False)
    assert a == str(tmp_path / "a")
    ta, tb, tc = read_tree(a), read_tree(b), read_tree(c)
    assert ta == tb
    assert ta.keys() == tc.keys()
    data_files = [k for k in ta if k != generate.MANIFEST]
    assert all(ta[k] != tc[k] for k in data_files)


def test_frames_layout(tmp_path):
    out = generate.write_oscillation(str(tmp_path / "d"), 2, 11, fmin=1.0, fmax=2.0,
                                     fmt="frames", progress=False)
    assert sorted(os.listdir(out)) == ["clip_00000", "clip_00001", generate.MANIFEST]
    want = list(oscillation.sample_clips(2, 11, 1.0, 2.0))
    for k, (frames, label) in enumerate(want):
        folder = os.path.join(out, f"clip_{k:05d}")
        names = set(os.listdir(folder))
        assert names == {"label.txt"} | {f"o ({i}).jpg" for i in range(1, 31)}
        with open(os.path.join(folder, "label.txt")) as f:
            text = f.read()
        assert text == repr(label) and 1.0 <= float(text) <= 2.0
        # Natural order: 'o (N).jpg' is frame N (1-based), 'o (10).jpg' frame 10.
        got, got_label = load_frame_folder(folder)
        assert got_label == label
        a = got[..., 0].reshape(30, -1).astype(np.float32)
        b = frames[..., 0].reshape(30, -1).astype(np.float32)
        dist = (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2.0 * a @ b.T
        assert np.array_equal(dist.argmin(axis=1), np.arange(30))
        assert np.abs(got.astype(int) - frames).mean() < 2.0


def test_frames_are_written_bgr(tmp_path):
    rgb = np.zeros((1, 8, 8, 3), np.uint8)
    rgb[..., 0] = 255  # red
    generate._write_frames(str(tmp_path), rgb, 1.0)
    bgr = cv2.imread(str(tmp_path / "o (1).jpg"))
    assert bgr[..., 2].min() > 240 and bgr[..., :2].max() < 15


def test_video_layout(tmp_path):
    out = generate.write_oscillation(str(tmp_path / "v"), 2, 11, fmt="video", progress=False)
    with open(os.path.join(out, "labels.csv"), newline="") as f:
        rows = list(csv.reader(f))
    want = list(oscillation.sample_clips(2, 11))
    assert rows[0] == ["path", "label"]
    assert rows[1:] == [[f"clip_{k:05d}.avi", repr(label)] for k, (_, label) in enumerate(want)]
    cap = cv2.VideoCapture(os.path.join(out, "clip_00001.avi"))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(15.0)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame[..., ::-1])
    cap.release()
    assert len(frames) == 30
    assert np.abs(np.stack(frames).astype(int) - want[1][0]).mean() < 2.0


@pytest.mark.slow
def test_concurrent_writers_take_turns(tmp_path):
    """Processes generating one folder at once (training workers sharing --data_dir)
    take turns on its lock: one writes it, the others find it finished."""
    out = str(tmp_path / "shared")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = ("import sys; from keras_video.data import generate; "
            "generate.write_oscillation(sys.argv[1], 2, 1, fmt='frames', progress=False)")
    with generate._exclusive(out):  # held here, so both writers start while it is taken
        writers = [subprocess.Popen([sys.executable, "-c", code, out], env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                   for _ in range(2)]
        with pytest.raises(subprocess.TimeoutExpired):
            writers[0].wait(timeout=5)
        assert not os.path.exists(out)  # neither wrote anything while the lock was held
    results = [w.communicate(timeout=120) for w in writers]
    assert [w.returncode for w in writers] == [0, 0], [err for _, err in results]
    assert sum("already generated" in stdout for stdout, _ in results) == 1
    assert read_tree(out) == read_tree(
        generate.write_oscillation(str(tmp_path / "alone"), 2, 1, fmt="frames",
                                   progress=False))


def test_rerun_and_conflicts(tmp_path, capsys):
    out = str(tmp_path / "r")
    generate.write_oscillation(out, 2, 1, fmt="frames", progress=False)
    with open(os.path.join(out, generate.MANIFEST)) as f:
        manifest = json.load(f)
    assert manifest["complete"] and manifest["args"]["seed"] == 1
    capsys.readouterr()
    before = read_tree(out)
    assert generate.write_oscillation(out, 2, 1, fmt="frames", progress=False) == out
    assert "already generated" in capsys.readouterr().out
    assert read_tree(out) == before
    with pytest.raises(generate.GenerateError, match="different arguments"):
        generate.write_oscillation(out, 2, 2, fmt="frames", progress=False)
    with pytest.raises(generate.GenerateError, match="different arguments"):
        generate.write_oscillation(out, 2, 1, fmt="video", progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(generate.GenerateError, match="not empty"):
        generate.write_oscillation(str(foreign), 2, 1, progress=False)
    # An interrupted run (manifest says incomplete) with the same arguments is redone.
    interrupted = str(tmp_path / "i")
    generate.write_oscillation(interrupted, 2, 1, fmt="frames", progress=False)
    generate._write_manifest(interrupted, manifest["args"], complete=False)
    os.remove(os.path.join(interrupted, "clip_00001", "o (30).jpg"))
    generate.write_oscillation(interrupted, 2, 1, fmt="frames", progress=False)
    assert read_tree(interrupted) == before


@pytest.mark.slow
def test_cli_frames(tmp_path):
    out = tmp_path / "cli"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, "-m", "keras_video.data.generate", "oscillation",
           "--out", str(out), "--num", "3", "--seed", "1", "--format", "frames"]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == ["clip_00000", "clip_00001", "clip_00002",
                                       generate.MANIFEST]
    lib = generate.write_oscillation(str(tmp_path / "lib"), 3, 1, fmt="frames",
                                     progress=False)
    assert read_tree(str(out)) == read_tree(lib)
    # Re-runs ("already generated") are checked on the library in
    # test_rerun_and_conflicts. Unknown data set: usage error.
    bad = subprocess.run(cmd[:3] + ["nope"] + cmd[4:], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0
