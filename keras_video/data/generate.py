"""Writes synthetic data sets to disk.

    python -m keras_video.data.generate oscillation --out DIR --num N --seed S \
        [--format frames|video] [--fmin 0.5] [--fmax 5.0]
    python -m keras_video.data.generate motion --out DIR --num N --seed S \
        [--format frames|video] [--frames 32] [--size 64]
    python -m keras_video.data.generate segmentation --out DIR --num N --seed S \
        [--frames 30] [--size 128] [--classes 4]

`--format frames` writes the seed's layout: one folder per clip, `clip_00000/o (1).jpg`
.. `o (30).jpg` and `label.txt` (the label as plain text); for a classification set
(motion) the clip folders sit in class sub-folders, `<class>/clip_00000/`, with no
label.txt. `--format video` (default) writes one MJPG `.avi` per clip and `labels.csv`
with the columns `path,label` (paths relative to the CSV's folder; the label is a
number or a class name). Both are layouts `keras_video.data.sources` reads.
`segmentation` writes its own layout (frames, masks, flow; see `moving_shapes`).

The same arguments always give the same bytes. Every output folder gets a
`generate.json` holding the arguments; running the command again with the same
arguments on a finished folder prints "already generated" and does nothing, with
different arguments it raises `GenerateError`, and it never writes into a non-empty
folder that is not its own output.

A data set is one `Generator` in `GENERATORS`. Flags that do not apply to the chosen
data set are an error rather than silently ignored.
"""

import contextlib
import csv
import dataclasses
import json
import os
import sys

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; generate shared folders once first
    fcntl = None

import cv2
import numpy as np
from absl import app
from absl import flags

from keras_video.data import motion
from keras_video.data import moving_shapes
from keras_video.data import oscillation

MANIFEST = "generate.json"
FORMATS = ("frames", "video")
_MANIFEST_VERSION = 1


class GenerateError(ValueError):
    """The output folder cannot be used for the requested data set."""


def _progbar(num, progress):
    if not progress:
        return None
    import keras  # Imported lazily: keras is slow to import and only needed here.

    return keras.utils.Progbar(num, unit_name="clip")


def _prepare(out_dir, args):
    """Checks `out_dir` against `args`; returns False if it is already complete."""
    manifest_path = os.path.join(out_dir, MANIFEST)
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        if not os.path.isfile(manifest_path):
            raise GenerateError(
                f"{out_dir}: output folder is not empty and holds no {MANIFEST}; "
                "refusing to write into it (choose an empty or new folder)")
        try:
            with open(manifest_path) as f:
                old = json.load(f)
        except (OSError, ValueError) as e:
            raise GenerateError(f"{manifest_path}: unreadable ({e})") from e
        old_args = old.get("args")
        if old_args != args:
            raise GenerateError(
                f"{out_dir}: holds a data set generated with different arguments\n"
                f"  there:     {json.dumps(old_args, sort_keys=True)}\n"
                f"  requested: {json.dumps(args, sort_keys=True)}\n"
                "use another --out folder or delete this one")
        if old.get("complete"):
            return False
        # Same arguments but interrupted: generation is deterministic, so redo it.
    os.makedirs(out_dir, exist_ok=True)
    _write_manifest(out_dir, args, complete=False)
    return True


def _write_manifest(out_dir, args, complete):
    text = json.dumps({"version": _MANIFEST_VERSION, "args": args, "complete": complete},
                      indent=2, sort_keys=True) + "\n"
    tmp = os.path.join(out_dir, MANIFEST + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, os.path.join(out_dir, MANIFEST))


def _write_frames(folder, frames_rgb, label=None):
    """`o (1).jpg` ... per frame, and `label.txt` unless `label` is None."""
    os.makedirs(folder, exist_ok=True)
    for i, frame in enumerate(frames_rgb, start=1):
        path = os.path.join(folder, f"o ({i}).jpg")
        if not cv2.imwrite(path, np.ascontiguousarray(frame[..., ::-1])):
            raise OSError(f"{path}: cv2.imwrite failed")
    if label is not None:
        with open(os.path.join(folder, "label.txt"), "w") as f:
            f.write(repr(float(label)))


def _write_video(path, frames_rgb, fps):
    height, width = frames_rgb.shape[1:3]
    fourcc = cv2.VideoWriter_fourcc(*"MJPG")
    # OpenCV's own MJPEG muxer: deterministic and present in every OpenCV build.
    writer = cv2.VideoWriter(path, cv2.CAP_OPENCV_MJPEG, fourcc, fps, (width, height))
    if not writer.isOpened():
        writer = cv2.VideoWriter(path, fourcc, fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"{path}: cv2.VideoWriter (MJPG) could not be opened")
    try:
        for frame in frames_rgb:
            writer.write(np.ascontiguousarray(frame[..., ::-1]))
    finally:
        writer.release()


def _label_text(label):
    """A class name stays as it is; a number is written exactly (repr of a float)."""
    return label if isinstance(label, str) else repr(float(label))


@contextlib.contextmanager
def _exclusive(out_dir):
    """Holds an exclusive lock on `out_dir`.lock (beside it, so the folder itself stays
    empty until written): processes that generate the same folder at once, such as
    training workers sharing one --data_dir, take turns, and the later ones find the
    first one's finished output."""
    if fcntl is None:
        yield
        return
    path = os.path.abspath(out_dir)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_items(out_dir, args, items, num, write_item, progress, finish=None):
    """The frame of every writer: checks `out_dir` against `args`, calls
    `write_item(k, item)` for each of `items` with a progress bar, then `finish()`, and
    marks the output complete. Returns `out_dir`. One process at a time (`_exclusive`)."""
    out_dir = os.fspath(out_dir)
    with _exclusive(out_dir):
        if not _prepare(out_dir, args):
            print(f"{out_dir}: already generated ({MANIFEST} matches), nothing to do")
            return out_dir
        bar = _progbar(num, progress)
        for k, item in enumerate(items):
            write_item(k, item)
            if bar is not None:
                bar.update(k + 1)
        if finish is not None:
            finish()
        _write_manifest(out_dir, args, complete=True)
    return out_dir


def write_clips(out_dir, clips, num, fmt, fps, args, progress=True):
    """Writes (frames_rgb, label) pairs from `clips` to `out_dir` in format `fmt`.

    A label is a number (regression) or a class name (str, classification).
    """
    if fmt not in FORMATS:
        raise GenerateError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out_dir = os.fspath(out_dir)
    rows = []

    def write_item(k, clip):
        frames, label = clip
        name = f"clip_{k:05d}"
        if fmt == "frames" and isinstance(label, str):
            _write_frames(os.path.join(out_dir, label, name), frames)
        elif fmt == "frames":
            _write_frames(os.path.join(out_dir, name), frames, label)
        else:
            _write_video(os.path.join(out_dir, name + ".avi"), frames, fps)
            rows.append((name + ".avi", _label_text(label)))

    def write_labels():
        if fmt == "video":
            with open(os.path.join(out_dir, "labels.csv"), "w", newline="") as f:
                writer = csv.writer(f, lineterminator="\n")
                writer.writerow(("path", "label"))
                writer.writerows(rows)

    return _write_items(out_dir, args, clips, num, write_item, progress, write_labels)


def _check_num(num):
    num = int(num)
    if num < 1:
        raise GenerateError(f"--num must be at least 1, got {num}")
    return num


def parse_size(size, name="--size"):
    """(height, width) from 64, (64, 96), "64" or "64x96"."""
    if isinstance(size, str):
        parts = size.lower().split("x")
        try:
            size = tuple(int(p) for p in parts)
        except ValueError:
            raise GenerateError(f"{name} must be N or HxW (e.g. 64 or 96x160), "
                                f"got {size!r}") from None
    elif isinstance(size, int):
        size = (size,)
    size = tuple(int(v) for v in size)
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise GenerateError(f"{name} must be N or HxW with positive sides, got {size!r}")
    return size


def write_oscillation(out_dir, num, seed, fmin=0.5, fmax=5.0, fmt="video", progress=True):
    """Writes `num` oscillation clips (ResNet+LSTM seed task) to `out_dir`; returns it.

    Labels are frequencies drawn uniformly from [fmin, fmax]; see `oscillation`.
    """
    num, seed, fmin, fmax = _check_num(num), int(seed), float(fmin), float(fmax)
    if not 0 < fmin <= fmax:
        raise GenerateError(f"need 0 < fmin <= fmax, got fmin={fmin}, fmax={fmax}")
    args = {"dataset": "oscillation", "num": num, "seed": seed, "format": fmt,
            "fmin": fmin, "fmax": fmax}
    spec = oscillation.OscillationSpec()
    clips = oscillation.sample_clips(num, seed, fmin, fmax, spec)
    return write_clips(out_dir, clips, num, fmt, spec.fps, args, progress)


def write_motion(out_dir, num, seed, frames=32, size=64, fmt="video", progress=True):
    """Writes `num` clips of the motion benchmark (see `motion`) to `out_dir`."""
    num, seed, frames = _check_num(num), int(seed), int(frames)
    height, width = parse_size(size)
    try:
        spec = motion.MotionSpec(height=height, width=width, num_frames=frames)
    except ValueError as e:
        raise GenerateError(str(e)) from None
    args = {"dataset": "motion", "num": num, "seed": seed, "format": fmt,
            "frames": frames, "size": [height, width]}
    return write_clips(out_dir, motion.sample_clips(num, seed, spec), num, fmt, spec.fps,
                       args, progress)


def write_segmentation(out_dir, num, seed, frames=30, size=128, classes=4, fmt="video",
                       progress=True):
    """Writes `num` moving-shapes segmentation clips with masks and exact flow (see
    `moving_shapes`) to `out_dir`; returns it."""
    num, seed, frames, classes = _check_num(num), int(seed), int(frames), int(classes)
    if fmt != "video":
        raise GenerateError(f"segmentation writes only --format video, got {fmt!r}")
    height, width = parse_size(size)
    try:
        spec = moving_shapes.SegmentationSpec(height=height, width=width,
                                              num_frames=frames, num_classes=classes)
    except ValueError as e:
        raise GenerateError(str(e)) from None
    args = {"dataset": "segmentation", "num": num, "seed": seed, "format": fmt,
            "frames": frames, "size": [height, width], "classes": classes}
    out_dir = os.fspath(out_dir)

    def write_item(k, meta):
        moving_shapes.write_clip(os.path.join(out_dir, f"clip_{k:05d}"), meta, _write_video)

    return _write_items(out_dir, args, moving_shapes.sample_metas(num, seed, spec), num,
                        write_item, progress)


@dataclasses.dataclass(frozen=True)
class Generator:
    """One data set of the `generate` command."""

    # write(out_dir, num, seed, fmt="video", progress=True, **options) -> out_dir; every
    # option has a default, so write(out_dir, num, seed) gives the standard data set.
    write: object
    options: tuple  # the names of the flags it takes, passed as keywords
    # True: the output is a clip-label set that keras_video.data.sources reads, so it
    # can be trained on as --data=synthetic:NAME.
    clip_labels: bool = True
    formats: tuple = FORMATS


# name -> Generator
GENERATORS = {
    "oscillation": Generator(write_oscillation, ("fmin", "fmax")),
    "motion": Generator(write_motion, ("frames", "size")),
    "segmentation": Generator(write_segmentation, ("frames", "size", "classes"),
                              clip_labels=False, formats=("video",)),
}

FLAGS = flags.FLAGS
_OPTION_FLAGS = ("fmin", "fmax", "frames", "size", "classes")


def define_flags():
    """Defines the command's flags (not at import: a train command imports this module
    and has flags of its own, e.g. --seed)."""
    flags.DEFINE_string("out", None, "Output folder (created; must be empty or a "
                        "previous output of the same command with the same arguments).")
    flags.DEFINE_integer("num", None, "Number of clips.")
    flags.DEFINE_integer("seed", 0, "Random seed; the same seed gives the same bytes.")
    flags.DEFINE_enum("format", "video", list(FORMATS),
                      "frames: one folder of 'o (N).jpg' per clip (+ label.txt, or in "
                      "class sub-folders); video: one MJPG .avi per clip + labels.csv.")
    # Data-set options default to None: each writer has its own default.
    flags.DEFINE_float("fmin", None, "oscillation: lowest frequency (swings per second; "
                       "default 0.5).")
    flags.DEFINE_float("fmax", None, "oscillation: highest frequency (swings per second; "
                       "default 5.0).")
    flags.DEFINE_integer("frames", None, "motion, segmentation: frames per clip "
                         "(default 32, 30).")
    flags.DEFINE_string("size", None, "motion, segmentation: frame size N or HxW "
                        "(default 64, 128).")
    flags.DEFINE_integer("classes", None, "segmentation: classes, background included "
                         "(default 4).")


def main(argv):
    if len(argv) != 2 or argv[1] not in GENERATORS:
        raise app.UsageError(
            f"usage: python -m keras_video.data.generate {{{'|'.join(GENERATORS)}}} "
            "--out DIR --num N [--seed S] [--format frames|video]")
    if FLAGS.out is None or FLAGS.num is None:
        raise app.UsageError("--out and --num are required")
    name = argv[1]
    generator = GENERATORS[name]
    foreign = [f"--{o}" for o in _OPTION_FLAGS
               if FLAGS[o].present and o not in generator.options]
    if foreign:
        raise app.UsageError(f"{', '.join(foreign)} do(es) not apply to {name}; it takes "
                             f"{', '.join('--' + o for o in generator.options)}")
    if FLAGS.format not in generator.formats:
        raise app.UsageError(f"{name} writes only --format {'|'.join(generator.formats)}")
    options = {o: FLAGS[o].value for o in generator.options if FLAGS[o].value is not None}
    try:
        generator.write(FLAGS.out, FLAGS.num, FLAGS.seed, fmt=FLAGS.format, progress=True,
                        **options)
    except GenerateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
