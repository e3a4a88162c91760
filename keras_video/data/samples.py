"""What a data source is: `Samples`, a list of (path, label) clips with their task, class
names and UCF101 groups, or a `TfdsSource`; and the pieces every on-disk layout reader
(keras_video.data.sources, action_datasets, tfrecord) builds them with: `check_clip`,
`Collector` (on_bad_sample: raise, or log and count) and the folder tests.

Clips of one UCF101 group (`_gNN_` in v_ApplyEyeMakeup_g08_c01.avi, wherever the file
lies) share `Samples.groups`, and `Samples.split` keeps each group on one side: clips
of one group come from one long video, and a clip-level split of them inflates UCF101
accuracy by tens of points.
"""

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


def is_video(name):
    return name.lower().endswith(VIDEO_EXTENSIONS)


def has_images(folder):
    return any(n.lower().endswith(IMAGE_EXTENSIONS) for n in os.listdir(folder))


def subdirs(folder):
    return sorted((d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d))),
                  key=natural_key)


def read_label_txt(clip):
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
        if not has_images(path):
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
