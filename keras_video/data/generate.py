"""Writes synthetic data sets to disk.

    python -m keras_video.data.generate oscillation --out DIR --num N --seed S \
        [--format frames|video] [--fmin 0.5] [--fmax 5.0]
    python -m keras_video.data.generate motion --out DIR --num N --seed S \
        [--format frames|video] [--frames 32] [--size 64]
    python -m keras_video.data.generate segmentation --out DIR --num N --seed S \
        [--frames 30] [--size 128] [--classes 4]
    python -m keras_video.data.generate vid --out ROOT [--num 40] [--num_val 10] \
        [--num_det N] [--seed S] [--frames 30] [--size 128] [--classes 3]

`--format frames` writes the seed's layout: one folder per clip, `clip_00000/o (1).jpg`
.. `o (30).jpg` and `label.txt` (the label as plain text); for a classification set
(motion) the clip folders sit in class sub-folders, `<class>/clip_00000/`, with no
label.txt. `--format video` (default) writes one MJPG `.avi` per clip and `labels.csv`
with the columns `path,label` (paths relative to the CSV's folder; the label is a
number or a class name). Both are layouts `keras_video.data.sources` reads.
`segmentation` writes its own layout (frames, masks, flow; see `moving_shapes`).
`vid` writes ILSVRC2015 VID + DET's layout with DFF's lists (see `write_vid`).

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
import shutil
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
from keras_video.data import vid_synthetic

MANIFEST = "generate.json"
FORMATS = ("frames", "video")
_MANIFEST_VERSION = 1


class GenerateError(ValueError):
    """The output folder cannot be used for the requested data set."""


def _progbar(num, progress, unit="clip"):
    if not progress:
        return None
    import keras  # Imported lazily: keras is slow to import and only needed here.

    return keras.utils.Progbar(num, unit_name=unit)


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


def _write_items(out_dir, args, items, num, write_item, progress, finish=None,
                 unit="clip"):
    """The frame of every writer: checks `out_dir` against `args`, calls
    `write_item(k, item)` for each of `items` with a progress bar, then `finish()`, and
    marks the output complete. Returns `out_dir`. One process at a time (`_exclusive`)."""
    out_dir = os.fspath(out_dir)
    with _exclusive(out_dir):
        if not _prepare(out_dir, args):
            print(f"{out_dir}: already generated ({MANIFEST} matches), nothing to do")
            return out_dir
        bar = _progbar(num, progress, unit)
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


# ---------------------------------------------------------------- vid: ILSVRC2015's layout

VID_TRAIN_FRAMES = 15  # frames DFF's VID_train_15frames.txt lists per video


def vid_name(split, index):
    """The path of video (or DET image) `index` below Data/<subset>/, as ILSVRC names
    them: train snippets ILSVRC2015_train_VVVVVSSS (video, snippet) in batch folders
    ILSVRC2015_VID_train_NNNN of at most 1000 snippets, val snippets
    ILSVRC2015_val_VVVVVSSS, DET images ILSVRC2014_train_NNNNNNNN in batch folders
    ILSVRC2014_train_NNNN of about 10000 (the ILSVRC2015 devkit's readme, sections
    2.2.1 and 4.2). Every synthetic video is one snippet (SSS = 000)."""
    if split == "train":
        return (f"train/ILSVRC2015_VID_train_{index // 1000:04d}/"
                f"ILSVRC2015_train_{index:05d}000")
    if split == "val":
        return f"val/ILSVRC2015_val_{index:05d}000"
    if split == "det":
        return f"train/ILSVRC2014_train_{index // 10000:04d}/ILSVRC2014_train_{index:08d}"
    raise ValueError(f"unknown split {split!r}")


def train_frame_starts(num_frames, count=VID_TRAIN_FRAMES):
    """The frames of a video that VID_train_15frames.txt lists: `count` frames spread
    evenly, frame floor((k + 1/2) * num_frames / count) for k < count (the middles of
    `count` equal parts), or every frame of a shorter video. DFF's list (3862 videos)
    agrees on all its lines but for 495 of 57834 where (k + 1/2) * num_frames / count
    is a whole number and DFF's frame is one lower (a rounding of its own tool)."""
    if num_frames < count:
        return list(range(num_frames))
    return [(2 * k + 1) * num_frames // (2 * count) for k in range(count)]


def _vid_xml(folder, filename, database, width, height, objects, wnids, video):
    """A Pascal-VOC annotation as ILSVRC2015 writes it: folder, filename, source /
    database, size, and per object (VID) trackid, name, bndbox (xmax, xmin, ymax,
    ymin, in ILSVRC's order), occluded, generated; DET objects have no track fields."""
    lines = ["<annotation>", f"\t<folder>{folder}</folder>",
             f"\t<filename>{filename}</filename>",
             f"\t<source>\n\t\t<database>{database}</database>\n\t</source>",
             f"\t<size>\n\t\t<width>{width}</width>\n\t\t<height>{height}</height>"
             "\n\t</size>"]
    for box, label, track, occluded in zip(objects["boxes"], objects["labels"],
                                           objects["track_ids"], objects["occluded"]):
        x1, y1, x2, y2 = (int(v) for v in box)
        lines.append("\t<object>")
        if video:
            lines.append(f"\t\t<trackid>{int(track)}</trackid>")
        lines += [f"\t\t<name>{wnids[int(label) - 1]}</name>", "\t\t<bndbox>",
                  f"\t\t\t<xmax>{x2}</xmax>", f"\t\t\t<xmin>{x1}</xmin>",
                  f"\t\t\t<ymax>{y2}</ymax>", f"\t\t\t<ymin>{y1}</ymin>", "\t\t</bndbox>"]
        if video:
            lines += [f"\t\t<occluded>{int(bool(occluded))}</occluded>",
                      "\t\t<generated>0</generated>"]
        lines.append("\t</object>")
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


def _jpeg_bytes(frame_rgb, path):
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(frame_rgb[..., ::-1]))
    if not ok:
        raise OSError(f"{path}: cv2.imencode (JPEG) failed")
    return data.tobytes()


def _write_bytes(path, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)


def _publish(tmp, final):
    """Renames a finished temporary file or folder onto its final name."""
    if os.path.isdir(final):
        shutil.rmtree(final)
    os.replace(tmp, final)


def _write_vid_video(root, split, index, seed, spec, wnids):
    """Video `index` of `split`: its frames' JPEGs and annotations, each folder written
    under a temporary name and renamed when whole (annotations first), so a video
    whose Data folder exists is complete and a rerun skips it."""
    name = vid_name(split, index)
    data = os.path.join(root, "Data", "VID", name)
    annotations = os.path.join(root, "Annotations", "VID", name)
    if os.path.isdir(data) and os.path.isdir(annotations):
        return  # written by an interrupted earlier run with the same arguments
    frames, objects = vid_synthetic.render(seed, index, spec, split)
    folder = name.split("/", 1)[1]  # ILSVRC's <folder>: the path below Data/VID/<split>
    for final, write in ((annotations, "xml"), (data, "jpeg")):
        tmp = final + ".partial"
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
        os.makedirs(tmp)
        for t, (frame, found) in enumerate(zip(frames, objects)):
            if write == "xml":
                _write_bytes(os.path.join(tmp, f"{t:06d}.xml"), _vid_xml(
                    folder, f"{t:06d}", "ILSVRC_2015", spec.width, spec.height, found,
                    wnids, video=True))
            else:
                path = os.path.join(tmp, f"{t:06d}.JPEG")
                _write_bytes(path, _jpeg_bytes(frame, path))
        _publish(tmp, final)


def _write_det_image(root, index, seed, spec, wnids):
    """DET image `index`: annotation, then the JPEG (each written under a temporary
    name and renamed), so an image whose JPEG exists is complete."""
    name = vid_name("det", index)
    image = os.path.join(root, "Data", "DET", name + ".JPEG")
    annotation = os.path.join(root, "Annotations", "DET", name + ".xml")
    if os.path.isfile(image) and os.path.isfile(annotation):
        return
    frame, found = vid_synthetic.render_det_image(seed, index, spec)
    folder, filename = name.split("/")[1:]
    for final, data in ((annotation, _vid_xml(folder, filename, "ILSVRC_2014", spec.width,
                                              spec.height, found, wnids, video=False)),
                        (image, _jpeg_bytes(frame, image))):
        os.makedirs(os.path.dirname(final), exist_ok=True)
        _write_bytes(final + ".partial", data)
        os.replace(final + ".partial", final)


def _write_vid_lists(root, num_train, num_val, num_det, frames, wnids):
    """ImageSets/ in DFF's formats (its data/ILSVRC2015/ImageSets), and classes.txt."""
    sets = os.path.join(root, "ImageSets")
    os.makedirs(sets, exist_ok=True)
    train = [f"{vid_name('train', k)} 1 {start} {frames}\n" for k in range(num_train)
             for start in train_frame_starts(frames)]
    det = [f"{vid_name('det', k)} 1\n" for k in range(num_det)]
    videos = [f"{vid_name('val', k)} {1 + k * frames} 0 {frames}\n" for k in range(num_val)]
    val_frames = [f"{vid_name('val', k)}/{j:06d} {1 + k * frames + j}\n"
                  for k in range(num_val) for j in range(frames)]
    for name, lines in (("VID_train_15frames", train), ("DET_train_30classes", det),
                        ("VID_val_videos", videos), ("VID_val_frames", val_frames)):
        _write_bytes(os.path.join(sets, name + ".txt"), "".join(lines))
    _write_bytes(os.path.join(root, "classes.txt"), "".join(w + "\n" for w in wnids))


def write_vid(out_dir, num_train_videos, num_val_videos, seed, frames=30, size=128,
              classes=3, num_det_images=None, progress=True):
    """Writes a synthetic video object detection set (see `vid_synthetic`) to
    `out_dir` in exactly the layout of ILSVRC2015 VID + DET as Deep Feature Flow reads
    it (its README's data layout, lib/dataset/imagenet_vid.py, and the lists of
    data/ILSVRC2015/ImageSets); returns `out_dir`:

        Data/VID/train/ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000/000000.JPEG
        Annotations/VID/train/.../000000.xml    Pascal-VOC XML of every frame (empty
                                                frames too), as ILSVRC2015 VID's
        Data/VID/val/ILSVRC2015_val_00000000/000000.JPEG, Annotations/VID/val/...
        Data/DET/train/ILSVRC2014_train_0000/ILSVRC2014_train_00000000.JPEG,
        Annotations/DET/train/....xml           single images, no track fields
        ImageSets/VID_train_15frames.txt        VIDEO 1 START NUM_FRAMES, 15 frames
                                                spread evenly per video
        ImageSets/DET_train_30classes.txt       IMAGE 1
        ImageSets/VID_val_videos.txt            VIDEO FRAME_ID 0 NUM_FRAMES, FRAME_ID
                                                counting frames over all val videos
                                                from 1
        ImageSets/VID_val_frames.txt            val/VIDEO/FFFFFF FRAME_ID, every val
                                                frame (the list DFF's R-FCN baseline
                                                tests and FGFA's motion IoU indexes)
        classes.txt                             the classes' WordNet ids, one a line

    The K classes take the WordNet ids of the first K VID classes
    (imagenet_vid.WNIDS), so imagenet_vid reads the set unchanged, and the model's
    class ids are those of the real set. num_det_images defaults to the number of
    VID_train_15frames records, about as many DET images as VID training frames, as
    in DFF's DET_train_30classes + VID_train_15frames (53638 and 57834 lines).

    Every video and image is a function of (seed, split, index); a rerun after an
    interruption keeps the videos and images already written whole and writes the
    rest (see `_write_vid_video`).
    """
    num_train, num_val = _check_num(num_train_videos), int(num_val_videos)
    seed, frames, classes = int(seed), int(frames), int(classes)
    if num_val < 1:
        raise GenerateError(f"--num_val must be at least 1, got {num_val}")
    if frames < 2:
        raise GenerateError(f"vid needs at least 2 frames a video, got {frames}")
    if num_det_images is None:
        num_det_images = num_train * len(train_frame_starts(frames))
    num_det = int(num_det_images)
    if num_det < 1:
        raise GenerateError(f"--num_det must be at least 1, got {num_det}")
    height, width = parse_size(size)
    try:
        spec = vid_synthetic.VidSpec(height=height, width=width, num_frames=frames,
                                     num_classes=classes)
    except ValueError as e:
        raise GenerateError(str(e)) from None
    args = {"dataset": "vid", "num": num_train, "num_val": num_val, "num_det": num_det,
            "seed": seed, "frames": frames, "size": [height, width], "classes": classes}
    out_dir = os.fspath(out_dir)
    wnids = vid_synthetic.class_wnids(classes)
    items = ([("train", k) for k in range(num_train)] + [("val", k) for k in range(num_val)]
             + [("det", k) for k in range(num_det)])

    def write_item(_, item):
        split, index = item
        if split == "det":
            _write_det_image(out_dir, index, seed, spec, wnids)
        else:
            _write_vid_video(out_dir, split, index, seed, spec, wnids)

    def finish():
        _write_vid_lists(out_dir, num_train, num_val, num_det, frames, wnids)

    return _write_items(out_dir, args, items, len(items), write_item, progress, finish,
                        unit="item")


def vid_meta(root, video):
    """The generator's own description (vid_synthetic.video_meta) of `video` (a
    VID_val_videos / VID_train_15frames record's video, e.g. "val/ILSVRC2015_val_
    00003000") of a set `write_vid` wrote under `root`: the ground truth beyond the
    annotations, e.g. the exact flow between two frames (moving_shapes.flow_between)."""
    path = os.path.join(root, MANIFEST)
    try:
        with open(path) as f:
            args = json.load(f)["args"]
    except (OSError, ValueError, KeyError) as e:
        raise GenerateError(f"{path}: no generator arguments to redraw {video} from "
                            f"({e})") from None
    if args.get("dataset") != "vid":
        raise GenerateError(f"{path}: not a generated vid set (dataset "
                            f"{args.get('dataset')!r})")
    for split in ("train", "val"):
        prefix = vid_name(split, 0)[:-len("00000000")]
        tail = video[len(prefix):]
        if video.startswith(prefix) and len(tail) == 8 and tail.isdigit():
            spec = vid_synthetic.VidSpec(height=args["size"][0], width=args["size"][1],
                                         num_frames=args["frames"],
                                         num_classes=args["classes"])
            return vid_synthetic.video_meta(args["seed"], int(tail) // 1000, spec, split)
    raise GenerateError(f"{path}: {video!r} is not a video name write_vid gives")


def _write_vid_command(out_dir, num, seed, fmt=None, progress=True, num_val=10,
                       num_det=None, frames=30, size=128, classes=3):
    """write_vid in the form of Generator.write (fmt: vid takes no --format)."""
    del fmt
    return write_vid(out_dir, num, num_val, seed, frames=frames, size=size, classes=classes,
                     num_det_images=num_det, progress=progress)


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
    formats: tuple = FORMATS  # () for a data set with a layout of its own, no --format
    default_num: int = None  # --num where not given (None: --num is required)


# name -> Generator
GENERATORS = {
    "oscillation": Generator(write_oscillation, ("fmin", "fmax")),
    "motion": Generator(write_motion, ("frames", "size")),
    "segmentation": Generator(write_segmentation, ("frames", "size", "classes"),
                              clip_labels=False, formats=("video",)),
    "vid": Generator(_write_vid_command,
                     ("num_val", "num_det", "frames", "size", "classes"),
                     clip_labels=False, formats=(), default_num=40),
}

FLAGS = flags.FLAGS
_OPTION_FLAGS = ("fmin", "fmax", "frames", "size", "classes", "num_val", "num_det")


def define_flags():
    """Defines the command's flags (not at import: a train command imports this module
    and has flags of its own, e.g. --seed)."""
    flags.DEFINE_string("out", None, "Output folder (created; must be empty or a "
                        "previous output of the same command with the same arguments).")
    flags.DEFINE_integer("num", None, "Number of clips (vid: training videos, default "
                         "40).")
    flags.DEFINE_integer("seed", 0, "Random seed; the same seed gives the same bytes.")
    flags.DEFINE_enum("format", "video", list(FORMATS),
                      "frames: one folder of 'o (N).jpg' per clip (+ label.txt, or in "
                      "class sub-folders); video: one MJPG .avi per clip + labels.csv.")
    # Data-set options default to None: each writer has its own default.
    flags.DEFINE_float("fmin", None, "oscillation: lowest frequency (swings per second; "
                       "default 0.5).")
    flags.DEFINE_float("fmax", None, "oscillation: highest frequency (swings per second; "
                       "default 5.0).")
    flags.DEFINE_integer("frames", None, "motion, segmentation, vid: frames per clip "
                         "(default 32, 30, 30).")
    flags.DEFINE_string("size", None, "motion, segmentation, vid: frame size N or HxW "
                        "(default 64, 128, 128).")
    flags.DEFINE_integer("classes", None, "segmentation: classes, background included "
                         "(default 4); vid: object classes (default 3).")
    flags.DEFINE_integer("num_val", None, "vid: validation videos (default 10).")
    flags.DEFINE_integer("num_det", None, "vid: DET images (default: as many as "
                         "VID_train_15frames.txt has lines).")


def main(argv):
    if len(argv) != 2 or argv[1] not in GENERATORS:
        raise app.UsageError(
            f"usage: python -m keras_video.data.generate {{{'|'.join(GENERATORS)}}} "
            "--out DIR --num N [--seed S] [--format frames|video]")
    name = argv[1]
    generator = GENERATORS[name]
    num = FLAGS.num if FLAGS.num is not None else generator.default_num
    if FLAGS.out is None or num is None:
        raise app.UsageError("--out and --num are required")
    foreign = [f"--{o}" for o in _OPTION_FLAGS
               if FLAGS[o].present and o not in generator.options]
    if foreign:
        raise app.UsageError(f"{', '.join(foreign)} do(es) not apply to {name}; it takes "
                             f"{', '.join('--' + o for o in generator.options)}")
    if not generator.formats and FLAGS["format"].present:
        raise app.UsageError(f"--format does not apply to {name}: it writes a layout of "
                             "its own")
    if generator.formats and FLAGS.format not in generator.formats:
        raise app.UsageError(f"{name} writes only --format {'|'.join(generator.formats)}")
    options = {o: FLAGS[o].value for o in generator.options if FLAGS[o].value is not None}
    try:
        generator.write(FLAGS.out, num, FLAGS.seed, fmt=FLAGS.format, progress=True,
                        **options)
    except GenerateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
