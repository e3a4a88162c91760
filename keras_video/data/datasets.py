"""Train / validation / test splits for a TrainConfig's --data and --eval_data.

  synthetic:oscillation  generated under data_dir: train (seed), validation (seed + 1)
                         and test (seed + 2) are independent draws, so the test clips
                         are fresh clips never seen in training
  PATH (any layout of keras_video.data.sources)
                         validation and, without --eval_data, test are held out by a
                         seeded split of the clips
  tfds:NAME              the data set's train split (its last 10% for validation) and
                         its test split
"""

import dataclasses
import os

from keras_video.data import sources
from keras_video.data.sources import TfdsSource

SYNTHETIC = ("oscillation",)


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


def _synthetic(config, data_dir):
    from keras_video.data import generate

    name = config.data.split(":", 1)[1]
    if name not in SYNTHETIC:
        raise ValueError(f"unknown synthetic data set {name!r}; choose one of {SYNTHETIC}")
    parts = {}
    for split, num, offset in (("train", config.num_train, 0), ("val", config.num_val, 1),
                               ("test", config.num_eval, 2)):
        out = os.path.join(data_dir, f"{name}_{split}_{num}_seed{config.seed + offset}")
        print(f"Generating {num} {name} clips for {split} in {out}")
        generate.write_oscillation(out, num, config.seed + offset, fmt="video")
        parts[split] = out
    load = lambda s: sources.from_spec(parts[s], config.on_bad_sample)  # noqa: E731
    return Splits(load("train"), load("val"), load("test"), "regression", None, parts["test"])


def load_splits(config, data_dir):
    if config.data.startswith("synthetic:"):
        return _synthetic(config, data_dir)
    data = sources.from_spec(config.data, config.on_bad_sample)
    if isinstance(data, TfdsSource):
        _, class_names = data.load()
        train = dataclasses.replace(data, split="train[:90%]")
        val = dataclasses.replace(data, split="train[90%:]")
        test = dataclasses.replace(data, split="test")
        return Splits(train, val, test, "classification", class_names,
                      f"tfds:{data.name}:test")
    if config.eval_data:
        test = sources.from_spec(config.eval_data, config.on_bad_sample)
        train, val = data.split(config.holdout_fraction, config.seed)
        test_spec = config.eval_data
    else:
        rest, test = data.split(config.holdout_fraction, config.seed)
        train, val = rest.split(config.holdout_fraction, config.seed + 1)
        test_spec = f"{config.data} (held-out {config.holdout_fraction:.0%}, seed {config.seed})"
    if test.task != data.task:
        raise ValueError(f"--eval_data is a {test.task} set but --data is {data.task}")
    return Splits(train, val, test, data.task, data.class_names, test_spec)
