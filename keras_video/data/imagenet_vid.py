"""ImageNet VID / DET image lists in the format of Deep Feature Flow (msracver/
Deep-Feature-Flow, MIT; `lib/dataset/imagenet_vid.py` and `data/ILSVRC2015/ImageSets`).

A list file `ROOT/ImageSets/NAME.txt` has one record per line, in one of two forms:

    VIDEO FRAME_ID START NUM_FRAMES   e.g. `train/ILSVRC2015_VID_train_0000/
                                      ILSVRC2015_train_00000000 1 10 300`
        VIDEO       the video's folder relative to ROOT/Data/VID (or Data/DET)
        FRAME_ID    DFF's running frame number, used only to number detections for
                    evaluation (1 in the training lists; in VID_val_videos.txt the
                    number of the video's first frame, counted over all videos)
        START       the 0-based index of the frame in the video (the frame to train
                    on in VID_train_15frames.txt; 0 in VID_val_videos.txt, whose
                    records stand for the whole video)
        NUM_FRAMES  the number of frames of the video
    IMAGE FRAME_ID                    e.g. `train/ILSVRC2014_train_0000/
                                      ILSVRC2014_train_00000663 1` (DET_train_30classes.txt)
        IMAGE       the image path without extension, relative to ROOT/Data/DET (or VID)

As in DFF, the list name's prefix (`DET_...` or `VID_...`) picks the subset folder:
frame j of a video is `ROOT/Data/<subset>/VIDEO/<j:06d>.JPEG` with its annotation
`ROOT/Annotations/<subset>/VIDEO/<j:06d>.xml`; a two-column record is the single image
`ROOT/Data/<subset>/IMAGE.JPEG`, annotation `ROOT/Annotations/<subset>/IMAGE.xml`.

Annotations are Pascal-VOC-style XML: `size/width`, `size/height`, and per `object` a
WordNet id `name`, a `bndbox` (xmin, ymin, xmax, ymax in pixels), and in VID a
`trackid` (the object's identity across the video's frames), `occluded`, `generated`.
As DFF does, boxes are clipped to [0, width - 1] x [0, height - 1] and objects of
classes outside the 30 VID classes (DET has 200) are dropped.
"""

import dataclasses
import os
import xml.etree.ElementTree as ET

import numpy as np

# The 30 VID classes in DFF's order (class id = position + 1; 0 is the background).
CLASS_NAMES = (
    "airplane", "antelope", "bear", "bicycle", "bird", "bus", "car", "cattle", "dog",
    "domestic_cat", "elephant", "fox", "giant_panda", "hamster", "horse", "lion",
    "lizard", "monkey", "motorcycle", "rabbit", "red_panda", "sheep", "snake",
    "squirrel", "tiger", "train", "turtle", "watercraft", "whale", "zebra")
WNIDS = (
    "n02691156", "n02419796", "n02131653", "n02834778", "n01503061", "n02924116",
    "n02958343", "n02402425", "n02084071", "n02121808", "n02503517", "n02118333",
    "n02510455", "n02342885", "n02374451", "n02129165", "n01674464", "n02484322",
    "n03790512", "n02324045", "n02509815", "n02411705", "n01726692", "n02355227",
    "n02129604", "n04468005", "n01662784", "n04530566", "n02062744", "n02391049")
SUBSETS = ("DET", "VID")


class VidFormatError(ValueError):
    """A malformed list line or annotation; the message names the file (and line)."""


@dataclasses.dataclass(frozen=True)
class VidRecord:
    """One line of a list file."""

    root: str  # the folder holding ImageSets/, Data/, Annotations/
    subset: str  # "VID" or "DET"
    video: str  # VIDEO (four columns) or IMAGE (two columns) of the line
    frame_id: int
    frame_index: int  # START; 0 for a single image
    num_frames: int  # 1 for a single image
    is_video: bool  # four columns: frames are VIDEO/<index:06d>
    source: str  # "list_file:line", for error messages

    def _relative(self, index):
        if not self.is_video:
            if index != 0:
                raise IndexError(f"{self.source}: a single image has only frame 0")
            return self.video
        if not 0 <= index < self.num_frames:
            raise IndexError(f"{self.source}: frame {index} outside the video's "
                             f"{self.num_frames} frames")
        return f"{self.video}/{index:06d}"

    def image_path(self, index=None):
        """JPEG of frame `index` of the video (default: this record's frame)."""
        index = self.frame_index if index is None else index
        return os.path.join(self.root, "Data", self.subset, self._relative(index) + ".JPEG")

    def annotation_path(self, index=None):
        index = self.frame_index if index is None else index
        return os.path.join(self.root, "Annotations", self.subset,
                            self._relative(index) + ".xml")


def _subset_of(list_path):
    prefix = os.path.basename(list_path).split("_")[0]
    if prefix not in SUBSETS:
        raise VidFormatError(f"{list_path}: cannot tell the subset from the name (DFF "
                             f"names lists DET_... or VID_...); pass subset='VID' or 'DET'")
    return prefix


def read_list(list_path, root=None, subset=None, check_files=True):
    """The records of a list file, in order.

    root: the data set folder (default: the parent of the list's ImageSets folder).
    subset: "VID" or "DET" (default: from the list name's prefix, as DFF does).
    check_files: raise FileNotFoundError, naming the list line, for a record whose
    JPEG or annotation is missing.
    """
    list_path = os.fspath(list_path)
    if not os.path.isfile(list_path):
        raise FileNotFoundError(f"{list_path}: list file does not exist")
    if root is None:
        root = os.path.dirname(os.path.dirname(os.path.abspath(list_path)))
    subset = subset or _subset_of(list_path)
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
    records = []
    with open(list_path) as f:
        for number, text in enumerate(f, start=1):
            fields = text.split()
            if not fields:
                continue  # a blank (e.g. last) line
            where = f"{list_path}:{number}"
            if len(fields) not in (2, 4):
                raise VidFormatError(f"{where}: expected 2 columns (IMAGE FRAME_ID) or 4 "
                                     f"(VIDEO FRAME_ID START NUM_FRAMES), got "
                                     f"{len(fields)}: {text.strip()!r}")
            try:
                numbers = [int(v) for v in fields[1:]]
            except ValueError:
                raise VidFormatError(f"{where}: columns after the path must be integers: "
                                     f"{text.strip()!r}") from None
            if len(fields) == 4:
                frame_id, start, length = numbers
                if length < 1 or not 0 <= start < length:
                    raise VidFormatError(f"{where}: need 0 <= START < NUM_FRAMES, got "
                                         f"START={start}, NUM_FRAMES={length}")
            else:
                (frame_id,), start, length = numbers, 0, 1
            record = VidRecord(root, subset, fields[0], frame_id, start, length,
                               len(fields) == 4, where)
            if check_files:
                for path in (record.image_path(), record.annotation_path()):
                    if not os.path.isfile(path):
                        raise FileNotFoundError(f"{where}: {path} does not exist")
            records.append(record)
    if not records:
        raise VidFormatError(f"{list_path}: holds no records")
    return records


def _number(node, tag, path, what):
    child = node.find(tag)
    if child is None or child.text is None:
        raise VidFormatError(f"{path}: {what} has no <{tag}>")
    try:
        return float(child.text)
    except ValueError:
        raise VidFormatError(f"{path}: {what} <{tag}> is not a number: "
                             f"{child.text!r}") from None


def read_annotation(xml_path, wnids=WNIDS):
    """The boxes of one annotation file.

    Returns a dict: "width", "height" (int), "boxes" float32 [N, 4] (xmin, ymin, xmax,
    ymax, clipped to the image), "labels" int64 [N] (1 + index in `wnids`), "wnids"
    [N] str, "track_ids" int64 [N] (-1 where the object has none, as in DET),
    "occluded" and "generated" bool [N] (False where absent). Objects whose WordNet id
    is not in `wnids` are dropped.
    """
    xml_path = os.fspath(xml_path)
    if not os.path.isfile(xml_path):
        raise FileNotFoundError(f"{xml_path}: annotation does not exist")
    try:
        tree = ET.parse(xml_path)
    except ET.ParseError as e:
        raise VidFormatError(f"{xml_path}: not valid XML ({e})") from None
    size = tree.find("size")
    if size is None:
        raise VidFormatError(f"{xml_path}: no <size>")
    width = int(_number(size, "width", xml_path, "<size>"))
    height = int(_number(size, "height", xml_path, "<size>"))
    index = {w: i + 1 for i, w in enumerate(wnids)}
    boxes, labels, names, tracks, occluded, generated = [], [], [], [], [], []
    for k, obj in enumerate(tree.findall("object")):
        what = f"object {k}"
        name = (obj.findtext("name") or "").strip().lower()
        if not name:
            raise VidFormatError(f"{xml_path}: {what} has no <name>")
        if name not in index:
            continue
        box = obj.find("bndbox")
        if box is None:
            raise VidFormatError(f"{xml_path}: {what} has no <bndbox>")
        x1, y1, x2, y2 = (_number(box, tag, xml_path, what)
                          for tag in ("xmin", "ymin", "xmax", "ymax"))
        x1, y1 = max(x1, 0.0), max(y1, 0.0)
        x2, y2 = min(x2, width - 1.0), min(y2, height - 1.0)
        if x2 < x1 or y2 < y1:
            raise VidFormatError(f"{xml_path}: {what} has an empty box "
                                 f"({x1}, {y1}, {x2}, {y2}) in a {width} x {height} image")
        boxes.append((x1, y1, x2, y2))
        labels.append(index[name])
        names.append(name)
        track = obj.find("trackid")
        tracks.append(-1 if track is None else int(_number(obj, "trackid", xml_path, what)))
        occluded.append(obj.findtext("occluded", "0").strip() == "1")
        generated.append(obj.findtext("generated", "0").strip() == "1")
    return {"width": width, "height": height,
            "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
            "labels": np.asarray(labels, np.int64), "wnids": names,
            "track_ids": np.asarray(tracks, np.int64),
            "occluded": np.asarray(occluded, bool), "generated": np.asarray(generated, bool)}
