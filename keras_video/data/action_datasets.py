"""UCF101 and HMDB51 on disk, read through their official split files.

  --data=ucf101:PATH --split=N
      PATH/<Class>/v_<Class>_gGG_cCC.avi, and the lists of the "RecognitionTask" split
      download in PATH/ucfTrainTestlist: classInd.txt ("1 ApplyEyeMakeup", 1-based),
      trainlist0N.txt ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1") and
      testlist0N.txt (the same without the label).
  --data=hmdb51:PATH --split=N
      PATH/<class>/<video>.avi, and PATH/testTrainMulti_7030_splits/<class>_test_splitN.txt
      with lines "<video file> <id>": 1 train, 2 test, 0 used in neither.
Either data set with its frames already extracted has, instead of each video file, a
folder of JPEGs named like the video without its extension (PATH/<Class>/v_..._c01/);
a listed video is looked up as a file first, then as such a folder, ignoring case.

The spec may name more, separated by colons: `ucf101:PATH:split2:test:lists=DIR`
  splitN      the official split (1, 2 or 3); or --split=N when training
  train|test  which list; a training run reads both, other commands default to test
  lists=DIR   the split-file folder, where it is not under PATH (e.g. frames extracted
              to another folder than the download)

The official lists decide train and test. The validation set of a training run is
held out of the train list by whole groups: UCF101's group number (`_gNN_`: clips of
one group are cut from one long video, and split 1 tests groups 1-7 of every class),
HMDB51's source film (the file name before its class name), so no source video is on
both sides. A missing split file, a listed video not on disk, an unknown class or a
malformed line raise BadSampleError naming the split file and the line.
"""

import dataclasses
import functools
import os
import re

from keras_video.data import samples
from keras_video.data.decode import VIDEO_EXTENSIONS, BadSampleError, natural_key

PREFIXES = ("ucf101:", "hmdb51:")
LISTS_FOLDER = {"ucf101": "ucfTrainTestlist", "hmdb51": "testTrainMulti_7030_splits"}
SUBSETS = ("train", "test")
_HMDB51_IDS = {"train": "1", "test": "2"}


@dataclasses.dataclass(frozen=True)
class ActionSpec:
    """A parsed `ucf101:` / `hmdb51:` --data value; str() gives it back."""

    dataset: str
    root: str
    split: int = 0  # 0: not named (split 1 unless --split says otherwise)
    subset: str = ""  # "": not named
    lists: str = ""  # "": PATH/<LISTS_FOLDER>

    @property
    def lists_dir(self):
        return self.lists or os.path.join(self.root, LISTS_FOLDER[self.dataset])

    def __str__(self):
        parts = [self.dataset, self.root]
        parts += [f"split{self.split}"] if self.split else []
        parts += [self.subset] if self.subset else []
        parts += [f"lists={self.lists}"] if self.lists else []
        return ":".join(parts)


def parse_spec(spec):
    """ActionSpec of 'ucf101:PATH[:splitN][:train|test][:lists=DIR]'."""
    dataset, _, rest = spec.partition(":")
    if f"{dataset}:" not in PREFIXES or not rest:
        raise ValueError(f"{spec!r}: expected ucf101:PATH or hmdb51:PATH")
    parts = rest.split(":")
    root, options = parts[0], parts[1:]
    split, subset, lists = 0, "", ""
    for option in options:
        if re.fullmatch(r"split\d+", option):
            split = int(option[5:])
        elif option in SUBSETS:
            subset = option
        elif option.startswith("lists="):
            lists = os.path.expanduser(option[len("lists="):])
        else:
            raise ValueError(f"{spec!r}: unknown option {option!r}; expected splitN, "
                             "train, test or lists=DIR")
    if split and split not in (1, 2, 3):
        raise ValueError(f"{spec!r}: {dataset} has official splits 1, 2 and 3")
    return ActionSpec(dataset, os.path.expanduser(root), split, subset, lists)


def _read_lines(path):
    """[(line number, stripped text)] of the non-empty lines of a split file."""
    if not os.path.isfile(path):
        raise BadSampleError(path, "split file does not exist")
    with open(path, encoding="utf-8", errors="replace") as f:
        return [(n, line.strip()) for n, line in enumerate(f, start=1) if line.strip()]


class _VideoFinder:
    """Finds a listed video under root/<class>/ as a file or an extracted frame folder,
    ignoring case (UCF101's lists and archives disagree on 'HandStandPushups')."""

    def __init__(self, root):
        if not os.path.isdir(root):
            raise BadSampleError(root, "data folder does not exist")
        self.root = root
        self._classes = {d.lower(): d for d in os.listdir(root)
                         if os.path.isdir(os.path.join(root, d))}
        self._entries = {}

    def _entries_of(self, class_dir):
        if class_dir not in self._entries:
            found = {}
            for entry in sorted(os.listdir(os.path.join(self.root, class_dir))):
                stem, ext = os.path.splitext(entry)
                is_dir = os.path.isdir(os.path.join(self.root, class_dir, entry))
                if is_dir or ext.lower() in VIDEO_EXTENSIONS:
                    # a video file wins over a frame folder of the same name
                    key = (entry if is_dir else stem).lower()
                    if key not in found or not is_dir:
                        found[key] = entry
            self._entries[class_dir] = found
        return self._entries[class_dir]

    def find(self, class_name, video, where):
        """The path of `video` (a file name, with or without extension) in class
        `class_name`; `where` ('FILE', line) names the split-file line for errors."""
        class_dir = self._classes.get(class_name.lower())
        has_extension = video.lower().endswith(VIDEO_EXTENSIONS)
        stem = os.path.splitext(video)[0] if has_extension else video
        entry = class_dir and self._entries_of(class_dir).get(stem.lower())
        if not entry:
            raise BadSampleError(where[0], f"line {where[1]}: {class_name}/{video} is not "
                                 f"on disk: no video file or frame folder {stem!r} in "
                                 f"{os.path.join(self.root, class_dir or class_name)}")
        return os.path.join(self.root, class_dir, entry)


def _ucf101_classes(lists_dir):
    path = os.path.join(lists_dir, "classInd.txt")
    names = {}
    for n, line in _read_lines(path):
        fields = line.split()
        if len(fields) != 2 or not fields[0].isdigit():
            raise BadSampleError(path, f"line {n}: expected '<id> <class>', got {line!r}")
        names[int(fields[0])] = fields[1]
    if sorted(names) != list(range(1, len(names) + 1)):
        raise BadSampleError(path, f"class ids are not 1..{len(names)}")
    return [names[i] for i in range(1, len(names) + 1)]


def _ucf101_entry(finder, index, list_path, n, line, labelled):
    """(path, label, group) of one line of a UCF101 train or test list."""
    fields = line.split()
    if len(fields) != (2 if labelled else 1) or "/" not in fields[0]:
        raise BadSampleError(list_path, f"line {n}: expected '<Class>/<video>"
                             f"{' <id>' if labelled else ''}', got {line!r}")
    class_name, video = fields[0].split("/", 1)
    label = index.get(class_name.lower())
    if label is None:
        raise BadSampleError(list_path, f"line {n}: unknown class {class_name!r} (not in "
                             "classInd.txt)")
    if labelled and fields[1] != str(label + 1):
        raise BadSampleError(list_path, f"line {n}: class id {fields[1]}, but classInd.txt "
                             f"gives {class_name} id {label + 1}")
    path = finder.find(class_name, video, (list_path, n))
    samples.check_clip(path)
    return path, label, samples.ucf101_group(path)


def read_ucf101(root, split=1, subset="test", lists_dir=None, on_bad_sample="error"):
    """The videos of UCF101's official trainlist0N / testlist0N as Samples."""
    lists_dir = lists_dir or os.path.join(root, LISTS_FOLDER["ucf101"])
    class_names = _ucf101_classes(lists_dir)
    index = {name.lower(): i for i, name in enumerate(class_names)}
    list_path = os.path.join(lists_dir, f"{subset}list{split:02d}.txt")
    lines = _read_lines(list_path)
    finder = _VideoFinder(root)
    collect = samples.Collector(on_bad_sample)
    for n, line in lines:
        collect.attempt(functools.partial(_ucf101_entry, finder, index, list_path, n, line,
                                          subset == "train"))
    return collect.samples(list_path, "classification", class_names)


def _hmdb51_source_film(stem, class_name):
    """The film an HMDB51 clip was cut from: its name before '_<class>_'
    ('April_09' of 'April_09_brush_hair_u_nm_np1_ba_goo_0'). One film gives clips to
    many classes, so the group is the film alone."""
    cut = stem.rfind(f"_{class_name}_")
    return stem[:cut] if cut > 0 else re.sub(r"_\d+$", "", stem)


def _hmdb51_entry(finder, label, class_name, list_path, n, line):
    """(path, label, group) of one line of an HMDB51 split file."""
    fields = line.split()
    if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
        raise BadSampleError(list_path, f"line {n}: expected '<video> <0, 1 or 2>', got "
                             f"{line!r}")
    path = finder.find(class_name, fields[0], (list_path, n))
    samples.check_clip(path)
    film = _hmdb51_source_film(os.path.splitext(fields[0])[0], class_name)
    return path, label, "film:" + film


def read_hmdb51(root, split=1, subset="test", lists_dir=None, on_bad_sample="error"):
    """The videos of HMDB51's official <class>_test_splitN.txt files as Samples."""
    lists_dir = lists_dir or os.path.join(root, LISTS_FOLDER["hmdb51"])
    if not os.path.isdir(lists_dir):
        raise BadSampleError(lists_dir, "split-file folder does not exist (HMDB51's "
                             "<class>_test_splitN.txt files; give it as :lists=DIR)")
    split_file = re.compile(r"^(.+)_test_split\d+\.txt$")
    matches = [split_file.match(name) for name in os.listdir(lists_dir)]
    class_names = sorted({m.group(1) for m in matches if m}, key=natural_key)
    if not class_names:
        raise BadSampleError(lists_dir, "holds no <class>_test_splitN.txt split files")
    finder = _VideoFinder(root)
    collect = samples.Collector(on_bad_sample)
    for label, class_name in enumerate(class_names):
        list_path = os.path.join(lists_dir, f"{class_name}_test_split{split}.txt")
        if not os.path.isfile(list_path):
            raise BadSampleError(list_path, f"split file does not exist (class "
                                 f"{class_name} has split files of other splits)")
        for n, line in _read_lines(list_path):
            fields = line.split()
            if len(fields) == 2 and fields[1] in ("0", "1", "2") and (
                    fields[1] != _HMDB51_IDS[subset]):
                continue  # the other subset's, or unused
            collect.attempt(functools.partial(_hmdb51_entry, finder, label, class_name,
                                              list_path, n, line))
    return collect.samples(lists_dir, "classification", class_names)


READERS = {"ucf101": read_ucf101, "hmdb51": read_hmdb51}


def load(spec, subset=None, split=None, on_bad_sample="error"):
    """Samples of an ActionSpec; `subset` and `split` fill in what it does not name."""
    split = spec.split or split or 1
    subset = spec.subset or subset or "test"
    return READERS[spec.dataset](spec.root, split, subset, spec.lists_dir, on_bad_sample)


def from_spec(spec, on_bad_sample="error"):
    """Samples of a 'ucf101:...' / 'hmdb51:...' --data value (default: the test list)."""
    return load(parse_spec(spec), on_bad_sample=on_bad_sample)


def official_splits(spec, split, holdout_fraction, seed, on_bad_sample="error"):
    """(train, val, test, test_spec) of a training run: the official train list minus a
    group-wise validation hold-out, and the official test list. `split` is --split
    (0: the spec's split, else 1)."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    if spec.split and split and spec.split != split:
        raise ValueError(f"--data names split {spec.split} but --split is {split}")
    if spec.subset == "test":
        raise ValueError(f"{spec}: a training run reads the official train list and "
                         "tests on the test list; leave ':test' out of --data")
    split = spec.split or split or 1
    train_list = load(spec, "train", split, on_bad_sample)
    test = load(dataclasses.replace(spec, subset="test"), "test", split, on_bad_sample)
    train, val = train_list.split(holdout_fraction, seed)
    test_spec = str(dataclasses.replace(spec, split=split, subset="test"))
    return train, val, test, test_spec
