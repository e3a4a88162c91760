"""Where clips come from: lists of (path, label) found on disk, or a TFDS data set.

`from_spec(spec)` understands:
  PATH/labels.csv or any .csv   rows `path,label` (paths relative to the CSV); numeric
                                labels make a regression set, names a classification set
  PATH with a labels.csv        the same (the layout `generate --format video` writes)
  PATH/<clip>/label.txt         frame folders with a numeric label each (the seed layout)
  PATH/<class>/<video file>     class sub-folders of videos
  PATH/<class>/<frame folder>   class sub-folders of frame folders
  ucf101:PATH[:splitN][:train|test][:lists=DIR]
  hmdb51:PATH[:splitN][:train|test][:lists=DIR]
                                UCF101 / HMDB51 with their official split files, as
                                videos or extracted frame folders (default: split 1, the
                                test list); see keras_video.data.action_datasets
  tfds:NAME[:SPLIT]             a TensorFlow Datasets data set (e.g. tfds:ucf101)
  tfrecord:DIR, or DIR holding tfrecord.json
                                TFRecord shards written by keras_video.data.to_tfrecord
                                (keras_video.data.tfrecord)
Problems (missing folder, no clips, bad label.txt, empty file) raise `BadSampleError`
naming the file, or with on_bad_sample="skip" are logged and counted, never hidden.

Clips of one UCF101 group (`_gNN_` in v_ApplyEyeMakeup_g08_c01.avi, wherever the file
lies) share `Samples.groups`, and `Samples.split` keeps each group on one side: clips
of one group come from one long video, and a clip-level split of them inflates UCF101
accuracy by tens of points.
"""

import csv
import dataclasses
import os
import re

import numpy as np
from absl import logging

from keras_video.data.decode import (IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, BadSampleError,
                                     natural_key)


@dataclasses.dataclass
class Samples:
    """A list of clips and their labels, all of one task."""

    paths: list
    labels: np.ndarray  # float32 for regression, int64 class ids for classification
    task: str  # "regression" or "classification"
    class_names: list = None
    skipped: list = dataclasses.field(default_factory=list)  # BadSampleErrors
    groups: list = None  # per clip: clips of one group (one source video) never split

    def __len__(self):
        return len(self.paths)

    def subset(self, index):
        index = np.asarray(index, dtype=np.int64)
        groups = None if self.groups is None else [self.groups[i] for i in index]
        return Samples([self.paths[i] for i in index], self.labels[index], self.task,
                       self.class_names, self.skipped, groups)

    def split(self, holdout_fraction, seed):
        """(train, held_out) by a seeded shuffle of the groups (of the clips, where there
        are no groups): every group lies wholly on one side."""
        keys = self.groups if self.groups is not None else self.paths
        unique = list(dict.fromkeys(keys))
        if len(unique) < 2:
            raise ValueError(f"cannot hold out part of {len(self)} clips in "
                             f"{len(unique)} group(s); more data is needed")
        order = np.random.default_rng(seed).permutation(len(unique))
        n_out = min(len(unique) - 1, max(1, int(round(len(unique) * holdout_fraction))))
        held_out = {unique[i] for i in order[:n_out]}
        out = np.array([k in held_out for k in keys])
        return self.subset(np.flatnonzero(~out)), self.subset(np.flatnonzero(out))


@dataclasses.dataclass
class TfdsSource:
    """A TFDS video data set; `load()` gives a tf.data.Dataset of (video, label)."""

    name: str
    split: str = "train"
    data_dir: str = None

    def builder(self):
        import tensorflow_datasets as tfds  # optional at import time

        return tfds.builder(self.name, data_dir=self.data_dir)

    def with_official_split(self, number):
        """The UCF101 builder config of official split `number` (1, 2 or 3): ucf101_N at
        full size; a name that already picks a config (ucf101/ucf101_1_256) must agree."""
        dataset, _, config = self.name.partition("/")
        if dataset != "ucf101":
            raise ValueError(f"--split picks one of UCF101's official splits; tfds:{self.name} "
                             "has none")
        if number not in (1, 2, 3):
            raise ValueError(f"UCF101 has official splits 1, 2 and 3, not {number}")
        if config:
            named = re.match(r"ucf101_(\d)", config)
            if not named or int(named.group(1)) != number:
                raise ValueError(f"tfds:{self.name} is not official split {number}")
            return self
        return dataclasses.replace(self, name=f"ucf101/ucf101_{number}")

    def load(self):
        builder = self.builder()
        builder.download_and_prepare()
        ds = builder.as_dataset(split=self.split, shuffle_files=False)
        label = builder.info.features["label"]
        return ds.map(lambda ex: (ex["video"], ex["label"])), list(label.names)


_UCF101_NAME = re.compile(r"^v_.+_g(\d+)_c\d+$")


def ucf101_group(path):
    """'g08' for .../v_ApplyEyeMakeup_g08_c01.avi (or its frame folder), else None.

    The group number is taken across classes, as the official splits take it (split 1
    tests groups 1-7 of every class), so a group-wise hold-out holds out every class.
    """
    stem = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
    match = _UCF101_NAME.match(stem)
    return f"g{int(match.group(1)):02d}" if match else None


def _is_video(name):
    return name.lower().endswith(VIDEO_EXTENSIONS)


def _has_images(folder):
    return any(n.lower().endswith(IMAGE_EXTENSIONS) for n in os.listdir(folder))


def _subdirs(folder):
    return sorted((d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d))),
                  key=natural_key)


def _read_label_txt(clip):
    path = os.path.join(clip, "label.txt")
    if not os.path.isfile(path):
        raise BadSampleError(path, "missing label.txt (each clip folder needs one)")
    with open(path) as f:
        text = f.read().strip()
    try:
        value = float(text)
    except ValueError:
        raise BadSampleError(path, f"label is not a number: {text[:40]!r}") from None
    if not np.isfinite(value):
        raise BadSampleError(path, f"label is not finite: {text!r}")
    return value


def check_clip(path):
    """Cheap checks done when listing: the full check happens at decode time."""
    if os.path.isdir(path):
        if not _has_images(path):
            raise BadSampleError(path, "frame folder holds no image files")
    elif not os.path.isfile(path):
        raise BadSampleError(path, "file does not exist")
    elif os.path.getsize(path) == 0:
        raise BadSampleError(path, "file is empty (0 bytes)")


class Collector:
    """Applies the on_bad_sample policy while a source is listed."""

    def __init__(self, on_bad_sample):
        if on_bad_sample not in ("error", "skip"):
            raise ValueError(f"on_bad_sample must be 'error' or 'skip', not {on_bad_sample!r}")
        self.policy = on_bad_sample
        self.paths, self.labels, self.groups, self.skipped = [], [], [], []

    def add(self, path, label_fn, group=None):
        """Lists a clip; `label_fn()` gives its label or raises BadSampleError. Without
        a group, a UCF101 file name gives one, else the clip is its own group."""

        def listed():
            check_clip(path)
            return path, label_fn(), group or ucf101_group(path)

        self.attempt(listed)

    def attempt(self, listed):
        """Runs `listed()` -> (path, label, group) under the on_bad_sample policy."""
        try:
            path, label, group = listed()
        except BadSampleError as e:
            if self.policy == "error":
                raise
            logging.warning("skipping bad sample %s", e)
            self.skipped.append(e)
            return
        self.paths.append(path)
        self.labels.append(label)
        self.groups.append(group or path)

    def samples(self, root, task, class_names=None):
        if self.skipped:
            logging.warning("skipped %d bad samples under %s", len(self.skipped), root)
        if not self.paths:
            raise BadSampleError(root, "no usable clips found")
        dtype = np.float32 if task == "regression" else np.int64
        return Samples(self.paths, np.asarray(self.labels, dtype), task, class_names,
                       self.skipped, self.groups)


def frame_folders(root, on_bad_sample="error"):
    """Seed layout: root/<clip>/{o (1).jpg .., label.txt} -> regression samples."""
    collect = Collector(on_bad_sample)
    for d in _subdirs(root):
        clip = os.path.join(root, d)
        collect.add(clip, lambda clip=clip: _read_label_txt(clip))
    return collect.samples(root, "regression")


def class_folders(root, on_bad_sample="error"):
    """root/<class>/<video file or frame folder> -> classification samples."""
    class_names = _subdirs(root)
    collect = Collector(on_bad_sample)
    for label, name in enumerate(class_names):
        folder = os.path.join(root, name)
        for entry in sorted(os.listdir(folder), key=natural_key):
            path = os.path.join(folder, entry)
            if os.path.isdir(path) or _is_video(entry):
                collect.add(path, lambda label=label: label)
    return collect.samples(root, "classification", class_names)


def csv_file(path, on_bad_sample="error", class_names=None):
    """Rows `path,label`; numeric labels -> regression, otherwise class names."""
    if not os.path.isfile(path):
        raise BadSampleError(path, "label CSV does not exist")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "path" not in rows[0] or "label" not in rows[0]:
        raise BadSampleError(path, "label CSV needs a header `path,label` and rows")
    base = os.path.dirname(os.path.abspath(path))
    labels = [r["label"].strip() for r in rows]
    try:
        values = [float(v) for v in labels]
        task = "regression"
    except ValueError:
        task = "classification"
        class_names = class_names or sorted(set(labels), key=natural_key)
        index = {n: i for i, n in enumerate(class_names)}
    collect = Collector(on_bad_sample)
    for line, (row, text) in enumerate(zip(rows, labels), start=2):
        clip = os.path.join(base, row["path"])
        if task == "regression":
            collect.add(clip, lambda v=values[line - 2]: v)
        else:
            def label(text=text, line=line):
                if text not in index:
                    raise BadSampleError(path, f"line {line}: unknown class {text!r}")
                return index[text]
            collect.add(clip, label)
    return collect.samples(path, task, class_names if task == "classification" else None)


def from_spec(spec, on_bad_sample="error"):
    """Samples (or a TfdsSource) for a --data value; see the module docstring."""
    from keras_video.data import action_datasets  # it builds on this module

    if spec.startswith(action_datasets.PREFIXES):
        return action_datasets.from_spec(spec, on_bad_sample)
    if spec.startswith("tfds:"):
        parts = spec.split(":")
        return TfdsSource(parts[1], parts[2] if len(parts) > 2 else "train")
    from keras_video.data import tfrecord  # it builds on this module

    path = os.path.expanduser(spec)
    if spec.startswith(tfrecord.PREFIX) or tfrecord.is_tfrecord_dir(path):
        return tfrecord.from_spec(spec)
    if path.lower().endswith(".csv"):
        return csv_file(path, on_bad_sample)
    if not os.path.exists(path):
        raise BadSampleError(path, "data path does not exist")
    if not os.path.isdir(path):
        raise BadSampleError(path, "data path is a file but not a .csv of labels")
    if os.path.isfile(os.path.join(path, "labels.csv")):
        return csv_file(os.path.join(path, "labels.csv"), on_bad_sample)
    for dataset, lists in action_datasets.LISTS_FOLDER.items():
        if os.path.isdir(os.path.join(path, lists)):
            # As class folders, its split-file folder would be a class and its official
            # splits would be ignored.
            raise BadSampleError(path, f"a {dataset} tree (it holds {lists}/): read it "
                                 f"with its official splits as --data={dataset}:{path}")
    subdirs = _subdirs(path)
    if not subdirs:
        raise BadSampleError(path, "data folder is empty: expected clip folders with "
                             "label.txt, class sub-folders, or a labels.csv")
    first = os.path.join(path, subdirs[0])
    if any(os.path.isfile(os.path.join(path, d, "label.txt")) or _has_images(
            os.path.join(path, d)) for d in subdirs):
        return frame_folders(path, on_bad_sample)
    if any(_is_video(n) or os.path.isdir(os.path.join(first, n)) for n in os.listdir(first)):
        return class_folders(path, on_bad_sample)
    raise BadSampleError(path, "cannot tell the layout: expected clip folders with "
                         "label.txt, class sub-folders of videos or frame folders, "
                         "or a labels.csv")
