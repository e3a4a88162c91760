"""Train / validation / test splits for the data settings --data and --eval_data
(keras_video.training.configs.DataConfig) and the run's seed.

  synthetic:oscillation  generated under data_dir: train (seed), validation (seed + 1)
                         and test (seed + 2) are independent draws, so the test clips
                         are fresh clips never seen in training
  ucf101:PATH, hmdb51:PATH  (keras_video.data.action_datasets; --split=1, 2 or 3)
                         the official train list minus a validation hold-out of whole
                         groups (UCF101 `_gNN_`, HMDB51 source film), and the official
                         test list; test_spec "ucf101:PATH:split1:test" re-finds it
  PATH (any layout of keras_video.data.sources, tfrecord:DIR included)
                         validation and, without --eval_data, test are held out by a
                         seeded split of the clips, by whole UCF101 groups where the
                         file names carry them
  tfds:NAME              the data set's train split (its last 10% for validation) and
                         its test split; --split=N picks UCF101's builder config ucf101_N
"""

import dataclasses
import os

from absl import logging

from keras_video.data import action_datasets, sources
from keras_video.data.samples import TfdsSource

# The clip-label data sets of keras_video.data.generate.GENERATORS (kept as a constant so
# that importing this module does not import the generators; tests/test_motion.py
# checks that the two agree).
SYNTHETIC = ("oscillation", "motion")


@dataclasses.dataclass
class Splits:
    train: object  # Samples or TfdsSource
    val: object
    test: object
    task: str
    class_names: list = None
    test_spec: str = ""  # what to pass as --data to evaluate on the same test clips

    @property
    def num_classes(self):
        return len(self.class_names) if self.class_names else None


def synthetic_splits(data, seed):
    """(split, videos, seed) of a generated data set: train, validation and test are
    independent draws (seeds seed, seed + 1, seed + 2), so the test videos are fresh."""
    return (("train", data.num_train, seed), ("val", data.num_val, seed + 1),
            ("test", data.num_eval, seed + 2))


def _synthetic(settings, seed, data_dir):
    import numpy as np

    from keras_video.data import generate

    name = settings.source.split(":", 1)[1]
    if name not in SYNTHETIC:
        raise ValueError(f"unknown synthetic data set {name!r}; choose one of {SYNTHETIC}")
    parts = {}
    for split, num, split_seed in synthetic_splits(settings, seed):
        out = os.path.join(data_dir, f"{name}_{split}_{num}_seed{split_seed}")
        print(f"Generating {num} {name} clips for {split} in {out}")
        generate.GENERATORS[name].write(out, num, split_seed, fmt="video")
        parts[split] = out
    train = sources.from_spec(parts["train"], settings.on_bad_sample)

    def load_like_train(split):
        # A small split may lack some classes, and sources numbers the classes it
        # finds; class ids must mean the same in every split, so map onto train's.
        data = sources.from_spec(parts[split], settings.on_bad_sample)
        if data.task != train.task:
            raise ValueError(f"{parts[split]}: a {data.task} set, but train is {train.task}")
        if data.task != "classification" or data.class_names == train.class_names:
            return data
        index = {n: i for i, n in enumerate(train.class_names)}
        missing = sorted(set(data.class_names) - set(index))
        if missing:
            raise ValueError(f"{parts[split]}: classes {missing} do not occur in the "
                             f"{len(train)} training clips; generate more (--num_train)")
        ids = np.array([index[n] for n in data.class_names], np.int64)
        return dataclasses.replace(data, labels=ids[data.labels],
                                   class_names=list(train.class_names))

    return Splits(train, load_like_train("val"), load_like_train("test"), train.task,
                  train.class_names, parts["test"])


def load_splits(settings, seed, data_dir):
    """The Splits of the data settings (DataConfig); synthetic data is generated into
    data_dir."""
    if settings.source.startswith("synthetic:"):
        return _synthetic(settings, seed, data_dir)
    if settings.source.startswith(action_datasets.PREFIXES):
        train, val, test, test_spec = action_datasets.official_splits(
            settings.source, settings.split, settings.holdout_fraction, seed,
            settings.on_bad_sample)
        if settings.eval_data:
            test = sources.from_spec(settings.eval_data, settings.on_bad_sample)
            test_spec = settings.eval_data
        return Splits(train, val, test, "classification", train.class_names, test_spec)
    data = sources.from_spec(settings.source, settings.on_bad_sample)
    if isinstance(data, TfdsSource):
        if settings.split:
            data = data.with_official_split(settings.split)
        _, class_names = data.load()
        train = dataclasses.replace(data, split="train[:90%]")
        val = dataclasses.replace(data, split="train[90%:]")
        test = dataclasses.replace(data, split="test")
        if data.name.startswith("ucf101"):
            logging.warning(
                "TFDS ucf101 examples carry no file names, so the validation slice "
                "train[90%%:] cannot keep UCF101 groups apart and its accuracy is "
                "optimistic (the official test split is unaffected); --data=ucf101:PATH "
                "holds out whole groups")
        return Splits(train, val, test, "classification", class_names,
                      f"tfds:{data.name}:test")
    if settings.split:
        raise ValueError("--split picks an official split of ucf101:PATH, hmdb51:PATH or "
                         f"tfds:ucf101, not of {settings.source}")
    if settings.eval_data:
        test = sources.from_spec(settings.eval_data, settings.on_bad_sample)
        train, val = data.split(settings.holdout_fraction, seed)
        test_spec = settings.eval_data
    else:
        rest, test = data.split(settings.holdout_fraction, seed)
        train, val = rest.split(settings.holdout_fraction, seed + 1)
        test_spec = (f"{settings.source} (held-out {settings.holdout_fraction:.0%}, "
                     f"seed {seed})")
    if test.task != data.task:
        raise ValueError(f"--eval_data is a {test.task} set but --data is {data.task}")
    return Splits(train, val, test, data.task, data.class_names, test_spec)
