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

What a source is (Samples, TfdsSource) is keras_video.data.samples.
"""

import csv
import os

from keras_video.data import action_datasets, samples, tfrecord
from keras_video.data.decode import BadSampleError, natural_key


def frame_folders(root, on_bad_sample="error"):
    """Seed layout: root/<clip>/{o (1).jpg .., label.txt} -> regression samples."""
    collect = samples.Collector(on_bad_sample)
    for d in samples.subdirs(root):
        clip = os.path.join(root, d)
        collect.add(clip, lambda clip=clip: samples.read_label_txt(clip))
    return collect.samples(root, "regression")


def class_folders(root, on_bad_sample="error"):
    """root/<class>/<video file or frame folder> -> classification samples."""
    class_names = samples.subdirs(root)
    collect = samples.Collector(on_bad_sample)
    for label, name in enumerate(class_names):
        folder = os.path.join(root, name)
        for entry in sorted(os.listdir(folder), key=natural_key):
            path = os.path.join(folder, entry)
            if os.path.isdir(path) or samples.is_video(entry):
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
    collect = samples.Collector(on_bad_sample)
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
    """samples.Samples (or a samples.TfdsSource) for a --data value; see the module docstring."""
    if spec.startswith(action_datasets.PREFIXES):
        return action_datasets.from_spec(spec, on_bad_sample)
    if spec.startswith("tfds:"):
        parts = spec.split(":")
        return samples.TfdsSource(parts[1], parts[2] if len(parts) > 2 else "train")
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
    subdirs = samples.subdirs(path)
    if not subdirs:
        raise BadSampleError(path, "data folder is empty: expected clip folders with "
                             "label.txt, class sub-folders, or a labels.csv")
    first = os.path.join(path, subdirs[0])
    if any(os.path.isfile(os.path.join(path, d, "label.txt")) or samples.has_images(
            os.path.join(path, d)) for d in subdirs):
        return frame_folders(path, on_bad_sample)
    if any(samples.is_video(n) or os.path.isdir(os.path.join(first, n)) for n in os.listdir(first)):
        return class_folders(path, on_bad_sample)
    raise BadSampleError(path, "cannot tell the layout: expected clip folders with "
                         "label.txt, class sub-folders of videos or frame folders, "
                         "or a labels.csv")
