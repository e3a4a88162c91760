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

Beyond DFF's reader this module has what a detector trained the DFF / FGFA way needs:
`read_classes` (a --classes=FILE of WordNet ids or VID names, for training on classes
of one's own), `read_image_sets` (DFF's '+'-joined list names, e.g. its training set
"DET_train_30classes+VID_train_15frames"), `training_pairs` (DFF's current / key frame
pairs) and `motion_iou` (FGFA's motion IoU and its slow / medium / fast buckets).
`keras_video.data.vid_synthetic` renders a synthetic data set in exactly this layout.
"""

import dataclasses
import os
import re
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
# A WordNet id as ImageNet writes it: "n" and 8 digits (the noun synset's offset).
_WNID = re.compile(r"n\d{8}")

# FGFA's motion IoU (Flow-Guided-Feature-Aggregation, MIT; README and
# lib/dataset/imagenet_vid.py): slow > 0.9, medium 0.7 - 0.9, fast < 0.7, over the
# object's boxes in the frames within +-MOTION_WINDOW of the frame.
SPEEDS = ("slow", "medium", "fast")
MOTION_WINDOW = 10
SLOW_ABOVE, FAST_BELOW = 0.9, 0.7


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
    check_files: raise FileNotFoundError, naming the list file and line, for a record
    whose files are missing. True (or "frame"): the JPEG and annotation of the
    record's own frame (START). "video": those of every frame 0 .. NUM_FRAMES - 1 of
    each listed video (one directory listing per video), which DFF reads as key frames
    (`training_pairs`) or, for VID_val_videos.txt, as the whole video. False: none.
    """
    list_path = os.fspath(list_path)
    if not os.path.isfile(list_path):
        raise FileNotFoundError(f"{list_path}: list file does not exist")
    if root is None:
        root = os.path.dirname(os.path.dirname(os.path.abspath(list_path)))
    subset = subset or _subset_of(list_path)
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
    if check_files not in (True, False, "frame", "video"):
        raise ValueError(f"check_files must be True, False, 'frame' or 'video', got "
                         f"{check_files!r}")
    checked_videos = set()
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
            if check_files == "video" and record.is_video:
                _check_video_files(record, where, checked_videos)
            elif check_files:
                for path in (record.image_path(), record.annotation_path()):
                    if not os.path.isfile(path):
                        raise FileNotFoundError(f"{where}: {path} does not exist")
            records.append(record)
    if not records:
        raise VidFormatError(f"{list_path}: holds no records")
    return records


def _check_video_files(record, where, checked):
    """Every frame's JPEG and annotation of `record`'s video, each video once."""
    key = (record.video, record.num_frames)
    if key in checked:
        return
    checked.add(key)
    for kind, path_of in (("Data", record.image_path),
                          ("Annotations", record.annotation_path)):
        folder = os.path.join(record.root, kind, record.subset, record.video)
        try:
            names = set(os.listdir(folder))
        except (FileNotFoundError, NotADirectoryError):
            names = set()
        for index in range(record.num_frames):
            path = path_of(index)
            if os.path.basename(path) not in names:
                raise FileNotFoundError(f"{where}: {path} does not exist (frame {index} of "
                                        f"the video's {record.num_frames})")


def read_image_sets(root, image_set, check_files=True):
    """The records of DFF's `image_set`: list names joined by '+', each the file
    ROOT/ImageSets/NAME.txt, read in order and concatenated, as DFF's config names its
    training set "DET_train_30classes+VID_train_15frames" (dff_rfcn/config/config.py;
    DFF's train script loads one ImageNetVID per name and merges their roidbs)."""
    root = os.fspath(root)
    names = image_set.split("+")
    if not all(n.strip() for n in names):
        raise ValueError(f"image set {image_set!r}: an empty name between '+' signs")
    records = []
    for name in names:
        path = os.path.join(root, "ImageSets", name.strip() + ".txt")
        records.extend(read_list(path, root=root, check_files=check_files))
    return records


def read_classes(path):
    """The WordNet ids of a --classes=FILE, in order: one per line, each a WordNet id
    (`n` and 8 digits, any synset: e.g. n00007846, person, a DET class outside the 30
    VID classes) or the name of one of the 30 VID classes (CLASS_NAMES, e.g. airplane
    or domestic_cat; any case). Blank lines and `#` comments are skipped. Label l of
    `read_annotation(..., wnids=read_classes(path))` is the class of line l's id.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: classes file does not exist")
    by_name = dict(zip(CLASS_NAMES, WNIDS))
    wnids, first_line = [], {}
    with open(path) as f:
        for number, text in enumerate(f, start=1):
            fields = text.split("#", 1)[0].split()
            if not fields:
                continue
            where = f"{path}:{number}"
            if len(fields) > 1:
                raise VidFormatError(f"{where}: one class per line, got {len(fields)} "
                                     f"words: {text.strip()!r}")
            token = fields[0].lower()
            if _WNID.fullmatch(token):
                wnid = token
            elif token in by_name:
                wnid = by_name[token]
            else:
                raise VidFormatError(
                    f"{where}: unknown class {fields[0]!r}: give a WordNet id (n and 8 "
                    f"digits, e.g. n00007846) or one of the 30 VID class names "
                    f"({', '.join(CLASS_NAMES)})")
            if wnid in first_line:
                raise VidFormatError(f"{where}: class {fields[0]!r} ({wnid}) is already "
                                     f"on line {first_line[wnid]}")
            first_line[wnid] = number
            wnids.append(wnid)
    if not wnids:
        raise VidFormatError(f"{path}: names no classes")
    return tuple(wnids)


def training_pairs(record, rng, key_range=9):
    """(current frame index, key frame index) of one training step on `record`, as
    DFF's loader picks them (lib/utils/image.py, get_pair_image): key = current +
    randint(MIN_OFFSET, MAX_OFFSET), clipped to the video, with MIN_OFFSET = -9 and
    MAX_OFFSET = 0 (dff_rfcn/config/config.py), i.e. key_range = 9: the key frame is
    the current one or up to 9 frames before it. A single image (DET) is its own key.
    rng: a numpy Generator.
    """
    current = record.frame_index
    if not record.is_video:
        return current, current
    if key_range < 0:
        raise ValueError(f"key_range must be >= 0, got {key_range}")
    key = current + int(rng.integers(-key_range, 1))
    return current, min(max(key, 0), record.num_frames - 1)


def box_iou(a, b):
    """IoU of boxes a [..., 4] and b [..., 4] (x1, y1, x2, y2, pixel-inclusive), with
    the +1 pixel convention of ImageNet's and FGFA's evaluation (boxoverlap in
    lib/dataset/imagenet_vid_eval_motion.py): a box x1..x2 is x2 - x1 + 1 wide."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    iw = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1.0
    ih = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1.0
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    area_a = (a[..., 2] - a[..., 0] + 1.0) * (a[..., 3] - a[..., 1] + 1.0)
    area_b = (b[..., 2] - b[..., 0] + 1.0) * (b[..., 3] - b[..., 1] + 1.0)
    return inter / (area_a + area_b - inter)


def track_motion_iou(boxes, window=MOTION_WINDOW):
    """Motion IoU of one track: boxes float [T, 4] per frame of the video, NaN where
    the object is not annotated. Returns float64 [T]: for each frame t where it is,
    the mean IoU of its box with its boxes in the frames t - window .. t + window
    other than t; 0 where it has none there (NaN where absent)."""
    boxes = np.asarray(boxes, np.float64)
    present = ~np.isnan(boxes).any(axis=1)
    out = np.full(len(boxes), np.nan)
    for t in np.flatnonzero(present):
        lo, hi = max(t - window, 0), min(t + window + 1, len(boxes))
        others = [s for s in range(lo, hi) if s != t and present[s]]
        out[t] = box_iou(boxes[t], boxes[others]).mean() if others else 0.0
    return out


def speed_of(motion_ious):
    """FGFA's bucket of each motion IoU: "slow" (> 0.9), "medium" (0.7 - 0.9) or
    "fast" (< 0.7) (FGFA's README; its evaluation's ranges [0.9, 1], [0.7, 0.9] and
    [0, 0.7] share their ends, which go to medium here)."""
    m = np.asarray(motion_ious, np.float64)
    return np.where(m > SLOW_ABOVE, "slow", np.where(m < FAST_BELOW, "fast", "medium"))


def motion_iou(annotations, window=MOTION_WINDOW):
    """FGFA's motion IoU of every object of one video, and its speed bucket.

    annotations: the video's frames in order, each a `read_annotation` dict (boxes,
    track_ids). Returns (ious, speeds): per frame, float64 [N] and str [N] in the
    frame's object order. An object's motion IoU in frame t is the mean IoU (+1 pixel
    convention, `box_iou`) of its box with the boxes of the same track id in the
    frames within +-window (10) of t, t itself excluded, frames where it is not
    annotated skipped, as the FGFA paper (arXiv 1703.10025, section 5: "averaged
    intersection-over-union scores with its corresponding instances in the nearby
    frames (+-10 frames)") defines it. FGFA ships the values precomputed for
    VID_val_frames.txt (lib/dataset/imagenet_vid_groundtruth_motion_iou.mat, one cell
    per frame, one value per object); an object with no instance nearby has an empty
    cell there, which its evaluation (imagenet_vid_eval_motion.py) reads as 0: so it
    is 0 (fast) here too. Boxes are those of `read_annotation` (clipped to the image).
    """
    length = len(annotations)
    tracks = {}
    for t, ann in enumerate(annotations):
        ids = np.asarray(ann["track_ids"])
        if (ids < 0).any():
            raise ValueError(f"frame {t}: an object has no track id (motion IoU needs "
                             f"VID annotations with <trackid>)")
        if len(set(ids.tolist())) != len(ids):
            raise ValueError(f"frame {t}: two objects share a track id: {ids.tolist()}")
        for track, box in zip(ids.tolist(), ann["boxes"]):
            tracks.setdefault(track, np.full((length, 4), np.nan))[t] = box
    per_track = {track: track_motion_iou(boxes, window) for track, boxes in tracks.items()}
    ious = [np.array([per_track[k][t] for k in np.asarray(ann["track_ids"]).tolist()],
                     np.float64) for t, ann in enumerate(annotations)]
    return ious, [speed_of(m) for m in ious]


def _number(node, tag, path, what):
    child = node.find(tag)
    if child is None or child.text is None:
        raise VidFormatError(f"{path}: {what} has no <{tag}>")
    try:
        return float(child.text)
    except ValueError:
        raise VidFormatError(f"{path}: {what} <{tag}> is not a number: "
                             f"{child.text!r}") from None


def read_annotation(xml_path, wnids=WNIDS, max_outside=None):
    """The boxes of one annotation file.

    Returns a dict: "width", "height" (int), "boxes" float32 [N, 4] (xmin, ymin, xmax,
    ymax, clipped to the image), "labels" int64 [N] (1 + index in `wnids`), "wnids"
    [N] str, "track_ids" int64 [N] (-1 where the object has none, as in DET),
    "occluded" and "generated" bool [N] (False where absent). Objects whose WordNet id
    is not in `wnids` are dropped.

    Boxes reaching past the image are clipped to it, as DFF does (load_vid_annotation
    in lib/dataset/imagenet_vid.py); a box with xmax < xmin or ymax < ymin, or lying
    wholly outside the image, is an annotation error (VidFormatError naming the file
    and the object). max_outside: also an error where the box reaches more than this
    many pixels past the image (e.g. 1, to allow only the common xmax = width);
    None (default): any overhang is clipped.
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
        track = obj.find("trackid")
        track_text = "" if track is None else f", trackid {(track.text or '').strip()}"
        named = f"{what} ({name}{track_text})"
        written = f"({x1:g}, {y1:g}, {x2:g}, {y2:g})"
        if x2 < x1 or y2 < y1:
            raise VidFormatError(f"{xml_path}: {named} has an empty box {written}: xmax < "
                                 f"xmin or ymax < ymin")
        if x1 > width - 1 or y1 > height - 1 or x2 < 0 or y2 < 0:
            raise VidFormatError(f"{xml_path}: {named} has an empty box {written}: it lies "
                                 f"wholly outside the {width} x {height} image")
        if max_outside is not None and (min(x1, y1) < -max_outside
                                        or x2 > width - 1 + max_outside
                                        or y2 > height - 1 + max_outside):
            raise VidFormatError(f"{xml_path}: {named} box {written} reaches more than "
                                 f"{max_outside:g} px past the {width} x {height} image "
                                 f"(pixels 0..{width - 1}, 0..{height - 1})")
        x1, y1 = max(x1, 0.0), max(y1, 0.0)
        x2, y2 = min(x2, width - 1.0), min(y2, height - 1.0)
        boxes.append((x1, y1, x2, y2))
        labels.append(index[name])
        names.append(name)
        tracks.append(-1 if track is None else int(_number(obj, "trackid", xml_path, what)))
        occluded.append(obj.findtext("occluded", "0").strip() == "1")
        generated.append(obj.findtext("generated", "0").strip() == "1")
    return {"width": width, "height": height,
            "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
            "labels": np.asarray(labels, np.int64), "wnids": names,
            "track_ids": np.asarray(tracks, np.int64),
            "occluded": np.asarray(occluded, bool), "generated": np.asarray(generated, bool)}
